package wsactor_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// serverFrame is a frame read from the server by a raw client.
type serverFrame struct {
	op      byte
	payload []byte
}

// readServerFrame reads one frame from the server.
func readServerFrame(t *testing.T, br *bufio.Reader) (serverFrame, error) {
	t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return serverFrame{}, err
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return serverFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return serverFrame{}, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return serverFrame{}, err
	}
	return serverFrame{op: hdr[0] & 0x0f, payload: payload}, nil
}

// framesUntilClose reads server frames up to and including the first close
// frame (rawConn's deadline bounds the wait).
func framesUntilClose(t *testing.T, br *bufio.Reader) []serverFrame {
	t.Helper()
	var out []serverFrame
	for {
		f, err := readServerFrame(t, br)
		require.NoError(t, err, "no close frame; read so far: %q", out)
		out = append(out, f)
		if f.op == 0x8 {
			return out
		}
	}
}

// idleRawConn is rawConn to an echo server, after one echo round trip: the
// actor's Init is over and its mailbox idle, so that the frames read next
// run on the reader goroutine (and the reply to each is written, or
// deferred, by it).
func idleRawConn(t *testing.T, e *env, extraHeaders string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	nc, br, resp := rawConn(t, e, extraHeaders)
	_, err := nc.Write(masked(0x81, []byte("warm up")))
	require.NoError(t, err)
	f, err := readServerFrame(t, br)
	require.NoError(t, err)
	require.Equal(t, serverFrame{op: 0x1, payload: []byte("warm up")}, f)
	return nc, br, resp
}

func masked(b0 byte, payload []byte) []byte {
	return fuzzFrame{b0: b0, masked: true, payload: payload}.wire()
}

// A message "a", then a frame gorilla refuses, then more, in one segment:
// the echo of "a" comes, then gorilla's 1002, and the reply to "a" never
// waits for a frame behind the refused one (which is never delivered).
//   - A close frame gorilla refuses (code 999) with a message behind it:
//     gorilla reads no frame after a close, so the scan stops counting at
//     any close frame.
//   - RSV1 set when permessage-deflate was not negotiated: the scan must
//     agree with gorilla on the negotiation. An extensions header gorilla
//     cannot parse ("foo bar" is not an extension list) negotiates nothing.
//   - A ping without FIN (a control frame must have it): a refused frame
//     stops the counting even when it has no FIN bit.
func TestReplyBeforeRefusedFrame(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string // an extra handshake header line
		bad    []byte
	}{
		{"close frame with frames behind it", "", masked(0x88, []byte{0x03, 0xe7})},
		{"RSV1 without deflate negotiated", "Sec-WebSocket-Extensions: foo bar, permessage-deflate\r\n", masked(0xc1, []byte("b"))},
		{"ping without FIN", "", masked(0x09, []byte("p"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := newEvents()
			e := echoEnv(t, ev, wsactor.WithCompression(true), wsactor.WithCloseTimeout(200*time.Millisecond))
			nc, br, resp := idleRawConn(t, e, tc.header)
			if tc.header != "" {
				require.Empty(t, resp.Header.Get("Sec-WebSocket-Extensions"), "gorilla negotiated nothing")
			}
			var burst []byte
			burst = append(burst, masked(0x81, []byte("a"))...)
			burst = append(burst, tc.bad...)
			burst = append(burst, masked(0x81, []byte("b"))...)
			_, err := nc.Write(burst)
			require.NoError(t, err)
			got := framesUntilClose(t, br)
			require.Len(t, got, 2, "want the echo of \"a\", then the close: %q", got)
			assert.Equal(t, serverFrame{op: 0x1, payload: []byte("a")}, got[0])
			assert.Equal(t, byte(0x8), got[1].op)
			assert.Equal(t, actor.CloseProtocolError, ev.reason(t).Code)
		})
	}
}

// Replies to every message before an invalid one go out before the 1007
// close, however many there are: here more than the reader defers (32),
// so that part of them is handed to a writer goroutine, which the close
// must not overtake.
func TestRepliesBeforeInvalidUTF8AllGoOutBeforeTheClose(t *testing.T) {
	const n = 40
	ev := newEvents()
	e := echoEnv(t, ev, wsactor.WithCloseTimeout(200*time.Millisecond))
	nc, br, _ := idleRawConn(t, e, "")
	var burst []byte
	for i := range n {
		burst = append(burst, masked(0x81, []byte(fmt.Sprint(i)))...)
	}
	burst = append(burst, masked(0x81, []byte{0xff})...) // not UTF-8
	_, err := nc.Write(burst)
	require.NoError(t, err)
	got := framesUntilClose(t, br)
	var echoes []string
	for _, f := range got[:len(got)-1] {
		echoes = append(echoes, string(f.payload))
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	assert.Equal(t, want, echoes, "every reply, in order, before the close")
	assert.Equal(t, actor.CloseInvalidPayload, ev.reason(t).Code)
}
