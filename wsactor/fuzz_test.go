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
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// fuzzFrame is one client frame made from fuzz input.
type fuzzFrame struct {
	b0      byte // FIN, RSV bits and opcode, as given
	masked  bool
	extLen  int // bytes of extended length: 0, or 2 or 8 (then not the shortest form)
	payload []byte
}

// fuzzFrames turns fuzz input into client frames: per frame, a first header
// byte taken as is (FIN, RSV bits and opcode, any of them wrong), a byte
// choosing the length (up to 63), its encoding (7, 16 or 64 bits) and
// whether to mask, then the payload.
func fuzzFrames(data []byte) []fuzzFrame {
	var out []fuzzFrame
	for len(data) >= 2 {
		b0, lb := data[0], data[1]
		data = data[2:]
		n := min(int(lb&0x3f), len(data))
		f := fuzzFrame{b0: b0, masked: lb&0x40 == 0, payload: data[:n]}
		data = data[n:]
		switch {
		case lb&0x80 == 0:
		case n%2 == 0:
			f.extLen = 2
		default:
			f.extLen = 8
		}
		out = append(out, f)
	}
	return out
}

func (f fuzzFrame) wire() []byte {
	out := []byte{f.b0}
	maskBit := byte(0)
	if f.masked {
		maskBit = 0x80
	}
	n := len(f.payload)
	switch f.extLen {
	case 0:
		out = append(out, maskBit|byte(n))
	case 2:
		out = append(out, maskBit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, maskBit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !f.masked {
		return append(out, f.payload...)
	}
	key := [4]byte{1, 2, 3, 4}
	out = append(out, key[:]...)
	for i, b := range f.payload {
		out = append(out, b^key[i%4])
	}
	return out
}

// frames is the wire form of fuzzFrames(data).
func frames(data []byte) []byte {
	var out []byte
	for _, f := range fuzzFrames(data) {
		out = append(out, f.wire()...)
	}
	return out
}

// outcome is what Terminate reports, as far as a peer decides it.
type outcome struct {
	Kind actor.ReasonKind
	Code actor.CloseCode
}

var (
	protocolError = outcome{actor.ReasonError, actor.CloseProtocolError}
	badUTF8       = outcome{actor.ReasonError, actor.CloseInvalidPayload}
	tooBig        = outcome{actor.ReasonError, actor.CloseMessageTooBig}
)

// serverOutcomes is what Terminate may report once a server, without
// compression and with a read limit of readLimit bytes, has read fs and
// then the client's close 1000. It goes by RFC 6455: the first frame that
// fails or closes the connection decides. Where the RFC leaves the server a
// choice, each choice is in the set: refusing a length not in its shortest
// form (1002). A fragmented text that can no longer become valid UTF-8
// fails at once (1007), as protows checks text as it arrives.
func serverOutcomes(fs []fuzzFrame, readLimit int) []outcome {
	var may []outcome
	decided := func(o ...outcome) []outcome { return append(may, o...) }
	inMessage, text, size := false, false, 0
	var buf []byte
	for _, f := range fs {
		fin, op := f.b0&0x80 != 0, f.b0&0x0f
		if f.b0&0x70 != 0 || !f.masked { // RSV bits without an extension; a client must mask
			return decided(protocolError)
		}
		switch op {
		case opText, opBinary:
			if inMessage {
				return decided(protocolError) // a new message inside a fragmented one
			}
		case opCont:
			if !inMessage {
				return decided(protocolError) // nothing to continue
			}
		case opClose, opPing, opPong:
			if !fin {
				return decided(protocolError) // control frames are not fragmented
			}
		default:
			return decided(protocolError) // reserved opcode
		}
		if f.extLen > 0 {
			may = append(may, protocolError)
		}
		switch op {
		case opClose:
			return decided(closeOutcomes(f.payload)...)
		case opPing, opPong:
			continue
		case opText, opBinary:
			inMessage, text, size, buf = true, op == opText, 0, buf[:0]
		}
		size += len(f.payload)
		if text {
			buf = append(buf, f.payload...)
			if !validUTF8Prefix(buf) {
				return decided(badUTF8) // protows checks text as it arrives
			}
		}
		if size > readLimit {
			return decided(tooBig)
		}
		if fin {
			inMessage = false
			if text && !utf8.Valid(buf) {
				return decided(badUTF8)
			}
		}
	}
	return decided(outcome{actor.ReasonRemote, actor.CloseNormal})
}

// closeOutcomes is what a close frame from the peer with payload p ends in.
func closeOutcomes(p []byte) []outcome {
	switch len(p) {
	case 0:
		return []outcome{{actor.ReasonRemote, actor.CloseNoStatus}}
	case 1:
		// A body starts with a 2-byte code: one byte is a broken body (gorilla
		// alone would read it as no body at all; protows looks at the length).
		return []outcome{protocolError}
	}
	code := actor.CloseCode(binary.BigEndian.Uint16(p))
	textOK := utf8.Valid(p[2:])
	switch {
	case code == actor.CloseBadGateway && !textOK:
		// gorilla v1.5.3 refuses 1014 before it reads the reason, and
		// protows reports the peer's 1014 (see TestConformance).
		return []outcome{protocolError, {actor.ReasonRemote, code}}
	case !textOK:
		return []outcome{protocolError}
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return []outcome{{actor.ReasonRemote, code}}
	}
	return []outcome{protocolError} // reserved, or only for local use (1005, 1006, 1015)
}

// validUTF8Prefix reports whether b can begin valid UTF-8: it is valid but
// for a last rune that may be incomplete.
func validUTF8Prefix(b []byte) bool {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			return !utf8.FullRune(b)
		}
		b = b[size:]
	}
	return true
}

const handshake = "GET / HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// FuzzServerFrames writes arbitrary frames, as a client, to an echo server
// after a real handshake, then a close frame. Whatever the frames are, the
// server must end the connection (it closes TCP) within the close timeout
// plus a margin, call Terminate once with the reason the frames call for
// (serverOutcomes), and keep serving other connections.
func FuzzServerFrames(f *testing.F) {
	for _, seed := range [][]byte{
		{0x81, 5, 'h', 'e', 'l', 'l', 'o'},                // text
		{0x01, 2, 'h', 'e', 0x89, 0, 0x80, 1, 'y'},        // fragments around a ping
		{0x81, 2, 0xc3, 0x28},                             // invalid UTF-8
		{0x01, 1, 0xe2, 0x80, 2, 0x82, 0xac},              // UTF-8 split over fragments
		{0x01, 1, 0xff, 0x8a, 0},                          // fragment that cannot become UTF-8, then a pong
		{0xc1, 1, 'x'},                                    // RSV1 without compression
		{0x83, 0},                                         // reserved opcode
		{0x88, 2, 0x03, 0xe8},                             // close 1000
		{0x88, 2, 0x0f, 0xa0},                             // close 4000
		{0x88, 2, 0x03, 0xed},                             // close 1005 (may not be sent)
		{0x88, 2, 0x03, 0xf6},                             // close 1014
		{0x88, 1, 0x03},                                   // close with a 1-byte body
		{0x88, 4, 0x03, 0xe8, 0xff, 0xfe},                 // close with bad UTF-8 reason
		{0x09, 0},                                         // fragmented ping
		{0x89, 0x3f},                                      // long ping claim, short payload
		{0x81, 0x45, 'u', 'n', 'm', 'a', 's'},             // unmasked
		{0x82, 0x83, 1, 2, 3},                             // 64-bit length
		{0x80, 1, 'x'},                                    // continuation with nothing to continue
		slices.Concat([]byte{0x82, 40}, make([]byte, 40)), // at the read limit
		slices.Concat([]byte{0x82, 41}, make([]byte, 41)), // one byte over it
		slices.Concat([]byte{0x02, 30}, make([]byte, 30), []byte{0x80, 11}, make([]byte, 11)), // 41 bytes in two fragments
		slices.Concat([]byte{0x02, 30}, make([]byte, 30), []byte{0x88, 0, 0x80, 11}),          // a close before the limit is passed
	} {
		f.Add(seed)
	}
	const readLimit = 40
	ev := newEvents()
	e := newEnv(f, func() actor.Handler {
		// Pings are not reported on ev.controls: nothing drains it here.
		return &probe{ev: ev, control: func(*actor.Context, actor.Frame) error { return nil }}
	}, wsactor.WithCloseTimeout(200*time.Millisecond), wsactor.WithReadLimit(readLimit), wsactor.WithKeepalive(0, 0))
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
		ev.pid(t)

		// The server may close before all is written; that is fine.
		_, _ = nc.Write(append(frames(data), closeFrame...))
		_, err = io.Copy(io.Discard, br)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server kept the connection open")
		}
		r := ev.reason(t)
		want := serverOutcomes(fuzzFrames(data), readLimit)
		assert.Contains(t, want, outcome{r.Kind, r.Code}, "Terminate: %v", r)
		select {
		case extra := <-ev.reasons:
			t.Fatalf("Terminate ran again: %v", extra)
		default:
		}
	})
}

// FuzzOriginCheck sends handshakes with arbitrary Origin and Host headers
// to a server that allows "*.example.com" and "localhost:*". Each is
// answered as originAllowed says: refused with 403, or passed on to
// Connect, which here answers 418.
func FuzzOriginCheck(f *testing.F) {
	f.Add("https://app.example.com", "fuzz")
	f.Add("https://APP.Example.COM", "fuzz")
	f.Add("https://example.com", "fuzz")
	f.Add("https://app.example.com:8443", "fuzz")
	f.Add("https://example.com.evil.com", "fuzz")
	f.Add("http://fuzz", "fuzz")
	f.Add("http://FUZZ", "fuzz")
	f.Add("http://fuzz:80", "fuzz")
	f.Add("//fuzz", "fuzz")
	f.Add("null", "fuzz")
	f.Add("http://localhost:99", "fuzz")
	f.Add("http://localhost", "fuzz")
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
		want := http.StatusForbidden
		if originAllowed(origin, host) {
			want = http.StatusTeapot
		}
		assert.Equal(t, want, rec.Code, "Origin %q, Host %q", origin, host)
	})
}

// originAllowed is the policy WithAllowedOrigins documents, for the
// patterns "*.example.com" and "localhost:*", written out by hand: the
// Origin's host (with its port, if any) is the Host header, or, ignoring
// case, ends in ".example.com" or starts with "localhost:". An Origin
// header that is not a URL with a host ("null", "") is refused.
func originAllowed(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	h := strings.ToLower(u.Host)
	return strings.EqualFold(u.Host, host) || strings.HasSuffix(h, ".example.com") || strings.HasPrefix(h, "localhost:")
}

type teapot struct{ actor.BaseHandler }

func (teapot) Connect(*actor.Handshake) error {
	return actor.Reject(http.StatusTeapot, "origin passed")
}
