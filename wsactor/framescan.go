package wsactor

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"syscall"

	"github.com/gorilla/websocket"
)

// frameScan follows the frame boundaries of the bytes read from the peer,
// alongside gorilla's own parser, which keeps to itself what it
// has buffered and how long a close frame's payload was. The scan tells the
// transport two things gorilla cannot:
//
//   - whether the peer's close frame has arrived, so that after a protocol
//     error a server closes the TCP connection as soon as the peer has
//     answered (RFC 6455 section 7.1.1), not when a timeout runs out;
//   - the payload length of the peer's first close frame, since gorilla
//     reports a 1-byte payload (invalid: a status code takes 2) as a close
//     without status, which must be answered with 1002.
//
// It reads frame headers only and skips payloads, so it costs a few
// branches per frame. All its state is touched by the reader goroutine only
// (gorilla reads from the socket on the goroutine that reads messages).
type frameScan struct {
	inHTTP    bool     // a client's scan: the server's handshake response comes first
	lineStart bool     // in the response, at the start of a line
	hdr       [14]byte // the header being collected
	hn        int      // bytes of hdr collected
	need      int      // header length, once its first two bytes are in
	left      uint64   // payload bytes still to skip
	isClose   bool     // the frame being skipped is a close frame
	closeSeen bool     // a whole close frame has passed
	closeLen  int      // payload length of the first close frame; -1 before one
	fin       bool     // the frame being skipped ends a message, or is a ping or pong
	fins      uint64   // whole frames read that end a message, and pings and pongs
	lost      bool     // the framing cannot be followed (a length past 2^63)

	// Counting frames for MoreBuffered stops at the first frame gorilla
	// refuses by its header: what follows it is never delivered, and a
	// reply held back for it would wait behind the close that answers it.
	server  bool // frames must be masked (from a client), else unmasked
	deflate bool // permessage-deflate was negotiated: RSV1 may start a data message
	frag    bool // inside a fragmented data message
	bad     bool // a frame gorilla refuses has been read
}

func newFrameScan() *frameScan { return &frameScan{closeLen: -1, server: true} }

// newClientFrameScan returns the scan of a client's socket, which starts
// with the server's HTTP response to the handshake.
func newClientFrameScan() *frameScan { return &frameScan{closeLen: -1, inHTTP: true} }

// negotiated records whether gorilla agreed on permessage-deflate for c,
// reading gorilla's own decision (the decompressor it keeps when it did)
// rather than parsing the handshake again, which could come out
// differently. Should gorilla's field ever change, RSV1 frames count as
// refused: replies then only lose their coalescing.
func (s *frameScan) negotiated(c *websocket.Conn) {
	if s == nil {
		return
	}
	f := reflect.ValueOf(c).Elem().FieldByName("newDecompressionReader")
	s.deflate = f.IsValid() && f.Kind() == reflect.Func && !f.IsNil()
}

// scan follows p, the next bytes read from the peer.
func (s *frameScan) scan(p []byte) {
	for len(p) > 0 && s.inHTTP {
		// The response ends with an empty line; textproto, which reads it,
		// takes a bare "\n" for a line end too.
		switch p[0] {
		case '\n':
			s.inHTTP = !s.lineStart
			s.lineStart = true
		case '\r':
		default:
			s.lineStart = false
		}
		p = p[1:]
	}
	for len(p) > 0 && !s.lost {
		if s.left > 0 {
			n := uint64(len(p))
			if n > s.left {
				n = s.left
			}
			s.left -= n
			p = p[n:]
			if s.left == 0 {
				s.frameEnd()
			}
			continue
		}
		// Collect the header: 2 bytes, then the extended length and the mask
		// key that the second byte announces.
		want := 2
		if s.need > 0 {
			want = s.need
		}
		n := copy(s.hdr[s.hn:want], p)
		s.hn += n
		p = p[n:]
		if s.hn < want {
			continue
		}
		if s.need == 0 {
			s.need = 2
			switch s.hdr[1] & 0x7f {
			case 126:
				s.need += 2
			case 127:
				s.need += 8
			}
			if s.hdr[1]&0x80 != 0 {
				s.need += 4
			}
			if s.need > 2 {
				continue
			}
		}
		s.frameHeader()
	}
}

// frameHeader starts skipping the payload of the frame whose header is in
// hdr.
func (s *frameScan) frameHeader() {
	length := uint64(s.hdr[1] & 0x7f)
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(s.hdr[2:4]))
	case 127:
		length = binary.BigEndian.Uint64(s.hdr[2:10])
		if length>>63 != 0 {
			s.lost = true // gorilla refuses it too
			return
		}
	}
	s.isClose = s.hdr[0]&0x0f == 0x8
	if s.isClose && s.closeLen < 0 {
		s.closeLen = int(min(length, 1<<20))
	}
	if s.isClose {
		s.bad = true // gorilla reads no frame after a close frame
	}
	// Every frame is followed, with FIN or not: the first fragment of a
	// message starts it, and gorilla refuses a bad frame either way.
	s.fin = !s.isClose && s.follow(length) && s.hdr[0]&0x80 != 0
	s.hn, s.need, s.left = 0, 0, length
	if length == 0 {
		s.frameEnd()
	}
}

// follow checks the header in hdr as gorilla will, and reports false once
// gorilla would refuse this frame or one before it (RFC 6455 section 5.2:
// reserved bits, reserved opcodes, control frame rules, masking, the order
// of fragments).
func (s *frameScan) follow(length uint64) bool {
	if s.bad {
		return false
	}
	b0, op := s.hdr[0], s.hdr[0]&0x0f
	fin, rsv1 := b0&0x80 != 0, b0&0x40 != 0
	ok := b0&0x30 == 0 && (s.hdr[1]&0x80 != 0) == s.server
	switch op {
	case 0x8, 0x9, 0xa:
		ok = ok && fin && length <= 125 && !rsv1
	case 0x1, 0x2:
		ok = ok && !s.frag && (!rsv1 || s.deflate)
		s.frag = !fin
	case 0x0:
		ok = ok && s.frag && !rsv1
		s.frag = !fin
	default:
		ok = false
	}
	s.bad = !ok
	return ok
}

// frameEnd records that the whole of the current frame has been read.
func (s *frameScan) frameEnd() {
	if s.isClose {
		s.closeSeen = true
	}
	if s.fin {
		s.fins++
	}
}

// scanConn is a socket as gorilla sees it: reads pass through the frame
// scan on their way. A server wraps the hijacked connection (see
// scanningWriter), a client the one it dials (see scannedDialer).
type scanConn struct {
	net.Conn
	scan *frameScan

	// Coalesced writes (coalesce.go).
	wmu  sync.Mutex
	hold bool    // keep the next Write back
	held *[]byte // bytes kept back; nil when none
	werr error   // the first write error; every later Write returns it

	// Buffered reads (readbuf.go); rpool is nil when reads go straight to
	// the connection (TLS).
	rpool      *readPool
	raw        syscall.RawConn // the socket, waited on without a buffer; nil when it cannot be
	rbuf       *[]byte         // bytes read and not yet taken by gorilla; nil when none
	rpos, rend int
	// A read on raw (readbuf_unix.go): its callback, made once, and what it
	// passes back and forth.
	rawRead func(fd uintptr) bool
	rdst    []byte
	rn      int
	rerr    error
}

// newScanConn wraps nc, with reads buffered from pool unless pool is nil.
func newScanConn(nc net.Conn, scan *frameScan, pool *readPool) *scanConn {
	c := &scanConn{Conn: nc, scan: scan}
	if pool != nil {
		c.rpool, c.raw = pool, rawReader(nc)
	}
	return c
}

func (c *scanConn) Read(p []byte) (int, error) {
	if c.rpool != nil {
		return c.readBuffered(p)
	}
	n, err := c.Conn.Read(p)
	c.scan.scan(p[:n])
	return n, err
}

// scanningWriter hands gorilla's Upgrader a hijacked connection that is
// scanned. It passes everything else to the ResponseWriter it wraps.
type scanningWriter struct {
	http.ResponseWriter
	scan *frameScan
	pool *readPool // buffers reads from it; nil: reads go straight to the connection
}

func (w scanningWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return newScanConn(nc, w.scan, w.pool), brw, nil
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w scanningWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errBadClosePayload is the protocol error of a close frame whose payload
// is one byte: too short for a status code, too long for none.
var errBadClosePayload = errors.New("close frame with a 1-byte payload")

// scannedDialer returns a copy of d whose socket for u is scanned, and the
// scan; or d itself and nil when a proxy is in the way, since the scan
// would then see the proxy's own exchange (and, for wss://, encrypted
// bytes). For wss:// it does the TLS handshake itself, as gorilla would,
// so that the scan sees the plain bytes.
//
// Over plain TCP the copy reads through a buffer from pool (see readbuf.go),
// and gorilla keeps its smallest buffer.
func scannedDialer(d *websocket.Dialer, u *url.URL, netDial func(ctx context.Context, network, addr string) (net.Conn, error), pool *readPool) (*websocket.Dialer, *frameScan) {
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	if d.Proxy != nil {
		if p, err := d.Proxy(&http.Request{URL: &url.URL{Scheme: scheme, Host: u.Host}}); err != nil || p != nil {
			return d, nil
		}
	}
	scan := newClientFrameScan()
	dd := *d
	dd.ReadBufferSize = minGorillaReadBuffer // see readbuf.go
	if scheme == "http" {
		dd.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := netDial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return newScanConn(c, scan, pool), nil
		}
		return &dd, scan
	}
	dd.NetDialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := netDial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conf := &tls.Config{}
		if d.TLSClientConfig != nil {
			conf = d.TLSClientConfig.Clone()
		}
		if conf.ServerName == "" {
			conf.ServerName = u.Hostname()
		}
		tc := tls.Client(raw, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		return newScanConn(tc, scan, nil), nil
	}
	return &dd, scan
}
