//go:build !unix

package wsactor

import (
	"net"
	"syscall"
)

// rawReader: only Unix systems wait for a socket without a buffer.
func rawReader(net.Conn) syscall.RawConn { return nil }

// waitRead reads once into the buffer get returns.
func (c *scanConn) waitRead(get func() []byte, _ func()) (int, error) {
	return c.Conn.Read(get())
}
