package actortest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/protows/protows/internal/conn"

	"github.com/protows/protows/actor"
)

// Sent is one frame the handler's connection wrote to the peer.
type Sent struct {
	// Frame is a data frame, a ping, or a pong answering a ping.
	Frame actor.Frame
	// Close is true for a close frame, with Code and Reason.
	Close  bool
	Code   actor.CloseCode
	Reason string
}

// String formats the frame for test failures.
func (s Sent) String() string {
	if s.Close {
		return "close " + s.Code.String() + " " + s.Reason
	}
	return s.Frame.String()
}

type peerEvent struct {
	frame    actor.Frame
	close    *actor.CloseError
	protocol *actor.ProtocolError
	drop     bool
}

// addr is the fake network address of the in-memory peer.
type addr struct{}

func (addr) Network() string { return "memory" }
func (addr) String() string  { return "actortest" }

// pipe is an in-memory conn.Transport.
type pipe struct {
	in          chan peerEvent
	closed      chan struct{}
	closeOnce   sync.Once
	subprotocol string
	readDone    atomic.Bool // ReadLoop has returned

	mu        sync.Mutex
	sent      []Sent
	notify    chan struct{} // receives a token whenever sent grows
	closeSent bool
	stall     chan struct{} // when non-nil, writes wait until it is closed
}

func newPipe(subprotocol string) *pipe {
	return &pipe{
		in:          make(chan peerEvent, 1024),
		closed:      make(chan struct{}),
		notify:      make(chan struct{}, 1),
		subprotocol: subprotocol,
	}
}

var _ conn.Transport = (*pipe)(nil)

func (p *pipe) ReadLoop(deliver func(actor.Frame), _ func()) error {
	defer p.readDone.Store(true)
	for {
		select {
		case ev := <-p.in:
			switch {
			case ev.close != nil:
				return ev.close
			case ev.protocol != nil:
				p.record(Sent{Close: true, Code: ev.protocol.Code, Reason: ev.protocol.Err.Error()})
				return ev.protocol
			case ev.drop:
				return io.ErrUnexpectedEOF
			}
			if ev.frame.Type == actor.TextMessage && !utf8.Valid(ev.frame.Data) {
				// As a real transport does: 1007, and reading ends.
				p.record(Sent{Close: true, Code: actor.CloseInvalidPayload, Reason: "invalid UTF-8"})
				return &actor.ProtocolError{Code: actor.CloseInvalidPayload, Err: actor.ErrInvalidUTF8}
			}
			if ev.frame.Type == actor.PingMessage {
				p.record(Sent{Frame: actor.Frame{Type: actor.PongMessage, Data: ev.frame.Data}})
			}
			deliver(ev.frame)
		case <-p.closed:
			return net.ErrClosed
		}
	}
}

func (p *pipe) wait() error {
	p.mu.Lock()
	stall := p.stall
	p.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-p.closed:
			return net.ErrClosed
		}
	}
	select {
	case <-p.closed:
		return net.ErrClosed
	default:
		return nil
	}
}

func (p *pipe) WriteFrame(f actor.Frame) error {
	if err := p.wait(); err != nil {
		return err
	}
	return p.record(Sent{Frame: f})
}

func (p *pipe) WritePing(data []byte) error {
	if err := p.wait(); err != nil {
		return err
	}
	return p.record(Sent{Frame: actor.Frame{Type: actor.PingMessage, Data: data}})
}

func (p *pipe) WritePong(data []byte) error {
	if err := p.wait(); err != nil {
		return err
	}
	return p.record(Sent{Frame: actor.Frame{Type: actor.PongMessage, Data: data}})
}

// MoreBuffered reports false: each frame is delivered as the test sends it.
func (p *pipe) MoreBuffered() bool { return false }

// Hold does nothing: each frame reaches the test as it is written.
func (p *pipe) Hold() {}

// Flush does nothing; see Hold.
func (p *pipe) Flush() error { return nil }

func (p *pipe) WriteClose(code actor.CloseCode, reason string) error {
	if err := p.wait(); err != nil {
		return err
	}
	return p.record(Sent{Close: true, Code: code, Reason: reason})
}

func (p *pipe) record(s Sent) error {
	p.mu.Lock()
	if p.closeSent {
		p.mu.Unlock()
		return conn.ErrCloseSent
	}
	p.closeSent = s.Close
	p.sent = append(p.sent, s)
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
	return nil
}

func (p *pipe) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	return nil
}

func (p *pipe) RemoteAddr() net.Addr { return addr{} }
func (p *pipe) Subprotocol() string  { return p.subprotocol }

func (p *pipe) readEnded() bool { return p.readDone.Load() }

func (p *pipe) isClosed() bool {
	select {
	case <-p.closed:
		return true
	default:
		return false
	}
}
