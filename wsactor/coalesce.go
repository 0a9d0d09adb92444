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

// coalesceLimit is the most a connection holds back before it writes.
const coalesceLimit = 64 << 10

// heldBufs are the buffers of held bytes: one is taken when a connection
// first holds bytes and given back when they are written, so an idle
// connection keeps none.
var heldBufs = sync.Pool{New: func() any { b := make([]byte, 0, coalesceLimit); return &b }}

// Write sends p, or keeps it when the writer asked to hold the write (see
// hold). A write that is not held sends what is kept first, in the same
// system call. Writes from other goroutines (gorilla's control frames:
// pongs, a close after a protocol error) are never held, so they also push
// out what the writer kept.
func (c *scanConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.hold {
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
		return c.Conn.Write(p)
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
	return int(max(n-int64(kept), 0)), err
}

// holdNext asks that the next Write be kept back (see Write).
func (c *scanConn) holdNext() {
	c.wmu.Lock()
	c.hold = true
	c.wmu.Unlock()
}

// flush sends what is kept back, if anything, and cancels a hold that no
// write used.
func (c *scanConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.hold = false
	if c.held == nil {
		return nil
	}
	_, err := c.Conn.Write(*c.held)
	c.release()
	return err
}

// release gives the held buffer back; wmu is held.
func (c *scanConn) release() {
	*c.held = (*c.held)[:0]
	heldBufs.Put(c.held)
	c.held = nil
}
