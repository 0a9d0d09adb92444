package wsactor

import (
	"net"
	"sync"
)

// Coalesced writes. The connection's writer asks to hold a frame back
// (transport.Hold) when more frames are queued behind it; scanConn then
// keeps the bytes gorilla writes for that frame in a buffer, and the next
// write that is not held sends the buffer and itself in one system call
// (writev). A lone frame is never held, so nothing waits on a timer; a
// burst of small frames leaves in as few writes as 64 KiB allows.
//
// Once a write fails, every later one fails with the same error: bytes
// held back may have been lost with it, and a frame written after a gap
// would corrupt the stream.

// coalesceLimit is the most a connection holds back before it writes.
const coalesceLimit = 64 << 10

// heldBufs are the buffers of held bytes: one is taken when a connection
// first holds bytes and given back when they are written, so an idle
// connection keeps none.
var heldBufs = sync.Pool{New: func() any { b := make([]byte, 0, coalesceLimit); return &b }}

// Write sends p, or keeps it when the writer asked to hold the write (see
// holdNext). A write that is not held sends what is kept first, in the
// same system call. Control frames are never held: gorilla writes them in
// one Write each, from any goroutine (pongs, a close after a protocol
// error), and they push out what the writer kept; a hold they find waits
// for the writer's next data frame.
func (c *scanConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.hold && !isControl(p) {
		c.hold = false
		if c.held == nil {
			c.held = heldBufs.Get().(*[]byte)
		}
		if len(*c.held)+len(p) <= coalesceLimit {
			*c.held = append(*c.held, p...)
			return len(p), nil
		}
	}
	if c.held == nil {
		n, err := c.Conn.Write(p)
		c.werr = err
		return n, err
	}
	kept := len(*c.held)
	var (
		n   int64
		err error
	)
	if kept+len(p) <= coalesceLimit {
		// One buffer: one write, and one record under TLS.
		*c.held = append(*c.held, p...)
		var m int
		m, err = c.Conn.Write(*c.held)
		n = int64(m)
	} else {
		bufs := net.Buffers{*c.held, p}
		n, err = bufs.WriteTo(c.Conn) // writev on a TCP socket
	}
	c.release()
	c.werr = err
	return int(max(n-int64(kept), 0)), err
}

// isControl reports whether p starts a control frame (opcode 8 and up).
// gorilla writes a whole control frame in one Write, and the start of
// every data frame in a Write of its own.
func isControl(p []byte) bool { return len(p) > 0 && p[0]&0x08 != 0 }

// holdNext asks that the next Write be kept back (see Write).
func (c *scanConn) holdNext() {
	c.wmu.Lock()
	c.hold = true
	c.wmu.Unlock()
}

// flush sends what is kept back, if anything, and cancels a hold that no
// write used. It returns the error of the last write that failed, if any.
func (c *scanConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.hold = false
	if c.held == nil || c.werr != nil {
		c.release()
		return c.werr
	}
	_, c.werr = c.Conn.Write(*c.held)
	c.release()
	return c.werr
}

// release gives the held buffer back; wmu is held.
func (c *scanConn) release() {
	if c.held == nil {
		return
	}
	*c.held = (*c.held)[:0]
	heldBufs.Put(c.held)
	c.held = nil
}
