package wsactor_test

import (
	"bufio"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// A handler that pushes a large burst must not stop its connection from
// reading: the backlog is written by a writer goroutine, not by the reader.
func TestReaderKeepsReadingWhileABurstIsWritten(t *testing.T) {
	ev := newEvents()
	heard := make(chan string, 10)
	big := actor.Binary(make([]byte, 64<<10))
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, in: func(c *actor.Context, f actor.Frame) error {
			if string(f.Data) == "burst" {
				for range 200 { // 12.5 MiB: far more than socket buffers hold
					if err := c.Push(big); err != nil {
						return err
					}
				}
				return nil
			}
			heard <- string(f.Data)
			return nil
		}}
	}, wsactor.WithOutboundLimit(1000, 64<<20))
	c := e.dial(t, nil)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("burst")))
	// The client reads nothing, so the burst is stuck in the socket buffers.
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("are you there?")))
	assert.Equal(t, "are you there?", recv(t, heard, "message read during the burst"))
}

// The 1009 reason stands even when frames are pushed while the transport
// lingers after its close frame.
func TestTooBigReasonSurvivesPushesDuringLinger(t *testing.T) {
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev,
			init: func(c *actor.Context) error { c.SendAfter(time.Millisecond, "tick"); return nil },
			info: func(c *actor.Context, msg any) error {
				c.SendAfter(time.Millisecond, "tick")
				return c.Push(actor.Text("tick"))
			},
		}
	}, wsactor.WithReadLimit(100), wsactor.WithCloseTimeout(300*time.Millisecond))
	c := e.dial(t, nil)
	require.NoError(t, c.WriteMessage(websocket.BinaryMessage, make([]byte, 1000)))
	r := ev.reason(t)
	assert.Equal(t, actor.CloseMessageTooBig, r.Code)
	assert.ErrorIs(t, r.Err, actor.ErrMessageTooBig)
}

// rawConn performs a handshake by hand and returns the socket and the
// reader positioned after the 101 response.
func rawConn(t *testing.T, e *env, extraHeaders string) (net.Conn, *bufio.Reader, *http.Response) {
	nc, err := net.Dial("tcp", strings.TrimPrefix(e.hs.URL, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(wait)))
	_, err = io.WriteString(nc, strings.Replace(handshake, "\r\n\r\n", "\r\n"+extraHeaders+"\r\n", 1))
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	return nc, br, resp
}

// closeCodeFrom reads server frames until a close frame and returns its code.
func closeCodeFrom(t *testing.T, br *bufio.Reader) int {
	t.Helper()
	for {
		var hdr [2]byte
		_, err := io.ReadFull(br, hdr[:])
		require.NoError(t, err, "no close frame")
		n := int(hdr[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			_, err = io.ReadFull(br, ext[:])
			n = int(ext[0])<<8 | int(ext[1])
		case 127:
			var ext [8]byte
			_, err = io.ReadFull(br, ext[:])
			n = int(ext[6])<<8 | int(ext[7])
		}
		require.NoError(t, err)
		payload := make([]byte, n)
		_, err = io.ReadFull(br, payload)
		require.NoError(t, err)
		if hdr[0]&0x0f == 0x8 {
			require.GreaterOrEqual(t, len(payload), 2)
			return int(payload[0])<<8 | int(payload[1])
		}
	}
}

// A compressed message whose deflate stream ends early is invalid payload
// (1007), not a network failure.
func TestTruncatedDeflateCloses1007(t *testing.T) {
	ev := newEvents()
	e := echoEnv(t, ev, wsactor.WithCompression(true), wsactor.WithCloseTimeout(200*time.Millisecond))
	nc, br, resp := rawConn(t, e, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n")
	require.Contains(t, resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	// A stored deflate block that announces 100 bytes and carries 3.
	_, err := nc.Write(frames([]byte{0xc1, 8, 0x00, 0x64, 0x00, 0x9b, 0xff, 'a', 'b', 'c'}))
	require.NoError(t, err)
	assert.Equal(t, websocket.CloseInvalidFramePayloadData, closeCodeFrom(t, br))
	r := ev.reason(t)
	assert.Equal(t, actor.CloseInvalidPayload, r.Code)
}

// A 64-bit frame length with the top bit set gets a close frame (1009),
// not silence.
func TestOverflowingFrameLengthGetsACloseFrame(t *testing.T) {
	ev := newEvents()
	e := echoEnv(t, ev, wsactor.WithCloseTimeout(200*time.Millisecond))
	nc, br, _ := rawConn(t, e, "")
	_, err := nc.Write([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4})
	require.NoError(t, err)
	assert.Equal(t, websocket.CloseMessageTooBig, closeCodeFrom(t, br))
	assert.Equal(t, actor.CloseMessageTooBig, ev.reason(t).Code)
}

func TestLargestReadLimit(t *testing.T) {
	e := echoEnv(t, newEvents(), wsactor.WithReadLimit(math.MaxInt64))
	c := e.dial(t, nil)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("hello")))
	_, s := read(t, c)
	assert.Equal(t, "hello", s)
}

// A write timeout so long that it means never must not make every write
// fail: the deadline's slack must not overflow.
func TestHugeWriteTimeout(t *testing.T) {
	e := echoEnv(t, newEvents(), wsactor.WithWriteTimeout(math.MaxInt64))
	c := e.dial(t, nil)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("hello")))
	_, s := read(t, c)
	assert.Equal(t, "hello", s)
}
