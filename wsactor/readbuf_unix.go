//go:build unix

package wsactor

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawReader returns the socket under nc for readSocket, or nil when nc is
// not a TCP or Unix socket.
func rawReader(nc net.Conn) syscall.RawConn {
	switch c := nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		rc, err := c.(syscall.Conn).SyscallConn()
		if err != nil {
			return nil
		}
		return rc
	}
	return nil
}

// readSocket reads once from the socket, into p or, when p is nil, into a
// pooled buffer kept in rbuf (see take). On a raw socket it waits for the
// socket to become readable before it takes the buffer, so an idle
// connection holds none; read deadlines and Close apply as to Read. The
// callback is made once per connection (rawRead), so a read allocates
// nothing.
func (c *scanConn) readSocket(p []byte) (int, error) {
	if c.raw == nil {
		return c.readConn(p)
	}
	if c.rawRead == nil {
		c.rawRead = c.readFD
	}
	c.rdst = p
	err := c.raw.Read(c.rawRead)
	c.rdst = nil
	n, rerr := c.rn, c.rerr
	c.rn, c.rerr = 0, nil
	switch {
	case err != nil: // a deadline passed, or the socket was closed
	case rerr != nil:
		err = &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		err = io.EOF
	default:
		return n, nil
	}
	c.giveBack(p)
	return 0, err
}

// readFD is readSocket's callback: it reads from fd once the socket may be
// readable, and asks to wait (false) when it was not.
func (c *scanConn) readFD(fd uintptr) bool {
	buf := c.take(c.rdst)
	var (
		n   int
		err error
	)
	for {
		n, err = syscall.Read(int(fd), buf)
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.EAGAIN {
		c.giveBack(c.rdst)
		return false // wait until readable
	}
	c.rn, c.rerr = max(n, 0), err
	return true
}
