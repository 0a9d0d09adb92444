package actor

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/internal/actorhook"
)

// Context is what a callback reaches its connection through: push frames,
// close, talk to other actors, schedule messages to itself, log, and, with
// a registry (wsactor.WithRegistry), names and groups. It is valid only
// during the callback it was passed to; never keep it or use it from
// another goroutine (send the connection's PID a message instead).
type Context struct {
	rt connRuntime
}

// connRuntime is the connection a Context belongs to; internal/conn implements
// it. State checks live there, argument checks here.
type connRuntime interface {
	Push(f Frame) error
	PushControl(f Frame) error
	Queued() int
	Close(code CloseCode, reason string) error
	Abort() error
	Self() *protoactor.PID
	System() *protoactor.ActorSystem
	Actor() protoactor.Context
	SendAfter(d time.Duration, msg any) func() bool
	Logger() *slog.Logger
	RemoteAddr() net.Addr
	Subprotocol() string
	Directory() (Directory, time.Duration)
	// StopNotice is fired when the connection stops (see
	// actorhook.StopNotice).
	StopNotice() *actorhook.StopNotice
}

func init() {
	actorhook.NewContext = func(rt any) any { return &Context{rt: rt.(connRuntime)} }
	actorhook.NewHandshake = func(ctx context.Context, r *http.Request, offered []string) any {
		return &Handshake{Request: r, Header: http.Header{}, ctx: ctx, offered: offered}
	}
}

// Push queues a data frame for the peer. Frames are written in the order
// pushed, by a writer that never blocks the actor. Push returns ErrClosed
// once the connection is closing (the frame is not sent) and ErrOutboxFull
// when the connection's backlog is full and its overflow policy refuses or
// closes (see wsactor.WithOverflowPolicy); a callback may return either
// error as it is.
func (c *Context) Push(f Frame) error { return c.rt.Push(f) }

// Queued returns how many frames are waiting to be written to the peer
// (messages from other actors not yet handled are not counted).
func (c *Context) Queued() int { return c.rt.Queued() }

// Close starts the close handshake with code and reason: frames pushed
// before are still sent, nothing pushed after is. Terminate follows with
// ReasonNormal once the peer answers or the close timeout passes. It
// returns ErrClosed if the connection is already closing.
func (c *Context) Close(code CloseCode, reason string) error {
	if !code.Sendable() {
		return fmt.Errorf("protows: close code %d cannot be sent", code)
	}
	return c.rt.Close(code, reason)
}

// Ping queues a ping with data (at most 125 bytes) for the peer, in order
// with the frames pushed before it. The peer's pong arrives in
// HandleControl. Ping returns ErrClosed once the connection is closing,
// ErrDisconnected while a client is between sockets, and ErrOutboxFull
// under the overflow policy, as Push does. Keepalive pings (see
// wsactor.WithKeepalive) are separate and need no call.
func (c *Context) Ping(data []byte) error {
	return c.rt.PushControl(Frame{Type: PingMessage, Data: data})
}

// Pong queues an unsolicited pong with data (at most 125 bytes), which a
// peer may use as a one-way heartbeat (RFC 6455 section 5.5.3). Pings from
// the peer are answered without it. Errors are those of Ping.
func (c *Context) Pong(data []byte) error {
	return c.rt.PushControl(Frame{Type: PongMessage, Data: data})
}

// Abort drops the connection at once, without a close handshake: frames
// still queued are discarded, the TCP connection is closed, and Terminate
// follows with ReasonNormal, code CloseAbnormal (1006) and ErrAborted. A
// client does not reconnect after it. Use Close to end a connection
// cleanly; Abort is for a peer that should get nothing more. It returns
// ErrClosed if the connection is already closing (or a client is between
// sockets).
func (c *Context) Abort() error { return c.rt.Abort() }

// Self returns the connection's PID: send it messages to reach HandleInfo.
func (c *Context) Self() *protoactor.PID { return c.rt.Self() }

// System returns the actor system the connection runs in.
func (c *Context) System() *protoactor.ActorSystem { return c.rt.System() }

// Actor returns the proto.actor context of the message being handled, for
// what Context does not wrap (spawning children, behaviours, requests).
// During HandleIn and HandleControl its Message is the connection's
// internal event for the frame, which the reader reuses once the callback
// returns: do not Stash or Forward it, or keep it past the callback; pass
// the Frame on instead.
func (c *Context) Actor() protoactor.Context { return c.rt.Actor() }

// Sender returns the sender of the message being handled, or nil.
func (c *Context) Sender() *protoactor.PID { return c.rt.Actor().Sender() }

// Send sends msg to pid without waiting.
func (c *Context) Send(pid *protoactor.PID, msg any) { c.rt.Actor().Send(pid, msg) }

// Request sends msg to pid with the connection as sender; the reply arrives
// in HandleInfo.
func (c *Context) Request(pid *protoactor.PID, msg any) { c.rt.Actor().Request(pid, msg) }

// RequestFuture sends msg to pid and returns a future for the reply. Waiting
// on it inside a callback blocks the connection; prefer Request, or
// Actor().ReenterAfter.
func (c *Context) RequestFuture(pid *protoactor.PID, msg any, timeout time.Duration) *protoactor.Future {
	return c.rt.Actor().RequestFuture(pid, msg, timeout)
}

// Respond replies to the sender of the message being handled.
func (c *Context) Respond(msg any) { c.rt.Actor().Respond(msg) }

// Watch asks for a *protoactor.Terminated in HandleInfo when pid stops.
func (c *Context) Watch(pid *protoactor.PID) { c.rt.Actor().Watch(pid) }

// Unwatch cancels Watch.
func (c *Context) Unwatch(pid *protoactor.PID) { c.rt.Actor().Unwatch(pid) }

// SendAfter delivers msg to HandleInfo after d. The returned cancel
// function, called from a later callback, stops the delivery and reports
// whether it was still pending. Pending messages are dropped when the
// connection ends.
func (c *Context) SendAfter(d time.Duration, msg any) (cancel func() bool) {
	return c.rt.SendAfter(d, msg)
}

// Logger returns the connection's logger, with the attributes "conn" and
// "remote".
func (c *Context) Logger() *slog.Logger { return c.rt.Logger() }

// RemoteAddr returns the peer's network address, or nil while a client
// has no socket.
func (c *Context) RemoteAddr() net.Addr { return c.rt.RemoteAddr() }

// Subprotocol returns the negotiated subprotocol, or "" (also while a
// client has no socket).
func (c *Context) Subprotocol() string { return c.rt.Subprotocol() }
