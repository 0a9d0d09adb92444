package conn_test

import (
	"encoding/binary"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/actor/actortest"
)

// FuzzPeerEvents plays arbitrary sequences of peer events (messages with
// any bytes, control frames, closes with any code and reason, drops) into
// an echoing connection. Whatever the peer does, the connection ends with
// Terminate called exactly once, with the reason the first decisive event
// calls for: a text that is not UTF-8 (1007), the peer's close (its code),
// or the network dropping (1006).
func FuzzPeerEvents(f *testing.F) {
	f.Add([]byte{0, 'h', 'i', 1, 0xff, 0xfe, 4, 0x03, 0xe8, 'o', 'k'})
	f.Add([]byte{0, 0xc3, 0x28})             // invalid UTF-8
	f.Add([]byte{0, 0xc2, 4, 4, 0x03, 0xe8}) // invalid UTF-8, then a close 1000
	f.Add([]byte{2, 'p', 3, 'q', 5})         // ping, pong, drop
	f.Add([]byte{4, 0x13, 0x88, 0xff})       // close 5000, bad reason bytes
	f.Add([]byte{1, 0, 0, 0, 4, 0x0f, 0xa0}) // binary, close 4000
	f.Add([]byte{4})                         // close without a code
	f.Fuzz(func(t *testing.T, events []byte) {
		c := actortest.New(t, &script{})
		var want *actor.Reason // set by the first event that decides
		decide := func(r actor.Reason) {
			if want == nil {
				want = &r
			}
		}
		ended := false
		for len(events) > 0 && !ended {
			op := events[0] % 6
			n := 0
			if len(events) > 1 {
				n = int(events[1]) % 8
			}
			payload := events[1:min(len(events), 1+n)]
			events = events[min(len(events), 1+n):]
			switch op {
			case 0:
				c.In(actor.Frame{Type: actor.TextMessage, Data: payload})
				if !utf8.Valid(payload) {
					decide(actor.Reason{Kind: actor.ReasonError, Code: actor.CloseInvalidPayload})
				}
			case 1:
				c.InBinary(payload)
			case 2:
				c.Ping(string(payload))
			case 3:
				c.Pong(string(payload))
			case 4:
				code := actor.CloseNormal
				if len(payload) >= 2 {
					code = actor.CloseCode(binary.BigEndian.Uint16(payload))
				}
				c.PeerClose(code, string(payload))
				decide(actor.Reason{Kind: actor.ReasonRemote, Code: code})
				ended = true
			case 5:
				c.Drop()
				decide(actor.Reason{Kind: actor.ReasonError, Code: actor.CloseAbnormal})
				ended = true
			}
		}
		if !ended {
			c.Drop()
			decide(actor.Reason{Kind: actor.ReasonError, Code: actor.CloseAbnormal})
		}
		r := c.Terminated()
		assert.Equal(t, want.Kind, r.Kind, "%v", r)
		assert.Equal(t, want.Code, r.Code, "%v", r)
		assert.Equal(t, 1, c.TerminateCalls())
	})
}
