package wsactor_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// Raw frames for the conformance suite, written by hand rather than by
// gorilla's writer, so that they can be wrong on purpose.
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xa
)

type rawFrame struct {
	fin      bool
	rsv      byte // RSV1-3 bits, already shifted (0x40, 0x20, 0x10)
	op       byte
	payload  []byte
	unmasked bool
}

func (f rawFrame) bytes() []byte {
	b0 := f.rsv | f.op
	if f.fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	mask := byte(0x80)
	if f.unmasked {
		mask = 0
	}
	n := len(f.payload)
	switch {
	case n < 126:
		out = append(out, mask|byte(n))
	case n < 1<<16:
		out = append(out, mask|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mask|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if f.unmasked {
		return append(out, f.payload...)
	}
	key := []byte{0x37, 0xfa, 0x21, 0x3d}
	out = append(out, key...)
	for i, c := range f.payload {
		out = append(out, c^key[i%4])
	}
	return out
}

func text(s string, fin bool) rawFrame { return rawFrame{fin: fin, op: opText, payload: []byte(s)} }
func cont(b []byte, fin bool) rawFrame { return rawFrame{fin: fin, op: opCont, payload: b} }
func ctrl(op byte, payload []byte) rawFrame {
	return rawFrame{fin: true, op: op, payload: payload}
}

func closeWith(code uint16, reason string) rawFrame {
	return ctrl(opClose, append(binary.BigEndian.AppendUint16(nil, code), reason...))
}

// got is one frame the server sent.
type got struct {
	op      byte
	payload []byte
}

// serverFrames reads what the server sends until its close frame, the end
// of the connection, or the deadline; closeCode is 0 when no close frame
// came.
func serverFrames(t *testing.T, br *bufio.Reader, nc net.Conn, deadline time.Duration) (frames []got, closeCode int, closedTCP bool) {
	t.Helper()
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(deadline)))
	for {
		var hdr [2]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			var ne net.Error
			return frames, closeCode, !(errors.As(err, &ne) && ne.Timeout())
		}
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			_, err := io.ReadFull(br, ext[:])
			require.NoError(t, err)
			n = uint64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			_, err := io.ReadFull(br, ext[:])
			require.NoError(t, err)
			n = binary.BigEndian.Uint64(ext[:])
		}
		payload := make([]byte, n)
		_, err := io.ReadFull(br, payload)
		require.NoError(t, err)
		op := hdr[0] & 0x0f
		frames = append(frames, got{op: op, payload: payload})
		if op == opClose && closeCode == 0 {
			closeCode = 1005
			if len(payload) >= 2 {
				closeCode = int(binary.BigEndian.Uint16(payload))
			}
			// Answer the close handshake, as a peer should; then the server
			// closes the TCP connection.
			_, _ = nc.Write(closeWith(uint16(closeCode), "").bytes())
		}
	}
}

// TestConformance drives an echo server with raw frames and checks the RFC
// 6455 behaviour a user relies on. Every case ends with the client's own
// close frame (1000), so a case that expects no error sees the echo of
// that close (1000) as the server's close frame.
func TestConformance(t *testing.T) {
	invalidUTF8Split := [][]byte{{0xe2, 0x82}, {0x28}} // e2 82 28 is not UTF-8
	validUTF8Split := [][]byte{{0xe2, 0x82}, {0xac}}   // e2 82 ac is "€"
	cases := []struct {
		name   string
		send   []rawFrame
		echoes []got // data frames and pongs expected back, in order
		code   int   // the server's close code
		// what Terminate reports, when it says more than the wire
		reason actor.CloseCode
	}{
		{"text", []rawFrame{text("hello", true)}, []got{{opText, []byte("hello")}}, 1000, 0},
		{"empty text", []rawFrame{text("", true)}, []got{{opText, []byte{}}}, 1000, 0},
		{"binary", []rawFrame{{fin: true, op: opBinary, payload: []byte{0, 0xff}}}, []got{{opBinary, []byte{0, 0xff}}}, 1000, 0},
		{"fragments joined", []rawFrame{text("Hel", false), cont([]byte("l"), false), cont([]byte("o"), true)}, []got{{opText, []byte("Hello")}}, 1000, 0},
		{"ping between fragments", []rawFrame{text("Hel", false), ctrl(opPing, []byte("p")), cont([]byte("lo"), true)},
			[]got{{opPong, []byte("p")}, {opText, []byte("Hello")}}, 1000, 0},
		{"125-byte ping", []rawFrame{ctrl(opPing, []byte(strings.Repeat("x", 125)))}, []got{{opPong, []byte(strings.Repeat("x", 125))}}, 1000, 0},
		{"unsolicited pong ignored", []rawFrame{ctrl(opPong, []byte("?")), text("after", true)}, []got{{opText, []byte("after")}}, 1000, 0},
		{"UTF-8 split across fragments", []rawFrame{{op: opText, payload: validUTF8Split[0]}, cont(validUTF8Split[1], true)}, []got{{opText, []byte("€")}}, 1000, 0},
		{"invalid UTF-8 across fragments", []rawFrame{{op: opText, payload: invalidUTF8Split[0]}, cont(invalidUTF8Split[1], true)}, nil, 1007, 0},
		{"invalid UTF-8", []rawFrame{text("\xff", true)}, nil, 1007, 0},
		{"RSV1 without compression", []rawFrame{{fin: true, rsv: 0x40, op: opText, payload: []byte("x")}}, nil, 1002, 0},
		{"RSV2", []rawFrame{{fin: true, rsv: 0x20, op: opText, payload: []byte("x")}}, nil, 1002, 0},
		{"RSV3", []rawFrame{{fin: true, rsv: 0x10, op: opText, payload: []byte("x")}}, nil, 1002, 0},
		{"reserved data opcode 3", []rawFrame{{fin: true, op: 0x3}}, nil, 1002, 0},
		{"reserved control opcode 11", []rawFrame{{fin: true, op: 0xb}}, nil, 1002, 0},
		{"126-byte ping", []rawFrame{ctrl(opPing, []byte(strings.Repeat("x", 126)))}, nil, 1002, 0},
		{"fragmented ping", []rawFrame{{op: opPing, payload: []byte("p")}}, nil, 1002, 0},
		{"continuation without a start", []rawFrame{cont([]byte("x"), true)}, nil, 1002, 0},
		{"new message inside a fragmented one", []rawFrame{text("a", false), text("b", true)}, nil, 1002, 0},
		{"unmasked client frame", []rawFrame{{fin: true, op: opText, payload: []byte("x"), unmasked: true}}, nil, 1002, 0},
		{"close code 999", []rawFrame{closeWith(999, "")}, nil, 1002, 0},
		{"close code 1004", []rawFrame{closeWith(1004, "")}, nil, 1002, 0},
		{"close code 1005", []rawFrame{closeWith(1005, "")}, nil, 1002, 0},
		{"close code 1006", []rawFrame{closeWith(1006, "")}, nil, 1002, 0},
		{"close code 1016", []rawFrame{closeWith(1016, "")}, nil, 1002, 0},
		{"close code 5000", []rawFrame{closeWith(5000, "")}, nil, 1002, 0},
		{"close reason not UTF-8", []rawFrame{closeWith(1000, "\xff\xfe")}, nil, 1002, 0},
		// gorilla v1.5.3 does not know 1014 and answers 1002 before protows
		// sees the frame; protows still reports the peer's 1014.
		{"close code 1014", []rawFrame{closeWith(1014, "")}, nil, 1002, actor.CloseBadGateway},
		{"close code 3000 echoed", []rawFrame{closeWith(3000, "")}, nil, 3000, 0},
		{"close code 4999 echoed", []rawFrame{closeWith(4999, "bye")}, nil, 4999, 0},
		{"close without status", []rawFrame{ctrl(opClose, nil)}, nil, 1000, 0},
		// A status code takes two bytes: one is a broken close frame.
		{"close with a 1-byte payload", []rawFrame{ctrl(opClose, []byte{0x03})}, nil, 1002, 0},
		{"message over the read limit", []rawFrame{{fin: true, op: opBinary, payload: make([]byte, 2000)}}, nil, 1009, 0},
		{"fragments over the read limit", []rawFrame{{op: opBinary, payload: make([]byte, 600)}, cont(make([]byte, 600), true)}, nil, 1009, 0},
	}
	ev := newEvents()
	// A close timeout far longer than the 1 s allowed below: a server that
	// waited it out after our close frame would fail.
	e := echoEnv(t, ev, wsactor.WithReadLimit(1000), wsactor.WithCloseTimeout(4*time.Second), wsactor.WithKeepalive(0, 0))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, br, _ := rawConn(t, e, "")
			var wire []byte
			for _, f := range tc.send {
				wire = append(wire, f.bytes()...)
			}
			wire = append(wire, closeWith(1000, "").bytes()...)
			_, err := nc.Write(wire)
			require.NoError(t, err)
			sent := time.Now() // our close frame is on its way
			frames, code, closedTCP := serverFrames(t, br, nc, 5*time.Second)
			assert.Less(t, time.Since(sent), time.Second, "the server closed TCP promptly after our close frame")
			var data []got
			for _, f := range frames {
				if f.op != opClose {
					data = append(data, f)
				}
			}
			assert.Equal(t, len(tc.echoes), len(data), "frames back: %v", data)
			for i := range min(len(tc.echoes), len(data)) {
				assert.Equal(t, tc.echoes[i].op, data[i].op, "frame %d", i)
				assert.Equal(t, string(tc.echoes[i].payload), string(data[i].payload), "frame %d", i)
			}
			assert.Equal(t, tc.code, code, "close code")
			assert.True(t, closedTCP, "the server closed the TCP connection")
			r := ev.reason(t)
			switch {
			case tc.reason != 0:
				assert.Equal(t, tc.reason, r.Code, "Terminate's code")
				assert.Equal(t, actor.ReasonRemote, r.Kind, "Terminate: %v", r)
			case tc.code == 1002 || tc.code == 1007 || tc.code == 1009:
				// The server closed for a fault of the peer's.
				assert.Equal(t, actor.ReasonError, r.Kind, "Terminate: %v", r)
				assert.Equal(t, actor.CloseCode(tc.code), r.Code, "Terminate: %v", r)
				var pe *actor.ProtocolError
				assert.ErrorAs(t, r.Err, &pe, "Terminate: %v", r)
			default:
				// The peer's close, answered.
				assert.Equal(t, actor.ReasonRemote, r.Kind, "Terminate: %v", r)
				wantCode := actor.CloseCode(tc.code)
				if len(tc.send) > 0 && tc.send[0].op == opClose && len(tc.send[0].payload) == 0 {
					wantCode = actor.CloseNoStatus
				}
				assert.Equal(t, wantCode, r.Code, "Terminate: %v", r)
			}
			t.Logf("server: close %d; Terminate: %v", code, r)
		})
	}
}

// A peer that never answers the close handshake is dropped after the close
// timeout, and one that goes silent (half open) after the keepalive.
func TestConformanceUnresponsivePeers(t *testing.T) {
	t.Run("ignores the close handshake", func(t *testing.T) {
		ev := newEvents()
		e := newEnv(t, func() actor.Handler {
			return &probe{ev: ev, in: func(*actor.Context, actor.Frame) error { return actor.Stop(actor.CloseNormal, "done") }}
		}, wsactor.WithCloseTimeout(200*time.Millisecond), wsactor.WithKeepalive(0, 0))
		nc, br, _ := rawConn(t, e, "")
		_, err := nc.Write(text("bye", true).bytes())
		require.NoError(t, err)
		start := time.Now()
		// Read (and never answer) until the server hangs up.
		require.NoError(t, nc.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err = io.Copy(io.Discard, br)
		require.NoError(t, err, "the server hung up (EOF), it did not time out our read")
		assert.Less(t, time.Since(start), 5*time.Second)
		assert.Equal(t, actor.ReasonNormal, ev.reason(t).Kind)
	})
	t.Run("half open", func(t *testing.T) {
		const interval, pongTimeout = 50 * time.Millisecond, 300 * time.Millisecond
		ev := newEvents()
		e := echoEnv(t, ev, wsactor.WithKeepalive(interval, pongTimeout), wsactor.WithCloseTimeout(100*time.Millisecond))
		start := time.Now()
		nc, br, _ := rawConn(t, e, "")
		// The peer is gone without a word: nothing read, nothing answered.
		r := ev.reason(t)
		assert.Equal(t, actor.ReasonTimeout, r.Kind)
		assert.ErrorIs(t, r.Err, actor.ErrKeepaliveTimeout)
		assert.GreaterOrEqual(t, time.Since(start), interval+pongTimeout, "dropped before the pong was due")
		// What the server sent meanwhile: one ping (one is outstanding at a
		// time), then the close frame that says why.
		frames, code, _ := serverFrames(t, br, nc, time.Second)
		var ops []byte
		for _, f := range frames {
			ops = append(ops, f.op)
		}
		assert.Equal(t, []byte{opPing, opClose}, ops, "frames: %v", frames)
		assert.Equal(t, 1001, code)
	})
}
