package wsactor

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/protows/protows/internal/actorhook"

	"github.com/gorilla/websocket"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/conn"
	"github.com/protows/protows/internal/utf8stream"
)

// transport is the conn.Transport over a gorilla/websocket connection.
//
// gorilla allows one concurrent reader and one concurrent writer, with
// WriteControl and Close safe alongside both. The connection actor keeps to
// that: ReadLoop runs on the reader goroutine only; WriteFrame and
// WriteClose are called by the holder of the outbox's writer token only;
// pongs are written with WriteControl from the reader goroutine.
type transport struct {
	c            *websocket.Conn
	writeTimeout time.Duration
	readLimit    int64
	linger       time.Duration
	deadline     time.Time  // for data writes; only the writer token's holder uses it
	scan         *frameScan // the peer's framing; nil when it cannot be followed (a client behind a proxy)
	server       bool
	text         utf8stream.Validator // checks a text message as it arrives; reader goroutine only
	sock         *scanConn            // the socket gorilla writes to, when it is ours: it coalesces writes
	consumed     uint64               // messages and control frames handed to deliver; reader goroutine only
	drain        func()               // writes what the actor has queued (see conn.Transport.ReadLoop)
	drained      bool                 // drainBeforeRefused has run
}

// MoreBuffered reports whether a whole message or control frame has been
// read from the socket and not yet delivered: the next read returns it
// without waiting for the peer. The scan counts the frames that end a
// message as their last byte is read; the transport counts what it
// delivers. Reader goroutine only.
func (t *transport) MoreBuffered() bool {
	return t.scan != nil && !t.scan.lost && t.scan.fins > t.consumed
}

var _ conn.Transport = (*transport)(nil)

// newTransport wraps c. scan is the frame scan of c's socket (see
// scanConn), or nil.
func newTransport(c *websocket.Conn, server bool, writeTimeout time.Duration, readLimit int64, linger time.Duration, scan *frameScan) *transport {
	// The read limit is enforced by readMessage, on the decompressed size,
	// so that reading can go on after an oversized message (see fail);
	// gorilla's own limit counts wire bytes and leaves the reader unusable.
	c.SetReadLimit(0)
	scan.negotiated(c)
	sock, _ := c.NetConn().(*scanConn)
	return &transport{c: c, server: server, writeTimeout: writeTimeout, readLimit: readLimit, linger: linger, scan: scan, sock: sock}
}

// Hold keeps the next frame back to coalesce it with the ones after it
// (see scanConn.Write); without a socket of ours (a client behind a proxy)
// every frame is written at once.
func (t *transport) Hold() {
	if t.sock != nil {
		t.sock.holdNext()
	}
}

// Flush writes what Hold kept back.
func (t *transport) Flush() error {
	if t.sock == nil {
		return nil
	}
	return t.sock.flush()
}

// Errors of readMessage, answered by ReadLoop.
var (
	errTooBig  = errors.New("message over the read limit")
	errBadUTF8 = errors.New("invalid UTF-8")
)

func (t *transport) ReadLoop(deliver func(actor.Frame), drain func()) error {
	t.drain = drain
	t.c.SetPingHandler(func(data string) error {
		// Errors are ignored here: a broken socket fails the next read or
		// write, which reports it.
		_ = t.c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(t.writeTimeout))
		t.consumed++
		deliver(actor.Frame{Type: actor.PingMessage, Data: []byte(data)})
		t.drainBeforeRefused() // gorilla reads on inside NextReader
		return nil
	})
	t.c.SetPongHandler(func(data string) error {
		t.consumed++
		deliver(actor.Frame{Type: actor.PongMessage, Data: []byte(data)})
		t.drainBeforeRefused()
		return nil
	})
	// The actor answers the peer's close itself, after the frames it has
	// queued; gorilla's default handler would answer at once.
	t.c.SetCloseHandler(func(int, string) error { return nil })
	for {
		t.drainBeforeRefused()
		mt, r, err := t.c.NextReader()
		if err != nil {
			return t.readError(err)
		}
		data, err := t.readMessage(r, mt == websocket.TextMessage)
		switch {
		case err == nil:
			t.consumed++
			deliver(actor.Frame{Type: actor.MessageType(mt), Data: data})
		case err == errTooBig:
			return t.fail(actor.CloseMessageTooBig, "", actor.ErrMessageTooBig)
		case err == errBadUTF8:
			return t.fail(actor.CloseInvalidPayload, "invalid UTF-8", actor.ErrInvalidUTF8)
		case err == io.ErrUnexpectedEOF:
			// gorilla reports a cut connection as its own 1006 close error; a
			// bare unexpected EOF inside a message comes from the
			// decompressor: the deflate stream ended early.
			return t.badPayload(err)
		default:
			return t.readError(err)
		}
	}
}

// drainBeforeRefused has the actor write what it queued once every frame
// before one gorilla refuses by its header has been delivered: gorilla
// answers that frame with its close as soon as it reads it, from
// NextReader (after a ping or pong it delivers from there too). Once per
// connection.
func (t *transport) drainBeforeRefused() {
	if !t.drained && t.scan != nil && t.scan.bad && t.consumed >= t.scan.fins && t.drain != nil {
		t.drained = true
		t.drain()
	}
}

// readBufs holds scratch buffers for reading a message whose size is not
// known until its end. A message that fits is copied out at its exact size:
// a 64-byte message costs 64 bytes, not the 512 io.ReadAll starts with, and
// an idle connection holds no buffer.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// readMessage reads the rest of a message from r: errTooBig when it is
// over the read limit (the rest is then unread), errBadUTF8 as soon as a
// text message can no longer be valid UTF-8.
func (t *transport) readMessage(r io.Reader, text bool) ([]byte, error) {
	if text {
		t.text.Reset()
	}
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf, n := *bp, 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		if text && !t.text.Write(buf[n:n+m]) {
			return nil, errBadUTF8
		}
		n += m
		if err != nil && err != io.EOF {
			return nil, err
		}
		if int64(n) > t.readLimit {
			return nil, errTooBig
		}
		if err == io.EOF {
			if text && !t.text.Complete() {
				return nil, errBadUTF8
			}
			return bytes.Clone(buf[:n:n]), nil
		}
	}
	// Longer than the scratch buffer: go on in a buffer of its own.
	data := make([]byte, n, 2*n)
	copy(data, buf)
	for {
		if len(data) == cap(data) {
			data = slices.Grow(data, len(data))
		}
		m, err := r.Read(data[len(data):cap(data)])
		if text && !t.text.Write(data[len(data):len(data)+m]) {
			return nil, errBadUTF8
		}
		data = data[:len(data)+m]
		if err != nil && err != io.EOF {
			return nil, err
		}
		if int64(len(data)) > t.readLimit {
			return nil, errTooBig
		}
		if err == io.EOF {
			if text && !t.text.Complete() {
				return nil, errBadUTF8
			}
			return data, nil
		}
	}
}

// fail answers a peer that broke the protocol: a close frame with code
// (code 0: gorilla has sent a 1002 already), then awaitPeerClose, all
// within the close timeout (linger), even when a data write holds
// gorilla's write lock.
func (t *transport) fail(code actor.CloseCode, text string, err error) *actor.ProtocolError {
	end := time.Now().Add(t.linger)
	sent := code
	if code == 0 {
		sent = actor.CloseProtocolError
	} else {
		if t.drain != nil {
			t.drain()
		}
		deadline := time.Now().Add(t.writeTimeout)
		if deadline.After(end) {
			deadline = end
		}
		_ = t.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(int(code), text), deadline)
	}
	t.awaitPeerClose(end)
	return &actor.ProtocolError{Code: sent, Err: err}
}

// awaitPeerClose follows our close frame after a protocol error. A server
// reads what the peer still sends only until the peer's close frame has
// arrived (at once if it has: the frame scan saw it, even if gorilla had
// not got to it) and returns; the actor then closes the TCP connection
// first, as RFC 6455 section 7.1.1 asks of a server. A client reads until
// the server closes the TCP connection. Neither reads past end. Closing
// with unread data would make the kernel reset the connection, and the
// peer might never read the close frame that says why.
func (t *transport) awaitPeerClose(end time.Time) {
	if t.server && t.scan != nil && t.scan.closeSeen {
		return
	}
	nc := t.c.NetConn()
	if err := nc.SetReadDeadline(end); err != nil {
		return
	}
	if !t.server || t.scan == nil || t.scan.lost {
		_, _ = io.Copy(io.Discard, nc)
		return
	}
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	for !t.scan.closeSeen {
		if _, err := nc.Read(*bp); err != nil { // nc scans what it reads
			return
		}
	}
}

// readError maps what gorilla returns from a read to the errors the
// connection actor understands (see conn.Transport).
func (t *transport) readError(err error) error {
	var (
		ce  *websocket.CloseError
		pe  *actor.ProtocolError
		ne  net.Error
		fce flate.CorruptInputError
	)
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &ce):
		switch {
		case ce.Code == websocket.CloseAbnormalClosure:
			return io.ErrUnexpectedEOF // gorilla's name for a connection cut mid-frame
		case ce.Code == websocket.CloseNoStatusReceived && t.scan != nil && t.scan.closeLen == 1:
			// gorilla reads a 1-byte close payload as no status at all.
			return t.fail(actor.CloseProtocolError, "", errBadClosePayload)
		}
		return &actor.CloseError{Code: actor.CloseCode(ce.Code), Reason: ce.Text}
	case errors.Is(err, websocket.ErrReadLimit):
		// With its own limit off, gorilla still reports a frame length that
		// overflows (a 64-bit length with the top bit set, or fragments adding
		// up past it); it sends no close frame then.
		return t.fail(actor.CloseMessageTooBig, "", actor.ErrMessageTooBig)
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return err
	case errors.As(err, &fce):
		return t.badPayload(err)
	case err.Error() == gorillaBadCloseCode1014:
		// gorilla v1.5.3 does not know 1014 (bad gateway, RFC 6455 registry)
		// and takes it for a protocol error, answering with 1002 before we
		// see it. It is a valid close from the peer: report it as one. The
		// reason text is lost, and the 1002 cannot be taken back.
		return &actor.CloseError{Code: actor.CloseBadGateway}
	case strings.HasPrefix(err.Error(), "websocket: "):
		// gorilla's protocol errors are untyped; it has sent a 1002 close frame.
		return t.fail(0, "", err)
	}
	return err
}

// badPayload answers compressed data that does not decompress: 1007.
func (t *transport) badPayload(err error) error {
	return t.fail(actor.CloseInvalidPayload, "bad compressed data", err)
}

const gorillaBadCloseCode1014 = "websocket: bad close code 1014"

// WriteFrame gives each write at least the write timeout, and at most an
// eighth more. The deadline moves only when less than the timeout is left:
// gorilla sets the socket's deadline before every write, and re-setting
// the same one is cheap, while a new one re-arms a runtime timer each time.
func (t *transport) WriteFrame(f actor.Frame) error {
	if t.writeTimeout > 0 {
		now := time.Now()
		if t.deadline.Sub(now) < t.writeTimeout {
			ahead := t.writeTimeout
			if slack := ahead / 8; ahead <= math.MaxInt64-slack {
				ahead += slack
			}
			t.deadline = now.Add(ahead)
			if err := t.c.SetWriteDeadline(t.deadline); err != nil {
				return err
			}
		}
	}
	if t.server {
		if slot := actorhook.FrameEncoding(&f); slot != nil {
			if pm := prepared(slot, f); pm != nil {
				return writeError(t.c.WritePreparedMessage(pm))
			}
		}
	}
	return writeError(t.c.WriteMessage(int(f.Type), f.Data))
}

// prepared returns the PreparedMessage of a frame made with actor.Prepare,
// making it if this is the first connection to write the frame. gorilla
// frames (and compresses) it once per compression setting and keeps the
// bytes for every other connection. Clients do not use it: gorilla would
// mask every client's copy with the same key.
func prepared(slot *atomic.Value, f actor.Frame) *websocket.PreparedMessage {
	if pm, ok := slot.Load().(*websocket.PreparedMessage); ok {
		return pm
	}
	pm, err := websocket.NewPreparedMessage(int(f.Type), f.Data)
	if err != nil {
		// gorilla frames into memory here, which does not fail; should it,
		// the frame is written as usual.
		return nil
	}
	if !slot.CompareAndSwap(nil, pm) {
		pm = slot.Load().(*websocket.PreparedMessage)
	}
	return pm
}

// WritePing uses WriteControl, which gorilla allows concurrently with the
// writer; it waits for the frame being written, up to the write timeout.
func (t *transport) WritePing(data []byte) error {
	return writeError(t.c.WriteControl(websocket.PingMessage, data, time.Now().Add(t.writeTimeout)))
}

// WritePong writes an unsolicited pong, as WritePing writes a ping.
func (t *transport) WritePong(data []byte) error {
	return writeError(t.c.WriteControl(websocket.PongMessage, data, time.Now().Add(t.writeTimeout)))
}

func (t *transport) WriteClose(code actor.CloseCode, reason string) error {
	return writeError(t.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(int(code), reason), time.Now().Add(t.writeTimeout)))
}

// writeError tells the actor when gorilla refused a write because a close
// frame went out already (see conn.ErrCloseSent).
func writeError(err error) error {
	if errors.Is(err, websocket.ErrCloseSent) {
		return conn.ErrCloseSent
	}
	return err
}

func (t *transport) Close() error         { return t.c.Close() }
func (t *transport) RemoteAddr() net.Addr { return t.c.RemoteAddr() }
func (t *transport) Subprotocol() string  { return t.c.Subprotocol() }
