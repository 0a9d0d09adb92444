package wsactor

import (
	"sync"
)

// Reading without an idle buffer. gorilla reads through a bufio.Reader it
// keeps for the life of a connection; a connection that is idle most of
// the time would hold that buffer for nothing. scanConn reads the socket
// into a buffer taken from a pool when bytes arrive, and gives it back as
// soon as gorilla has taken them all, while gorilla's own buffer is the
// smallest it allows (minGorillaReadBuffer: enough for a frame header and
// a control frame). One system call still reads as much as the pooled
// buffer holds.
//
// On a TCP or Unix socket (Unix systems) the reader goroutine waits for
// the socket to become readable with no buffer at all (see readSocket); on
// other connections it holds one while it waits. A TLS connection is read
// as it is, through gorilla's smallest buffer: crypto/tls keeps its own.

// minGorillaReadBuffer is the smallest read buffer gorilla accepts: it
// raises any smaller size to the largest control frame payload.
const minGorillaReadBuffer = 125

// readPool hands out read buffers of one size.
type readPool struct {
	size int
	pool sync.Pool
}

// readPools holds a readPool per buffer size, shared by every server and
// client with that size.
var readPools sync.Map // int -> *readPool

// readPoolFor returns the pool of buffers of size bytes.
func readPoolFor(size int) *readPool {
	if p, ok := readPools.Load(size); ok {
		return p.(*readPool)
	}
	p := &readPool{size: size}
	p.pool.New = func() any { b := make([]byte, size); return &b }
	actual, _ := readPools.LoadOrStore(size, p)
	return actual.(*readPool)
}

// readBuffered is scanConn.Read when it buffers reads.
func (c *scanConn) readBuffered(p []byte) (int, error) {
	if c.rbuf == nil {
		if len(p) >= c.rpool.size {
			// As large as a pooled buffer: read straight into p.
			n, err := c.readSocket(p)
			c.scan.scan(p[:n])
			return n, err
		}
		n, err := c.readSocket(nil)
		if n <= 0 {
			return 0, err
		}
		c.scan.scan((*c.rbuf)[:n])
		c.rpos, c.rend = 0, n
		// An error with bytes (a peer that wrote and closed) comes back
		// with the next read, as the socket reports it again.
	}
	n := copy(p, (*c.rbuf)[c.rpos:c.rend])
	c.rpos += n
	if c.rpos == c.rend {
		c.rpool.pool.Put(c.rbuf)
		c.rbuf = nil
	}
	return n, nil
}

// take returns the buffer a read goes into: p, or when p is nil a pooled
// one, kept in rbuf.
func (c *scanConn) take(p []byte) []byte {
	if p != nil {
		return p
	}
	if c.rbuf == nil {
		c.rbuf = c.rpool.pool.Get().(*[]byte)
	}
	return *c.rbuf
}

// readConn reads once from the connection itself, into p or a pooled
// buffer (see take), holding the buffer while it waits.
func (c *scanConn) readConn(p []byte) (int, error) {
	n, err := c.Conn.Read(c.take(p))
	if n <= 0 {
		c.giveBack(p)
	}
	return n, err
}

// giveBack undoes take after a read that got nothing.
func (c *scanConn) giveBack(p []byte) {
	if p == nil && c.rbuf != nil {
		c.rpool.pool.Put(c.rbuf)
		c.rbuf = nil
	}
}
