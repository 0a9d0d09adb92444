package conn

import (
	"log/slog"
	"net"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/actorhook"
)

// The methods below are what an *actor.Context calls (its runtime
// interface). They run on the actor's goroutine, during a callback.

// Push queues a data frame (Context.Push).
func (a *conn) Push(f actor.Frame) error { return a.push(f) }

// PushControl queues a ping or a pong (Context.Ping, Context.Pong).
func (a *conn) PushControl(f actor.Frame) error { return a.pushControl(f) }

// Queued counts the frames waiting to be written.
func (a *conn) Queued() int { return a.out.len() }

// Close starts the close handshake; code is sendable (checked by Context).
func (a *conn) Close(code actor.CloseCode, reason string) error {
	if a.state != stateOpen {
		return actor.ErrClosed
	}
	a.closeWith(actor.ReasonNormal, code, reason, nil)
	return nil
}

// Abort drops the connection without a close handshake.
func (a *conn) Abort() error {
	if a.state != stateOpen {
		return actor.ErrClosed
	}
	a.abort()
	return nil
}

// Self is the connection's PID.
func (a *conn) Self() *protoactor.PID { return a.self }

// System is the actor system the connection runs in.
func (a *conn) System() *protoactor.ActorSystem { return a.sys }

// Actor is the proto.actor context of the message being handled.
func (a *conn) Actor() protoactor.Context { return a.pc }

// SendAfter schedules msg for HandleInfo after d.
func (a *conn) SendAfter(d time.Duration, msg any) func() bool {
	if a.timers == nil {
		a.timers = make(map[uint64]*time.Timer)
	}
	a.timerSeq++
	id := a.timerSeq
	tm := &timerMsg{id: id, msg: msg}
	a.timers[id] = time.AfterFunc(d, func() { a.mb.post(tm) })
	return func() bool {
		t, ok := a.timers[id]
		if !ok {
			return false
		}
		delete(a.timers, id)
		t.Stop()
		return true
	}
}

// Logger is the connection's logger.
func (a *conn) Logger() *slog.Logger { return a.logger() }

// RemoteAddr is the peer's address, or nil without a socket.
func (a *conn) RemoteAddr() net.Addr {
	if a.t == nil {
		return nil
	}
	return a.t.RemoteAddr()
}

// Subprotocol is the negotiated subprotocol, or "" without a socket.
func (a *conn) Subprotocol() string {
	if a.t == nil {
		return ""
	}
	return a.t.Subprotocol()
}

// Directory is the registry connections use, and the bound on each call.
func (a *conn) Directory() (actor.Directory, time.Duration) { return a.cfg.dir, a.cfg.dirTimeout }

// StopNotice is fired when the actor stops: the registries holding its
// names and memberships release them then, without watching it. It is
// made at the first registry call (on the actor's turn, as Fire is).
func (a *conn) StopNotice() *actorhook.StopNotice {
	if a.stopNotice == nil {
		a.stopNotice = actorhook.NewStopNotice(a.self)
	}
	return a.stopNotice
}
