package actor_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/actor/actortest"
)

// FuzzPeerEvents plays arbitrary sequences of peer events (messages with
// any bytes, control frames, closes with any code and reason, drops) into
// an echoing connection. Whatever the peer does, the connection ends with
// Terminate called exactly once and a reason that matches what happened.
func FuzzPeerEvents(f *testing.F) {
	f.Add([]byte{0, 'h', 'i', 1, 0xff, 0xfe, 4, 0x03, 0xe8, 'o', 'k'})
	f.Add([]byte{0, 0xc3, 0x28})             // invalid UTF-8
	f.Add([]byte{2, 'p', 3, 'q', 5})         // ping, pong, drop
	f.Add([]byte{4, 0x13, 0x88, 0xff})       // close 5000, bad reason bytes
	f.Add([]byte{1, 0, 0, 0, 4, 0x0f, 0xa0}) // binary, close 4000
	f.Fuzz(func(t *testing.T, events []byte) {
		c := actortest.New(t, &script{})
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
				ended = true
			case 5:
				c.Drop()
				ended = true
			}
		}
		if !ended {
			c.Drop()
		}
		r := c.Terminated()
		assert.Contains(t, []actor.ReasonKind{actor.ReasonRemote, actor.ReasonError}, r.Kind, "%v", r)
		assert.Equal(t, 1, c.TerminateCalls())
	})
}
