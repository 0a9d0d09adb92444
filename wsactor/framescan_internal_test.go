package wsactor

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maskedFrame is a client frame: masked (with a zero key, which leaves the
// payload as it is), a 7-bit length.
func maskedFrame(b0 byte, payload string) []byte {
	return append([]byte{b0, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
}

// A fragmented message is valid: the scan counts it once, when its last
// fragment is in, and goes on counting the messages behind it, so that
// replies to them are still written together (MoreBuffered).
func TestFrameScanCountsMessagesAfterAFragmentedOne(t *testing.T) {
	s := newFrameScan()
	var in []byte
	in = append(in, maskedFrame(0x01, "he")...) // text, no FIN
	in = append(in, maskedFrame(0x89, "p")...)  // a ping between fragments
	in = append(in, maskedFrame(0x80, "llo")...)
	in = append(in, maskedFrame(0x81, "x")...)
	in = append(in, maskedFrame(0x82, "y")...)
	s.scan(in)
	assert.False(t, s.bad, "nothing gorilla refuses was read")
	assert.EqualValues(t, 4, s.fins, "the ping, the fragmented message and the two after it")
}

// A frame without FIN that gorilla refuses (a control frame must have FIN;
// an unknown opcode; a reserved bit) stops the counting like any other it
// refuses: gorilla delivers nothing after it.
func TestFrameScanStopsAtARefusedNonFinalFrame(t *testing.T) {
	for _, b0 := range []byte{0x09, 0x0a, 0x03, 0x21, 0x00} {
		s := newFrameScan()
		var in []byte
		in = append(in, maskedFrame(0x81, "a")...)
		in = append(in, maskedFrame(b0, "?")...)
		in = append(in, maskedFrame(0x81, "b")...)
		s.scan(in)
		assert.EqualValues(t, 1, s.fins, "first byte %#x: only the message before it counts", b0)
	}
}

// The scan takes gorilla's own decision on permessage-deflate, on both
// sides: a field gorilla renames in a later version would show here (the
// scan would then count every compressed message as refused, and
// pipelined replies to compressed messages would stop coalescing).
func TestFrameScanKnowsWhatGorillaNegotiated(t *testing.T) {
	for _, compress := range []bool{false, true} {
		conns := make(chan *websocket.Conn, 1)
		up := websocket.Upgrader{EnableCompression: compress}
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err == nil {
				conns <- c
			}
		}))
		d := websocket.Dialer{EnableCompression: true}
		c, resp, err := d.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
		require.NoError(t, err)
		resp.Body.Close()
		var sc *websocket.Conn
		select {
		case sc = <-conns:
		case <-time.After(5 * time.Second):
			t.Fatal("no server connection")
		}
		for side, conn := range map[string]*websocket.Conn{"server": sc, "client": c} {
			s := newFrameScan()
			s.negotiated(conn)
			assert.Equal(t, compress, s.deflate, "%s side, compression %v", side, compress)
		}
		c.Close()
		sc.Close()
		hs.Close()
	}
}
