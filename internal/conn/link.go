package conn

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/protows/protows/actor"
)

// Dialer opens a client connection's socket. It is called from a goroutine
// of its own; ctx is cancelled when the client stops.
type Dialer func(ctx context.Context) (Transport, *actor.ConnectResponse, error)

// ClientLink is shared between a client connection actor and the handle its
// creator keeps: whether it is connected, how many frames it holds, and how
// it ended.
type ClientLink struct {
	connected atomic.Bool
	held      atomic.Int64
	holdMax   int64
	closeReq  atomic.Bool
	done      chan struct{}
	reason    actor.Reason // written before done is closed

	upMu sync.Mutex
	up   chan struct{} // closed while connected; replaced by an open one at each disconnect
}

func newClientLink(holdMax int) *ClientLink {
	return &ClientLink{holdMax: int64(holdMax), done: make(chan struct{}), up: make(chan struct{})}
}

// Connected reports whether the client has an open socket now.
func (l *ClientLink) Connected() bool { return l.connected.Load() }

// setConnected records that the client's socket is open or not; the actor
// calls it, WaitConnected waits on it.
func (l *ClientLink) setConnected(up bool) {
	l.upMu.Lock()
	defer l.upMu.Unlock()
	l.connected.Store(up)
	select {
	case <-l.up: // connected until now
		if !up {
			l.up = make(chan struct{})
		}
	default:
		if up {
			close(l.up)
		}
	}
}

// WaitConnected returns nil once the client is connected: at once if it is
// now, or at its next successful handshake. It returns ctx.Err() if ctx
// ends first, and an error matching [actor.ErrClosed] if the client has ended
// (closed, stopped, or given up by its handler or reconnect policy); that
// error also wraps the error of the client's last Reason, so errors.As
// finds a [*actor.DialError] when the last dial was refused.
func (l *ClientLink) WaitConnected(ctx context.Context) error {
	l.upMu.Lock()
	up := l.up
	l.upMu.Unlock()
	// An ended client is never connected (its channel was replaced before
	// done was closed), so up wins over done only when it really connected.
	select {
	case <-up:
		return nil
	default:
	}
	select {
	case <-l.done:
		return endedError(l.reason)
	default:
	}
	select {
	case <-up:
		return nil
	case <-l.done:
		return endedError(l.reason)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// endedError says that a client has ended, and why.
func endedError(r actor.Reason) error {
	if r.Err != nil {
		return fmt.Errorf("%w: the client ended (%s %s): %w", actor.ErrClosed, r.Kind, r.Code, r.Err)
	}
	return fmt.Errorf("%w: the client ended (%s)", actor.ErrClosed, r)
}

// Done is closed once the client actor has terminated.
func (l *ClientLink) Done() <-chan struct{} { return l.done }

// Reason returns why the client ended; valid once Done is closed.
func (l *ClientLink) Reason() actor.Reason {
	<-l.done
	return l.reason
}

// reserveHold takes a place for a frame held while disconnected.
func (l *ClientLink) reserveHold() bool {
	for {
		n := l.held.Load()
		if n >= l.holdMax {
			return false
		}
		if l.held.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// pushMsg carries a frame from Send to the actor.
type pushMsg struct {
	f        actor.Frame
	reserved bool // a hold place was taken for it
}

// clientClose asks a connected client to close gracefully.
type clientClose struct {
	code   actor.CloseCode
	reason string
}

// Send queues f for the peer of a client connection from outside the
// actor. While the client is disconnected the frame is held, in order, if
// fewer than the hold limit ([WithHoldWhileDisconnected]) are held already,
// and sent after the next connect; otherwise Send returns ErrDisconnected.
func (l *ClientLink) Send(sys *protoactor.ActorSystem, pid *protoactor.PID, f actor.Frame) error {
	if !f.IsData() {
		return fmt.Errorf("protows: Send takes text or binary frames, not %s", f.Type)
	}
	select {
	case <-l.done:
		return actor.ErrClosed
	default:
	}
	if l.connected.Load() {
		sys.Root.Send(pid, &pushMsg{f: f})
		return nil
	}
	if l.reserveHold() {
		sys.Root.Send(pid, &pushMsg{f: f, reserved: true})
		return nil
	}
	return actor.ErrDisconnected
}

// SendControl queues a ping or an unsolicited pong (at most 125 bytes of
// payload) for the peer of a client connection from outside the actor, in
// order with the frames sent before it. It is not held while the client
// is disconnected: it returns ErrDisconnected then.
func (l *ClientLink) SendControl(sys *protoactor.ActorSystem, pid *protoactor.PID, f actor.Frame) error {
	if f.Type != actor.PingMessage && f.Type != actor.PongMessage {
		return fmt.Errorf("protows: a control frame is a ping or a pong, not %s", f.Type)
	}
	if len(f.Data) > maxControlPayload {
		return fmt.Errorf("protows: %s payload of %d bytes is over the %d a control frame holds", f.Type, len(f.Data), maxControlPayload)
	}
	select {
	case <-l.done:
		return actor.ErrClosed
	default:
	}
	if !l.connected.Load() {
		return actor.ErrDisconnected
	}
	sys.Root.Send(pid, &pushMsg{f: f})
	return nil
}

// Close closes the client with code: gracefully (close handshake) when it
// is connected, at once otherwise. Terminate sees ReasonNormal. It does not
// wait; see Done.
func (l *ClientLink) Close(sys *protoactor.ActorSystem, pid *protoactor.PID, code actor.CloseCode, reason string) {
	select {
	case <-l.done:
		return // ended already
	default:
	}
	l.closeReq.Store(true)
	if l.connected.Load() {
		sys.Root.Send(pid, &clientClose{code: code, reason: reason})
		return
	}
	// Disconnected: its mailbox may be suspended until the next reconnect;
	// a system message gets through.
	sys.Root.Stop(pid)
}
