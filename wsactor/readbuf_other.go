//go:build !unix

package wsactor

import (
	"net"
	"syscall"
)

// rawReader: only Unix systems wait for a socket without a buffer.
func rawReader(net.Conn) syscall.RawConn { return nil }

// readSocket reads once, into p or, when p is nil, into a pooled buffer
// kept in rbuf (see take).
func (c *scanConn) readSocket(p []byte) (int, error) { return c.readConn(p) }
