package conn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/actorhook"
	"github.com/protows/protows/supervision"

	protoactor "github.com/asynkron/protoactor-go/actor"
)

type connState uint8

const (
	stateOpen         connState = iota
	stateClosing                // a close frame is queued or the socket failed; no more frames are accepted
	stateClosed                 // the socket is closed and the actor is stopping
	stateConnecting             // a client is dialling
	stateDisconnected           // a client's socket ended; its supervisor decides what next
)

// Messages the connection actor sends itself. Those about a socket carry
// its generation: a client dials a new socket after each disconnect, and
// what the old socket's goroutines still report is ignored.
type (
	inFrame struct {
		f      actor.Frame
		gen    uint32
		queued bool // it holds a place in the inbound window (conn.inflight)
	}
	readerExit struct {
		err error
		gen uint32
	}
	// handled is posted by the reader behind the frames it has queued;
	// the actor closes done when it gets to it, so all of them have been
	// handled (see reader.beforeClose).
	handled struct {
		done chan struct{}
	}
	writeDone struct {
		err   error
		close bool // our close frame was written
		gen   uint32
	}
	keepaliveTick struct{ gen uint32 }
	closeExpired  struct{ gen uint32 }
	redial        struct{ gen uint32 } // a client's restart delay is over
	dialResult    struct {
		t    Transport
		resp *actor.ConnectResponse
		err  error
		gen  uint32
	}
	timerMsg struct {
		id  uint64
		msg any
	}
)

// conn is the proto.actor actor behind one websocket connection.
type conn struct {
	cfg  *Config
	h    actor.Handler
	mb   *mailbox
	ctx  *actor.Context
	dial Dialer // client mode when set
	ch   actor.ClientHandler
	link *ClientLink // client mode

	// Set in Started; read-only afterwards.
	sys  *protoactor.ActorSystem
	self *protoactor.PID

	out         outbox
	backlog     backlog       // what waits for the peer: counted mailbox messages and queued frames
	overflowing atomic.Bool   // the backlog overflowed under OverflowClose; the close is on its way
	inflight    chan struct{} // reader events queued in the mailbox; bounds what the reader runs ahead
	done        chan struct{} // closed when the actor has stopped

	// Owned by Receive.
	t           Transport // the current socket; nil while a client is between sockets
	gen         uint32
	pc          protoactor.Context
	log         *slog.Logger
	state       connState
	started     bool
	initFailed  bool // Init did not return (it failed); a restart runs it again
	reason      actor.Reason
	failure     error
	terminated  bool
	readerDone  bool
	closeSent   bool // our close frame was written, or there is no point writing one
	counted     bool // the socket counts in the open-connections metric
	connectedAt time.Time
	seen        uint64
	seenAtPing  uint64
	awaitPong   bool
	keepalive   *time.Timer
	closeTimer  *time.Timer
	cancelDial  context.CancelFunc
	lastDrop    *supervision.Disconnect // the failure escalated for the last socket
	redialTimer *time.Timer
	dialMu      sync.Mutex            // guards dialStop and dialOut, shared with the dial goroutine
	dialStop    bool                  // the actor has stopped: a late dial closes its socket
	dialOut     *dialResult           // a result posted but not yet taken
	held        []actor.Frame         // pushed while a client was disconnected
	stopNotice  *actorhook.StopNotice // made at the first registry call
	timers      map[uint64]*time.Timer
	timerSeq    uint64
}

func newConn(cfg *Config, h actor.Handler) *conn {
	a := &conn{
		cfg:      cfg,
		h:        h,
		inflight: make(chan struct{}, inboundWindow),
		done:     make(chan struct{}),
	}
	a.ctx = actorhook.NewContext(a).(*actor.Context)
	a.backlog.maxBytes, a.backlog.maxItems = int64(cfg.outboundBytes), int64(cfg.outboundFrames)
	a.out.bl = &a.backlog
	a.mb = &mailbox{a: a}
	return a
}

func (a *conn) props() *protoactor.Props {
	return protoactor.PropsFromProducer(
		func() protoactor.Actor { return a },
		protoactor.WithMailbox(func() protoactor.Mailbox { return a.mb }),
	)
}

// Props returns the props of a server connection actor that runs h over t.
// Spawn it under a parent whose supervisor strategy is [StopOnFailure] (a
// [Supervisor] does that); the actor starts reading when it starts.
func (cfg *Config) Props(h actor.Handler, t Transport) *protoactor.Props {
	a := newConn(cfg, h)
	a.t = t
	a.out.attach(t, 0)
	return a.props()
}

// ClientProps returns the props of a client connection actor that runs h
// over sockets opened by dial, and the link its creator keeps. Spawn it
// under a parent with a reconnect strategy (supervision.Policy): when a
// socket ends the actor asks h.HandleDisconnect and escalates a
// *[supervision.Disconnect]; a restart dials again, with the same PID and handler.
func (cfg *Config) ClientProps(h actor.ClientHandler, dial Dialer) (*protoactor.Props, *ClientLink) {
	a := newConn(cfg, h)
	a.dial, a.ch = dial, h
	a.link = newClientLink(cfg.holdFrames)
	a.state = stateDisconnected
	return a.props(), a.link
}

// Receive maps proto.actor messages and socket events to handler callbacks.
func (a *conn) Receive(pc protoactor.Context) {
	a.pc = pc
	switch m := pc.Message().(type) {
	case *inFrame:
		if m.gen == a.gen {
			a.onFrame(m.f)
		}
		if m.queued {
			// Its place in the window is given back once it is handled:
			// the reader then knows what it queued is done (beforeClose).
			<-a.inflight
		}
	case *readerExit:
		if m.gen == a.gen {
			a.onReaderExit(m.err)
		}
	case *handled:
		close(m.done)
	case *writeDone:
		if m.gen == a.gen {
			a.onWriteDone(m)
		}
	case keepaliveTick:
		if m.gen == a.gen {
			a.onKeepalive()
		}
	case closeExpired:
		if m.gen == a.gen {
			a.onCloseExpired()
		}
	case redial:
		if m.gen == a.gen && a.state == stateDisconnected {
			a.startDial()
		}
	case *dialResult:
		a.onDialResult(m)
	case *pushMsg:
		a.onPushMsg(m)
	case *clientClose:
		a.onClientClose(m)
	case *timerMsg:
		if _, ok := a.timers[m.id]; ok {
			delete(a.timers, m.id)
			a.handleInfo(m.msg)
		}
	case *overflowed:
		a.onOverflow()
	case *actor.Shutdown:
		code := m.Code
		if !code.Sendable() {
			code = actor.CloseGoingAway
		}
		a.closeWith(actor.ReasonShutdown, code, m.Reason, nil)
	case *protoactor.Started:
		a.onStarted()
	case *protoactor.Stopping:
		a.onStopping()
	case *protoactor.Stopped:
		a.onStopped()
	case *protoactor.Restarting:
		// Handled in Started: same socket for a server connection, a new
		// dial for a client.
	default:
		a.onMessage(m)
	}
}

// onMessage handles a message from another actor: a close request is
// acted on, anything else passed to HandleInfo.
func (a *conn) onMessage(m any) {
	if cr, ok := m.(*actor.CloseRequest); ok {
		code := cr.Code
		if !code.Sendable() {
			code = actor.CloseNormal
		}
		if a.state == stateOpen {
			a.closeWith(actor.ReasonNormal, code, cr.Reason, nil)
		}
		return
	}
	a.handleInfo(m)
}

func (a *conn) onStarted() {
	if a.started {
		a.onRestarted()
		return
	}
	a.started = true
	a.sys, a.self = a.pc.ActorSystem(), a.pc.Self()
	if a.dial != nil {
		a.runInit()
		if a.failure != nil {
			// A client whose Init failed does not dial.
			a.reason = actor.Reason{Kind: actor.ReasonError, Code: actor.CloseInternalError, Err: a.failure}
			a.state = stateClosed
			a.pc.Stop(a.self)
			return
		}
		if a.state == stateDisconnected {
			a.startDial()
		}
		return
	}
	a.socketUp()
	// The reader starts first, so that a failing Init cannot leave a socket
	// nobody reads; what it reads waits in the mailbox until Init is done.
	a.startReader()
	a.runInit()
}

func (a *conn) runInit() {
	a.initFailed = true
	a.call(func() error { return a.h.Init(a.ctx) })
	a.initFailed = false
}

// onRestarted handles Started after a supervisor restart: a client dials
// again; a server connection keeps its socket and handler, as with Resume.
func (a *conn) onRestarted() {
	if a.dial == nil {
		a.logger().Warn("connection restarted after a failure; handler state kept", slog.Any("error", a.failure))
		a.failure = nil
		if a.initFailed {
			a.runInit()
		}
		return
	}
	if a.link.closeReq.Load() {
		a.pc.Stop(a.self)
		return
	}
	if a.state != stateDisconnected {
		return
	}
	if d := a.lastDrop; d != nil && d.RestartDelay > 0 {
		gen := a.gen
		a.redialTimer = time.AfterFunc(d.RestartDelay, func() { a.mb.post(redial{gen: gen}) })
		return
	}
	a.startDial()
}

// socketUp starts the life of a socket: metrics and keepalive.
func (a *conn) socketUp() {
	a.counted = true
	a.overflowing.Store(false)
	a.cfg.metrics.opened(1)
	a.connectedAt = time.Now()
	a.readerDone, a.closeSent, a.awaitPong = false, false, false
	if a.cfg.pingInterval > 0 {
		gen := a.gen
		a.keepalive = time.AfterFunc(a.cfg.pingInterval, func() { a.mb.post(keepaliveTick{gen: gen}) })
	}
}

// socketDown ends the life of the current socket in the metrics.
func (a *conn) socketDown() {
	a.stopTimers()
	if a.counted {
		a.counted = false
		a.cfg.metrics.opened(-1)
		a.cfg.metrics.closed(a.reason.Code)
	}
}

func (a *conn) stopTimers() {
	if a.redialTimer != nil {
		a.redialTimer.Stop()
		a.redialTimer = nil
	}
	if a.keepalive != nil {
		a.keepalive.Stop()
		a.keepalive = nil
	}
	if a.closeTimer != nil {
		a.closeTimer.Stop()
		a.closeTimer = nil
	}
}

func (a *conn) startReader() {
	rd := &reader{a: a}
	t, gen := a.t, a.gen
	// Reader goroutine: one per socket, started here. It only reads from
	// the transport and posts what it reads to this actor's mailbox, running
	// the actor on its own stack when the mailbox is idle. It ends when
	// ReadLoop returns, that is when the socket is closed (by this actor, by
	// its writer or by the peer).
	go func() {
		direct := &inFrame{gen: gen} // reused: the actor does not keep it
		err := t.ReadLoop(func(f actor.Frame) {
			rd.ahead = t.MoreBuffered()
			direct.f = f
			ran := a.mb.runDirect(direct, rd)
			direct.f = actor.Frame{} // an idle reader keeps no message
			if ran {
				return
			}
			select {
			case a.inflight <- struct{}{}:
				a.mb.postInline(&inFrame{f: f, gen: gen, queued: true}, rd)
			case <-a.done:
				rd.drain()
			}
		}, rd.beforeClose)
		rd.ahead = false // nobody reads on: what is queued must go out
		select {
		case <-a.done:
			rd.drain()
		default:
			a.mb.postInline(&readerExit{err: err, gen: gen}, rd)
		}
		rd.disarm()
	}()
}

func (a *conn) onFrame(f actor.Frame) {
	a.seen++
	if a.state != stateOpen {
		return // the handler already chose to close; its reply is on the way
	}
	switch f.Type {
	case actor.TextMessage, actor.BinaryMessage:
		a.cfg.metrics.in(len(f.Data))
		a.call(func() error { return a.h.HandleIn(a.ctx, f) })
	default:
		a.call(func() error { return a.h.HandleControl(a.ctx, f) })
	}
}

func (a *conn) handleInfo(msg any) {
	if a.state == stateClosed {
		return
	}
	a.call(func() error { return a.h.HandleInfo(a.ctx, msg) })
}

// call runs a callback and acts on what it returned.
func (a *conn) call(fn func() error) {
	err := safely(fn)
	if err == nil {
		return
	}
	var ce *actor.CloseError
	switch {
	case errors.As(err, &ce):
		if !ce.Code.Sendable() {
			a.fail(fmt.Errorf("protows: callback asked to close with code %d, which cannot be sent", ce.Code))
			return
		}
		a.closeWith(actor.ReasonNormal, ce.Code, ce.Reason, nil)
	case errors.Is(err, actor.ErrClosed), errors.Is(err, actor.ErrOutboxFull), errors.Is(err, actor.ErrDisconnected):
		// Passed on from Push: the connection is closing or the overflow
		// policy has acted already.
	default:
		a.fail(err)
	}
}

func safely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &actor.PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return fn()
}

func (a *conn) onKeepalive() {
	if a.state != stateOpen {
		return
	}
	if a.awaitPong {
		if a.seen == a.seenAtPing {
			a.closeWith(actor.ReasonTimeout, actor.CloseGoingAway, "keepalive timeout", actor.ErrKeepaliveTimeout)
			return
		}
		a.awaitPong = false
		if wait := a.cfg.pingInterval - a.cfg.pongTimeout; wait > 0 {
			a.keepalive.Reset(wait)
			return
		}
	}
	// Out of band: a ping must not wait behind a backlog of data frames,
	// or a peer that reads slowly would look dead. Errors are left to the
	// reader and the writer, which see the same socket fail.
	go func(t Transport) { _ = t.WritePing(nil) }(a.t)
	a.seenAtPing, a.awaitPong = a.seen, true
	a.keepalive.Reset(a.cfg.pongTimeout)
}

func (a *conn) logger() *slog.Logger {
	if a.log == nil {
		base := a.cfg.logger
		if base == nil {
			base = a.sys.Logger()
		}
		remote := ""
		if a.t != nil {
			if addr := a.t.RemoteAddr(); addr != nil {
				remote = addr.String()
			}
		}
		a.log = base.With(slog.String("conn", a.self.Id), slog.String("remote", remote))
	}
	return a.log
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
