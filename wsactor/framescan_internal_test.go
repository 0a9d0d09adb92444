package wsactor

import (
	"testing"

	"github.com/stretchr/testify/assert"
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
