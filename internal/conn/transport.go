package conn

import (
	"errors"
	"net"

	"github.com/protows/protows/actor"
)

// ErrCloseSent is returned by a Transport's writes once the transport has
// sent a close frame of its own (after a protocol error): nothing more may
// be sent, and the socket is not broken.
var ErrCloseSent = errors.New("protows: close frame already sent")

// Transport is the socket under a connection actor. wsactor implements it
// with gorilla/websocket; actortest implements it in memory. The actor
// calls ReadLoop from one goroutine and the write methods from one goroutine
// at a time; Close may be called from any goroutine, more than once.
type Transport interface {
	// ReadLoop reads from the peer until the connection ends, calling deliver
	// for each data message and each ping or pong, in order, from the
	// calling goroutine. Pongs to pings are sent by the transport before
	// deliver sees the ping. A text message is delivered only if it is valid
	// UTF-8; otherwise the transport closes with 1007 (as early as the first
	// fragment that cannot begin valid UTF-8) and returns a *ProtocolError. ReadLoop returns the error that ended reading:
	// a *CloseError when the peer sent a close frame (the transport does not
	// answer it), a *ProtocolError when the peer broke the protocol (the
	// transport has sent the close frame), or the network error. Before the
	// transport writes a close frame of its own after a protocol error, it
	// calls drain on the same goroutine: the actor writes what it has queued,
	// replies to the frames before the bad one included.
	ReadLoop(deliver func(actor.Frame), drain func()) error
	// WriteFrame writes one data message within the transport's write
	// timeout.
	WriteFrame(f actor.Frame) error
	// WritePing writes a ping. Unlike the other writes it may be called
	// concurrently with them; it goes out between data frames.
	WritePing(data []byte) error
	// WritePong writes a pong, as WritePing writes a ping.
	WritePong(data []byte) error
	// MoreBuffered reports whether a whole message or control frame has
	// been read from the peer and waits to be delivered, so that the
	// ReadLoop's next deliver comes without waiting for the network. It is
	// called from deliver, on the ReadLoop's goroutine. A transport that
	// cannot tell reports false.
	MoreBuffered() bool
	// Hold asks that the next frame written (WriteFrame, WritePing,
	// WritePong) be kept back, to go out with the write after it in one
	// system call. The writer calls it when more frames wait behind the one
	// it writes; a write without Hold before it, WriteClose, or Flush sends
	// what is kept. A transport that cannot hold ignores it.
	Hold()
	// Flush sends what Hold kept back, and cancels a Hold no write used.
	Flush() error
	// WriteClose writes a close frame with code and reason.
	WriteClose(code actor.CloseCode, reason string) error
	// Close closes the network connection without a close frame; a blocked
	// ReadLoop or write returns.
	Close() error
	// RemoteAddr returns the peer's network address.
	RemoteAddr() net.Addr
	// Subprotocol returns the negotiated subprotocol, or "".
	Subprotocol() string
}
