package actortest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/protows/protows/internal/conn"
	"github.com/protows/protows/wsactor"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
)

// DefaultTimeout is how long each Expect, Next or Terminated call waits.
const DefaultTimeout = 5 * time.Second

// Conn runs a handler as a real connection actor, in a proto.actor system
// of its own, over an in-memory socket the test plays the peer of.
type Conn struct {
	// Timeout bounds each call that waits (Next, NextData, the Expect
	// methods, Terminated, WaitSocketClosed), however many frames it
	// skips; DefaultTimeout unless changed.
	Timeout time.Duration

	tb   testing.TB
	sys  *protoactor.ActorSystem
	sup  *conn.Supervisor
	pid  *protoactor.PID
	p    *pipe
	rec  *recorder
	read int // frames of p.sent already returned by Next

	manualClose bool
	peerClosed  atomic.Bool // the peer sent its close frame, or its side ended
}

// Option configures New.
type Option func(*settings)

type settings struct {
	conn        []wsactor.Option
	subprotocol string
	sys         *protoactor.ActorSystem
	strategy    protoactor.SupervisorStrategy
	registry    bool
	manualClose bool
}

// WithStrategy supervises the connection with s instead of stopping it
// on its first failure, as a server does, to test how a handler behaves when restarted or
// resumed after a failure.
func WithStrategy(s protoactor.SupervisorStrategy) Option {
	return func(st *settings) { st.strategy = s }
}

// WithConnOptions gives the connection the options a server gives its
// connections: wsactor.WithKeepalive, wsactor.WithCloseTimeout,
// wsactor.WithOutboundLimit, wsactor.WithOverflowPolicy, wsactor.WithLogger,
// wsactor.WithRegistry, wsactor.WithMeterProvider. Options
// about the socket itself (buffer sizes, compression, read limit, write and
// handshake timeouts, subprotocols: see [WithSubprotocol]) do not apply to
// the in-memory socket. Keepalive is off unless set here.
func WithConnOptions(opts ...wsactor.Option) Option {
	return func(s *settings) { s.conn = append(s.conn, opts...) }
}

// WithSubprotocol makes Context.Subprotocol report p.
func WithSubprotocol(p string) Option { return func(s *settings) { s.subprotocol = p } }

// WithSystem runs the connection in sys instead of a new system. Several
// connections of one test share a system this way, to talk to each other
// or to share a registry (see [WithRegistry]). The test shuts sys down.
func WithSystem(sys *protoactor.ActorSystem) Option { return func(s *settings) { s.sys = sys } }

// WithRegistry gives the connection the registry r for Context.Register,
// Join, Leave, Publish and SendTo, as wsactor.WithRegistry gives it to a
// server's connections: each call bounded by 5 s, names and memberships
// released when the connection ends. A registry belongs to an actor
// system, so New also needs [WithSystem] with the system r was made in
// (registry.NewLocal(sys)); connections given the same system and
// registry reach each other by name. To give a connection a fake
// [actor.Directory] that belongs to no system, use
// WithConnOptions(wsactor.WithRegistry(fake)).
func WithRegistry(r actor.Directory) Option {
	return func(s *settings) {
		s.conn = append(s.conn, wsactor.WithRegistry(r))
		s.registry = true
	}
}

// WithManualCloseAnswer keeps the peer from answering the connection's
// close frame in [Conn.ExpectClose]. The test then answers with
// [Conn.PeerClose], or lets the close timeout (wsactor.WithCloseTimeout, 5 s
// by default) run out to test a peer that never answers; keep that timeout
// below [Conn.Timeout] so Terminated does not give up first.
func WithManualCloseAnswer() Option { return func(s *settings) { s.manualClose = true } }

// New spawns h as a connection actor and returns the peer's side. The actor
// and, unless WithSystem was given, its system are stopped when the test
// ends.
func New(tb testing.TB, h actor.Handler, opts ...Option) *Conn {
	tb.Helper()
	var s settings
	for _, o := range opts {
		o(&s)
	}
	if s.registry && s.sys == nil {
		tb.Fatalf("actortest: WithRegistry needs WithSystem with the actor system the registry was made in")
	}
	sys := s.sys
	if sys == nil {
		sys = protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
			return slog.New(slog.DiscardHandler)
		}))
	}
	o, err := conn.FromOptions(sys, append([]wsactor.Option{wsactor.WithKeepalive(0, 0)}, s.conn...))
	if err != nil {
		if s.sys == nil {
			sys.Shutdown()
		}
		tb.Fatalf("actortest: %v", err)
	}
	c := &Conn{Timeout: DefaultTimeout, tb: tb, sys: sys, p: newPipe(s.subprotocol), manualClose: s.manualClose}
	c.rec = &recorder{Handler: h, done: make(chan struct{})}
	c.sup = conn.NewSupervisor(sys, s.strategy)
	c.pid, err = c.sup.Spawn(o.Conn.Props(c.rec, c.p))
	if err != nil {
		if s.sys == nil {
			sys.Shutdown()
		}
		tb.Fatalf("actortest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		defer cancel()
		if err := c.sup.Stop(ctx); err != nil {
			tb.Errorf("actortest: connection did not stop: %v", err)
		}
		if s.sys == nil {
			sys.Shutdown()
		}
	})
	return c
}

// recorder passes every callback to the handler and records Terminate.
type recorder struct {
	actor.Handler
	mu     sync.Mutex
	calls  int
	reason actor.Reason
	done   chan struct{}
}

func (r *recorder) Terminate(c *actor.Context, reason actor.Reason) {
	r.mu.Lock()
	r.calls++
	first := r.calls == 1
	if first {
		r.reason = reason
	}
	r.mu.Unlock()
	if first {
		defer close(r.done)
	}
	r.Handler.Terminate(c, reason)
}

// PID returns the connection actor's PID.
func (c *Conn) PID() *protoactor.PID { return c.pid }

// System returns the actor system the connection runs in.
func (c *Conn) System() *protoactor.ActorSystem { return c.sys }

// In sends f from the peer: a text or binary message, a ping or a pong.
// Text is delivered as given, so invalid UTF-8 can be tested.
func (c *Conn) In(f actor.Frame) { c.p.in <- peerEvent{frame: f} }

// InText sends a text message from the peer.
func (c *Conn) InText(s string) { c.In(actor.Text(s)) }

// InBinary sends a binary message from the peer.
func (c *Conn) InBinary(b []byte) { c.In(actor.Binary(b)) }

// Ping sends a ping from the peer; the pong is answered automatically and
// shows up in Next.
func (c *Conn) Ping(data string) { c.In(actor.Frame{Type: actor.PingMessage, Data: []byte(data)}) }

// Pong sends a pong from the peer.
func (c *Conn) Pong(data string) { c.In(actor.Frame{Type: actor.PongMessage, Data: []byte(data)}) }

// PeerClose sends a close frame from the peer. A peer sends one close
// frame: once it has (with PeerClose, or by ExpectClose answering the
// connection's close), or its side has failed (ProtocolError, Drop),
// PeerClose does nothing.
func (c *Conn) PeerClose(code actor.CloseCode, reason string) {
	if c.peerClosed.Swap(true) {
		return
	}
	c.p.in <- peerEvent{close: &actor.CloseError{Code: code, Reason: reason}}
}

// ProtocolError makes the socket fail as if the peer broke the protocol;
// the socket sends a close frame with code.
func (c *Conn) ProtocolError(code actor.CloseCode, err error) {
	c.peerClosed.Store(true)
	c.p.in <- peerEvent{protocol: &actor.ProtocolError{Code: code, Err: err}}
}

// Drop makes the network fail: the socket ends without a close frame.
func (c *Conn) Drop() {
	c.peerClosed.Store(true)
	c.p.in <- peerEvent{drop: true}
}

// Send sends msg to the connection from outside any actor; it reaches
// HandleInfo.
func (c *Conn) Send(msg any) { c.sys.Root.Send(c.pid, msg) }

// StallWrites makes the peer stop reading: writes block until ResumeWrites
// or the socket is closed.
func (c *Conn) StallWrites() {
	c.p.mu.Lock()
	if c.p.stall == nil {
		c.p.stall = make(chan struct{})
	}
	c.p.mu.Unlock()
}

// ResumeWrites lets stalled writes go on.
func (c *Conn) ResumeWrites() {
	c.p.mu.Lock()
	if c.p.stall != nil {
		close(c.p.stall)
		c.p.stall = nil
	}
	c.p.mu.Unlock()
}

// Next returns the next frame written to the peer, waiting up to Timeout.
func (c *Conn) Next() (Sent, error) { return c.next(time.Now().Add(c.Timeout)) }

func (c *Conn) next(deadline time.Time) (Sent, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		c.p.mu.Lock()
		if c.read < len(c.p.sent) {
			s := c.p.sent[c.read]
			c.read++
			c.p.mu.Unlock()
			return s, nil
		}
		c.p.mu.Unlock()
		select {
		case <-c.p.notify:
		case <-timer.C:
			return Sent{}, fmt.Errorf("actortest: nothing written to the peer within %v", c.Timeout)
		}
	}
}

// NextData returns the next data or close frame written to the peer,
// skipping pings and pongs. It waits up to Timeout in all, however many
// pings and pongs come first.
func (c *Conn) NextData() (Sent, error) {
	deadline := time.Now().Add(c.Timeout)
	for {
		s, err := c.next(deadline)
		if err != nil {
			return s, fmt.Errorf("actortest: no data or close frame written to the peer within %v", c.Timeout)
		}
		if s.Close || s.Frame.IsData() {
			return s, nil
		}
	}
}

// ExpectFrame fails the test unless the next data frame written is want.
func (c *Conn) ExpectFrame(want actor.Frame) {
	c.tb.Helper()
	got, err := c.NextData()
	if err != nil {
		c.tb.Fatalf("expected %v: %v", want, err)
	}
	if got.Close || got.Frame.Type != want.Type || string(got.Frame.Data) != string(want.Data) {
		c.tb.Fatalf("expected %v, the connection wrote %v", want, got)
	}
}

// ExpectText fails the test unless the next data frame written is the text s.
func (c *Conn) ExpectText(s string) { c.tb.Helper(); c.ExpectFrame(actor.Text(s)) }

// ExpectClose fails the test unless the next frame written, skipping pings
// and pongs, is a close frame with code; it returns the close reason.
//
// When the connection closed first, the peer answers as a browser does,
// with a close frame echoing code, which completes the close handshake:
// the connection closes its socket and runs Terminate without waiting for
// the close timeout. When the peer closed first (PeerClose) or its side
// failed (ProtocolError, Drop), the close frame was the connection's answer
// and there is nothing to answer. [WithManualCloseAnswer] turns the answer
// off.
func (c *Conn) ExpectClose(code actor.CloseCode) string {
	c.tb.Helper()
	got, err := c.NextData()
	if err != nil {
		c.tb.Fatalf("expected close %v: %v", code, err)
	}
	if !got.Close || got.Code != code {
		c.tb.Fatalf("expected close %v, the connection wrote %v", code, got)
	}
	if !c.manualClose && !c.p.readEnded() && !c.peerClosed.Swap(true) {
		// The reader is waiting for this frame, or has just ended (a
		// protocol error it answered itself): then nothing reads it.
		select {
		case c.p.in <- peerEvent{close: &actor.CloseError{Code: got.Code}}:
		case <-c.p.closed:
		}
	}
	return got.Reason
}

// Terminated waits for Terminate and returns its reason. It fails the test
// if Terminate does not run within Timeout.
func (c *Conn) Terminated() actor.Reason {
	c.tb.Helper()
	select {
	case <-c.rec.done:
	case <-time.After(c.Timeout):
		c.tb.Fatalf("Terminate was not called within %v", c.Timeout)
	}
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	return c.rec.reason
}

// TerminateCalls returns how often Terminate has run so far (a correct
// connection runs it exactly once).
func (c *Conn) TerminateCalls() int {
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	return c.rec.calls
}

// SocketClosed reports whether the connection has closed its socket.
func (c *Conn) SocketClosed() bool { return c.p.isClosed() }

// WaitSocketClosed fails the test unless the connection closes its socket
// within Timeout.
func (c *Conn) WaitSocketClosed() {
	c.tb.Helper()
	select {
	case <-c.p.closed:
	case <-time.After(c.Timeout):
		c.tb.Fatalf("the socket was not closed within %v", c.Timeout)
	}
}
