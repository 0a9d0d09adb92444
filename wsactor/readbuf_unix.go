//go:build unix

package wsactor

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawReader returns the socket under nc for waitRead, or nil when nc is
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

// waitRead reads once from the socket into the buffer get returns. On a
// raw socket it waits for the socket to become readable first and only
// then calls get (put undoes a get whose read found nothing), so an idle
// connection holds no buffer; read deadlines and Close apply as to Read.
func (c *scanConn) waitRead(get func() []byte, put func()) (int, error) {
	if c.raw == nil {
		return c.Conn.Read(get())
	}
	var (
		n    int
		rerr error
	)
	err := c.raw.Read(func(fd uintptr) bool {
		buf := get()
		for {
			n, rerr = syscall.Read(int(fd), buf)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			put()
			return false // wait until readable
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err // a deadline passed, or the socket was closed
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
