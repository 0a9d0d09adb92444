package wsactor

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingConn is the socket under a scanConn: it records each Write as
// one system call would send it, or fails every Write with failWith while
// that is set (and sends nothing).
type recordingConn struct {
	net.Conn // nil: scanConn's writes use Write only
	writes   [][]byte
	failWith error
}

func (c *recordingConn) Write(p []byte) (int, error) {
	if c.failWith != nil {
		return 0, c.failWith
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// serverFrame is a frame as gorilla writes it on a server: unmasked, FIN
// set, a 7-bit length.
func serverFrame(b0 byte, payload string) []byte {
	return append([]byte{b0, byte(len(payload))}, payload...)
}

var errSocket = errors.New("socket broke")

// Once a write has failed, the stream has a gap (and what was held back
// may be lost): every later Write, held or not, data or control, and every
// flush returns that error and sends nothing, even if the socket would
// take it.
func TestScanConnWriteErrorIsSticky(t *testing.T) {
	a, b := serverFrame(0x81, "a"), serverFrame(0x82, "b")
	ping := serverFrame(0x89, "p")
	cases := []struct {
		name string
		fail func(t *testing.T, c *scanConn, rc *recordingConn) // ends with the failure reported
	}{
		{"write not held", func(t *testing.T, c *scanConn, rc *recordingConn) {
			rc.failWith = errSocket
			_, err := c.Write(a)
			require.ErrorIs(t, err, errSocket)
		}},
		{"write sending held bytes", func(t *testing.T, c *scanConn, rc *recordingConn) {
			c.holdNext()
			_, err := c.Write(a)
			require.NoError(t, err)
			require.Empty(t, rc.writes, "a held frame is not sent")
			rc.failWith = errSocket
			_, err = c.Write(b)
			require.ErrorIs(t, err, errSocket)
		}},
		{"flush of held bytes", func(t *testing.T, c *scanConn, rc *recordingConn) {
			c.holdNext()
			_, err := c.Write(a)
			require.NoError(t, err)
			rc.failWith = errSocket
			require.ErrorIs(t, c.flush(), errSocket)
		}},
		{"control frame sending held bytes", func(t *testing.T, c *scanConn, rc *recordingConn) {
			c.holdNext()
			_, err := c.Write(a)
			require.NoError(t, err)
			rc.failWith = errSocket
			_, err = c.Write(ping)
			require.ErrorIs(t, err, errSocket)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := &recordingConn{}
			c := &scanConn{Conn: rc}
			tc.fail(t, c, rc)
			rc.failWith = nil // the socket would take more now: nothing may go
			rc.writes = nil

			n, err := c.Write(a)
			assert.ErrorIs(t, err, errSocket, "a write after the failure")
			assert.Zero(t, n)
			c.holdNext()
			_, err = c.Write(b)
			assert.ErrorIs(t, err, errSocket, "a held write after the failure")
			assert.ErrorIs(t, c.flush(), errSocket, "a flush after the failure")
			_, err = c.Write(ping)
			assert.ErrorIs(t, err, errSocket, "a control frame after the failure")
			assert.ErrorIs(t, c.flush(), errSocket, "a flush with nothing held")
			assert.Empty(t, rc.writes, "nothing is sent after a failed write")
			assert.Nil(t, c.held, "no buffer is kept for a broken socket")
		})
	}
}

// A control frame (close, ping, pong) gorilla writes while the writer has
// asked to hold its next frame is not held: it goes at once, pushing out
// what is held before it, in the same write. The hold is the data frame's
// and stays for it.
func TestScanConnControlFrameIsNotHeld(t *testing.T) {
	for _, b0 := range []byte{0x88, 0x89, 0x8a} {
		t.Run(fmt.Sprintf("%#x", b0), func(t *testing.T) {
			a, b, c := serverFrame(0x81, "a"), serverFrame(0x82, "b"), serverFrame(0x81, "c")
			ctl := serverFrame(b0, "ctl")
			rc := &recordingConn{}
			sc := &scanConn{Conn: rc}

			// Nothing held yet: the control frame goes alone.
			sc.holdNext()
			_, err := sc.Write(ctl)
			require.NoError(t, err)
			require.Equal(t, [][]byte{ctl}, rc.writes, "a control frame is written at once")
			_, err = sc.Write(a) // the hold is still there for a
			require.NoError(t, err)
			require.Len(t, rc.writes, 1, "the data frame after it is held")
			require.NoError(t, sc.flush())
			require.Equal(t, [][]byte{ctl, a}, rc.writes)

			// Bytes held: the control frame pushes them out, in order.
			rc.writes = nil
			sc.holdNext()
			_, err = sc.Write(a)
			require.NoError(t, err)
			sc.holdNext()
			_, err = sc.Write(ctl)
			require.NoError(t, err)
			require.Equal(t, [][]byte{cat(a, ctl)}, rc.writes, "held bytes go with the control frame")
			_, err = sc.Write(b) // held: the hold was b's
			require.NoError(t, err)
			require.Len(t, rc.writes, 1, "the next data frame is held")
			_, err = sc.Write(c) // not held: sends b with it
			require.NoError(t, err)
			assert.Equal(t, [][]byte{cat(a, ctl), cat(b, c)}, rc.writes)
		})
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
