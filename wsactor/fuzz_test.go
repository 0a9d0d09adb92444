package wsactor_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// frames turns fuzz input into client frames: per frame, a first header
// byte taken as is (FIN, RSV bits and opcode, any of them wrong), a byte
// choosing the length (up to 63), its encoding (7, 16 or 64 bits) and
// whether to mask, then the payload.
func frames(data []byte) []byte {
	var out []byte
	key := [4]byte{1, 2, 3, 4}
	for len(data) >= 2 {
		b0, lb := data[0], data[1]
		data = data[2:]
		n := min(int(lb&0x3f), len(data))
		payload := data[:n]
		data = data[n:]
		masked := lb&0x40 == 0
		out = append(out, b0)
		maskBit := byte(0)
		if masked {
			maskBit = 0x80
		}
		switch {
		case lb&0x80 == 0:
			out = append(out, maskBit|byte(n))
		case n%2 == 0:
			out = append(out, maskBit|126)
			out = binary.BigEndian.AppendUint16(out, uint16(n))
		default:
			out = append(out, maskBit|127)
			out = binary.BigEndian.AppendUint64(out, uint64(n))
		}
		if masked {
			out = append(out, key[:]...)
			for i, b := range payload {
				out = append(out, b^key[i%4])
			}
		} else {
			out = append(out, payload...)
		}
	}
	return out
}

const handshake = "GET / HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// FuzzServerFrames writes arbitrary frames, as a client, to an echo server
// after a real handshake, then a close frame. Whatever the frames are, the
// server must end the connection (it closes TCP) within the close timeout
// plus a margin, call Terminate once, and keep serving other connections.
func FuzzServerFrames(f *testing.F) {
	for _, seed := range [][]byte{
		{0x81, 5, 'h', 'e', 'l', 'l', 'o'},         // text
		{0x01, 2, 'h', 'e', 0x89, 0, 0x80, 1, 'y'}, // fragments around a ping
		{0x81, 2, 0xc3, 0x28},                      // invalid UTF-8
		{0x01, 1, 0xe2, 0x80, 2, 0x82, 0xac},       // UTF-8 split over fragments
		{0xc1, 1, 'x'},                             // RSV1 without compression
		{0x83, 0},                                  // reserved opcode
		{0x88, 2, 0x03, 0xe8},                      // close 1000
		{0x88, 2, 0x03, 0xed},                      // close 1005 (may not be sent)
		{0x88, 4, 0x03, 0xe8, 0xff, 0xfe},          // close with bad UTF-8 reason
		{0x09, 0},                                  // fragmented ping
		{0x89, 0x3f},                               // long ping claim, short payload
		{0x81, 0x45, 'u', 'n', 'm', 'a', 's'},      // unmasked
		{0x82, 0x83, 1, 2, 3},                      // 64-bit length
		{0x80, 1, 'x'},                             // continuation with nothing to continue
	} {
		f.Add(seed)
	}
	ev := newEvents()
	e := echoEnv(f, ev, wsactor.WithCloseTimeout(200*time.Millisecond), wsactor.WithReadLimit(40), wsactor.WithKeepalive(0, 0))
	addr := strings.TrimPrefix(e.hs.URL, "http://")
	closeFrame := frames([]byte{0x88, 2, 0x03, 0xe8})

	f.Fuzz(func(t *testing.T, data []byte) {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer nc.Close()
		require.NoError(t, nc.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = io.WriteString(nc, handshake)
		require.NoError(t, err)
		br := bufio.NewReader(nc)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)

		// The server may close before all is written; that is fine.
		_, _ = nc.Write(append(frames(data), closeFrame...))
		_, err = io.Copy(io.Discard, br)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server kept the connection open")
		}
		r := ev.reason(t)
		assert.NotZero(t, r.Kind)
		select {
		case extra := <-ev.reasons:
			t.Fatalf("Terminate ran again: %v", extra)
		default:
		}
	})
}

// FuzzOriginCheck sends handshakes with arbitrary Origin and Host headers.
// The server answers 403 or goes on to Connect (which here answers 418),
// never anything else, and never refuses a same-origin request.
func FuzzOriginCheck(f *testing.F) {
	f.Add("https://app.example.com", "fuzz")
	f.Add("http://fuzz", "fuzz")
	f.Add("http://FUZZ", "fuzz")
	f.Add("null", "fuzz")
	f.Add("http://localhost:99", "fuzz")
	f.Add("http://[::1", "fuzz")
	f.Add("", "")
	sys := newSystem(f)
	srv, err := wsactor.NewServer(sys, func() actor.Handler { return teapot{} }, wsactor.WithAllowedOrigins("*.example.com", "localhost:*"))
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, origin, host string) {
		req := httptest.NewRequest(http.MethodGet, "http://fuzz/ws", nil)
		req.Host = host
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header["Origin"] = []string{origin}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		assert.Contains(t, []int{http.StatusForbidden, http.StatusTeapot}, rec.Code)
		if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, host) {
			assert.Equal(t, http.StatusTeapot, rec.Code, "same-origin request refused")
		}
	})
}

type teapot struct{ actor.BaseHandler }

func (teapot) Connect(*actor.Handshake) error {
	return actor.Reject(http.StatusTeapot, "origin passed")
}
