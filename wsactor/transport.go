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
	"time"

	"github.com/gorilla/websocket"

	"github.com/protows/protows/actor"
)

// transport is the actor.Transport over a gorilla/websocket connection.
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
	deadline     time.Time // for data writes; only the writer token's holder uses it
}

var _ actor.Transport = (*transport)(nil)

func newTransport(c *websocket.Conn, writeTimeout time.Duration, readLimit int64, linger time.Duration) *transport {
	// The read limit is enforced by readAll, on the decompressed size, so that
	// reading can go on after an oversized message (see tooBig); gorilla's
	// own limit counts wire bytes and leaves the reader unusable.
	c.SetReadLimit(0)
	return &transport{c: c, writeTimeout: writeTimeout, readLimit: readLimit, linger: linger}
}

func (t *transport) ReadLoop(deliver func(actor.Frame)) error {
	t.c.SetPingHandler(func(data string) error {
		// Errors are ignored here: a broken socket fails the next read or
		// write, which reports it.
		_ = t.c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(t.writeTimeout))
		deliver(actor.Frame{Type: actor.PingMessage, Data: []byte(data)})
		return nil
	})
	t.c.SetPongHandler(func(data string) error {
		deliver(actor.Frame{Type: actor.PongMessage, Data: []byte(data)})
		return nil
	})
	// The actor answers the peer's close itself, after the frames it has
	// queued; gorilla's default handler would answer at once.
	t.c.SetCloseHandler(func(int, string) error { return nil })
	for {
		mt, r, err := t.c.NextReader()
		if err != nil {
			return t.readError(err)
		}
		data, err := t.readMessage(r)
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				// gorilla reports a cut connection as its own 1006 close
				// error; a bare unexpected EOF inside a message comes from the
				// decompressor: the deflate stream ended early.
				return t.badPayload(err)
			}
			return t.readError(err)
		}
		if data == nil {
			return t.tooBig(r)
		}
		deliver(actor.Frame{Type: actor.MessageType(mt), Data: data})
	}
}

// readBufs holds scratch buffers for reading a message whose size is not
// known until its end. A message that fits is copied out at its exact size:
// a 64-byte message costs 64 bytes, not the 512 io.ReadAll starts with, and
// an idle connection holds no buffer.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// readMessage reads the rest of a message from r. It returns nil, and no
// error, when the message is over the read limit; the rest is then unread.
func (t *transport) readMessage(r io.Reader) ([]byte, error) {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf, n := *bp, 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil && err != io.EOF {
			return nil, err
		}
		if int64(n) > t.readLimit {
			return nil, nil
		}
		if err == io.EOF {
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
		data = data[:len(data)+m]
		if err != nil && err != io.EOF {
			return nil, err
		}
		if int64(len(data)) > t.readLimit {
			return nil, nil
		}
		if err == io.EOF {
			return data, nil
		}
	}
}

// tooBig answers a message over the read limit: a 1009 close frame, then
// the rest of the message and whatever follows is read and discarded until
// the peer's close frame arrives, the peer hangs up, or the linger time
// passes. Closing at once, with unread data in the receive buffer, would
// make the kernel reset the connection, and the peer might never see the
// close frame that says why.
func (t *transport) tooBig(rest io.Reader) error {
	_ = t.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseMessageTooBig, ""), time.Now().Add(t.writeTimeout))
	if err := t.c.NetConn().SetReadDeadline(time.Now().Add(t.linger)); err == nil {
		_, err = io.Copy(io.Discard, rest)
		for err == nil {
			if _, rest, err = t.c.NextReader(); err == nil {
				_, err = io.Copy(io.Discard, rest)
			}
		}
	}
	return &actor.ProtocolError{Code: actor.CloseMessageTooBig, Err: actor.ErrMessageTooBig}
}

// lingeringClose follows a protocol error that left gorilla's reader
// unusable, once the close frame is sent: it discards what the peer still
// sends until it hangs up or the linger time passes, for the reason given
// at tooBig.
func (t *transport) lingeringClose() {
	nc := t.c.NetConn()
	if err := nc.SetReadDeadline(time.Now().Add(t.linger)); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, nc)
}

// readError maps what gorilla returns from a read to the errors the
// connection actor understands (see actor.Transport).
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
		if ce.Code == websocket.CloseAbnormalClosure {
			return io.ErrUnexpectedEOF // gorilla's name for a connection cut mid-frame
		}
		return &actor.CloseError{Code: actor.CloseCode(ce.Code), Reason: ce.Text}
	case errors.Is(err, websocket.ErrReadLimit):
		// With its own limit off, gorilla still reports a frame length that
		// overflows (a 64-bit length with the top bit set, or fragments adding
		// up past it); it sends no close frame then.
		_ = t.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseMessageTooBig, ""), time.Now().Add(t.writeTimeout))
		t.lingeringClose()
		return &actor.ProtocolError{Code: actor.CloseMessageTooBig, Err: actor.ErrMessageTooBig}
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
		t.lingeringClose()
		return &actor.ProtocolError{Code: actor.CloseProtocolError, Err: err}
	}
	return err
}

// badPayload answers compressed data that does not decompress: 1007.
func (t *transport) badPayload(err error) error {
	_ = t.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInvalidFramePayloadData, "bad compressed data"), time.Now().Add(t.writeTimeout))
	t.lingeringClose()
	return &actor.ProtocolError{Code: actor.CloseInvalidPayload, Err: err}
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
	return writeError(t.c.WriteMessage(int(f.Type), f.Data))
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
// frame went out already (see actor.ErrCloseSent).
func writeError(err error) error {
	if errors.Is(err, websocket.ErrCloseSent) {
		return actor.ErrCloseSent
	}
	return err
}

func (t *transport) Close() error         { return t.c.Close() }
func (t *transport) RemoteAddr() net.Addr { return t.c.RemoteAddr() }
func (t *transport) Subprotocol() string  { return t.c.Subprotocol() }
