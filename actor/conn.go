package actor

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
	"unicode/utf8"

	protoactor "github.com/asynkron/protoactor-go/actor"
)

// Shutdown asks a connection actor to close with Code and Reason, as a
// server does when it shuts down; Terminate sees ReasonShutdown. Any actor
// may send it to a connection's PID.
type Shutdown struct {
	Code   CloseCode
	Reason string
}

type connState uint8

const (
	stateOpen    connState = iota
	stateClosing           // a close frame is queued or the socket failed; no more frames are accepted
	stateClosed            // the socket is closed and the actor is stopping
)

// Messages the connection actor sends itself.
type (
	inFrame    struct{ f Frame }   // a message or control frame read from the peer
	readerExit struct{ err error } // the reader goroutine ended with err
	writeDone  struct {
		err   error
		close bool
	} // the writer wrote our close frame, or a write failed
	keepaliveTick struct{} // time to ping, or to check for the pong
	closeExpired  struct{} // the close handshake took too long
	timerMsg      struct {
		id  uint64
		msg any
	} // a message scheduled with SendAfter
)

// conn is the proto.actor actor behind one websocket connection.
type conn struct {
	cfg *Config
	h   Handler
	t   Transport
	mb  *mailbox
	ctx Context

	// Set in Started; read-only afterwards.
	sys  *protoactor.ActorSystem
	self *protoactor.PID

	out      outbox
	inflight chan struct{} // reader events queued in the mailbox; bounds what the reader runs ahead
	done     chan struct{} // closed when the actor has stopped

	// Owned by Receive.
	pc         protoactor.Context
	log        *slog.Logger
	state      connState
	started    bool
	reason     Reason
	failure    error
	terminated bool
	readerDone bool
	closeSent  bool // our close frame was written, or there is no point writing one
	seen       uint64
	seenAtPing uint64
	awaitPong  bool
	keepalive  *time.Timer
	closeTimer *time.Timer
	timers     map[uint64]*time.Timer
	timerSeq   uint64
}

// Props returns the props of a connection actor that runs h over t. Spawn
// it under a parent whose supervisor strategy is [StopOnFailure] (a
// [Supervisor] does that); the actor starts reading when it starts.
func (cfg *Config) Props(h Handler, t Transport) *protoactor.Props {
	a := &conn{
		cfg:      cfg,
		h:        h,
		t:        t,
		inflight: make(chan struct{}, inboundWindow),
		done:     make(chan struct{}),
	}
	a.ctx.a = a
	a.mb = &mailbox{drained: a.flush}
	return protoactor.PropsFromProducer(
		func() protoactor.Actor { return a },
		protoactor.WithMailbox(func() protoactor.Mailbox { return a.mb }),
	)
}

// Receive maps proto.actor messages and socket events to handler callbacks.
func (a *conn) Receive(pc protoactor.Context) {
	a.pc = pc
	switch m := pc.Message().(type) {
	case *inFrame:
		<-a.inflight
		a.onFrame(m.f)
	case *readerExit:
		a.onReaderExit(m.err)
	case *writeDone:
		a.onWriteDone(m)
	case keepaliveTick:
		a.onKeepalive()
	case closeExpired:
		a.onCloseExpired()
	case *timerMsg:
		if _, ok := a.timers[m.id]; ok {
			delete(a.timers, m.id)
			a.handleInfo(m.msg)
		}
	case *Shutdown:
		a.closeWith(ReasonShutdown, m.Code, m.Reason, nil)
	case *protoactor.Started:
		a.onStarted()
	case *protoactor.Stopping:
		a.onStopping()
	case *protoactor.Stopped:
		a.onStopped()
	case *protoactor.Restarting:
		// The supervisor chose restart: the socket and the handler are kept
		// and the failed message is dropped (see Started).
	default:
		a.handleInfo(m)
	}
}

func (a *conn) onStarted() {
	if a.started {
		// Restarted by a supervisor after a failure: same socket, same
		// handler value, as with Resume.
		a.logger().Warn("connection restarted after a failure; handler state kept", slog.Any("error", a.failure))
		a.failure = nil
		return
	}
	a.started = true
	a.sys, a.self = a.pc.ActorSystem(), a.pc.Self()
	a.cfg.metrics.opened(1)
	if a.cfg.pingInterval > 0 {
		a.keepalive = time.AfterFunc(a.cfg.pingInterval, a.postKeepalive)
	}
	a.call(func() error { return a.h.Init(&a.ctx) })
	// Reader goroutine: one per connection, started here. It only reads from
	// the transport and posts what it reads to this actor's mailbox, running
	// the actor on its own stack when the mailbox is idle. It ends when
	// ReadLoop returns, that is when the socket is closed (by this actor, by
	// its writer or by the peer).
	go a.readLoop()
}

func (a *conn) readLoop() {
	err := a.t.ReadLoop(a.deliver)
	select {
	case <-a.done:
	default:
		a.mb.postInline(&readerExit{err: err})
	}
}

// deliver runs on the reader goroutine for each frame read.
func (a *conn) deliver(f Frame) {
	select {
	case a.inflight <- struct{}{}:
		a.mb.postInline(&inFrame{f: f})
	case <-a.done:
	}
}

func (a *conn) postKeepalive() { a.mb.PostUserMessage(keepaliveTick{}) }

func (a *conn) onFrame(f Frame) {
	a.seen++
	if a.state != stateOpen {
		return // the handler already chose to close; its reply is on the way
	}
	switch f.Type {
	case TextMessage, BinaryMessage:
		a.cfg.metrics.in(len(f.Data))
		if f.Type == TextMessage && !utf8.Valid(f.Data) {
			a.closeWith(ReasonError, CloseInvalidPayload, "invalid UTF-8", ErrInvalidUTF8)
			return
		}
		a.call(func() error { return a.h.HandleIn(&a.ctx, f) })
	default:
		a.call(func() error { return a.h.HandleControl(&a.ctx, f) })
	}
}

func (a *conn) handleInfo(msg any) {
	if a.state == stateClosed {
		return
	}
	a.call(func() error { return a.h.HandleInfo(&a.ctx, msg) })
}

// call runs a callback and acts on what it returned.
func (a *conn) call(fn func() error) {
	err := safely(fn)
	if err == nil {
		return
	}
	var ce *CloseError
	switch {
	case errors.As(err, &ce):
		if !ce.Code.Sendable() {
			a.fail(fmt.Errorf("protows: callback asked to close with code %d, which cannot be sent", ce.Code))
			return
		}
		a.closeWith(ReasonNormal, ce.Code, ce.Reason, nil)
	case errors.Is(err, ErrClosed), errors.Is(err, ErrOutboxFull):
		// Passed on from Push: the connection is closing or the overflow
		// policy has acted already.
	default:
		a.fail(err)
	}
}

func safely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return fn()
}

// fail records a callback failure and escalates it to the supervisor by
// panicking out of Receive: the mailbox recovers, suspends itself and sends
// the failure to the parent, whose strategy (StopOnFailure) stops this
// actor; Stopping then closes the socket with 1011.
func (a *conn) fail(err error) {
	if a.terminated || a.state == stateClosed {
		a.logger().Error("callback failed while the connection was ending", slog.Any("error", err))
		return
	}
	if a.failure == nil {
		a.failure = err
	}
	attrs := []any{slog.Any("error", err)}
	var pe *PanicError
	if errors.As(err, &pe) {
		attrs = append(attrs, slog.String("stack", string(pe.Stack)))
	}
	a.logger().Error("connection handler failed", attrs...)
	panic(err)
}

// closeWith starts closing: the close frame is queued behind the frames
// already pushed, nothing pushed later is sent, and the connection waits up
// to the close timeout for the peer's close.
func (a *conn) closeWith(kind ReasonKind, code CloseCode, text string, err error) {
	if a.state != stateOpen {
		return
	}
	a.state = stateClosing
	text = truncateUTF8(text, maxCloseReason)
	a.reason = Reason{Kind: kind, Code: code, Text: text, Err: err}
	a.stopKeepalive()
	a.out.push(outItem{close: true, code: code, text: text}, 0, 0)
	a.closeTimer = time.AfterFunc(a.cfg.closeTimeout, func() { a.mb.PostUserMessage(closeExpired{}) })
}

func (a *conn) onReaderExit(err error) {
	a.readerDone = true
	var ce *CloseError
	var pe *ProtocolError
	switch {
	case errors.As(err, &ce):
		if a.state == stateOpen {
			// The peer closes: answer with its code behind what is queued.
			reply := ce.Code
			if !reply.Sendable() {
				reply = CloseNormal
			}
			a.closeWith(ReasonRemote, reply, ce.Reason, nil)
			a.reason.Code = ce.Code
		}
	case errors.As(err, &pe):
		if a.state == stateOpen {
			a.state = stateClosing
			a.reason = Reason{Kind: ReasonError, Code: pe.Code, Err: pe}
		}
		a.closeSent = true // the transport sent it
		a.cfg.metrics.dropped(a.out.discard())
	default:
		if a.state == stateOpen {
			a.state = stateClosing
			a.reason = Reason{Kind: ReasonError, Code: CloseAbnormal, Err: err}
		}
		a.closeSent = true // the socket is gone
		a.cfg.metrics.dropped(a.out.discard())
	}
	a.maybeFinish()
}

func (a *conn) onWriteDone(m *writeDone) {
	if m.err != nil && a.state == stateOpen {
		a.state = stateClosing
		a.reason = Reason{Kind: ReasonError, Code: CloseAbnormal, Err: m.err}
	}
	a.closeSent = true
	a.maybeFinish()
}

func (a *conn) onCloseExpired() {
	if a.state != stateClosing {
		return
	}
	a.logger().Debug("closing without the peer's close frame", slog.Any("error", ErrCloseTimeout))
	a.closeSent = true
	_ = a.t.Close() // ends the reader, and a write blocked on the peer
	a.maybeFinish()
}

// maybeFinish stops the actor once both directions are done: the reader
// has ended and our close frame is out (or cannot be written).
func (a *conn) maybeFinish() {
	if a.state != stateClosing || !a.readerDone || !a.closeSent {
		return
	}
	a.state = stateClosed
	_ = a.t.Close()
	a.pc.Stop(a.self)
}

func (a *conn) onKeepalive() {
	if a.state != stateOpen {
		return
	}
	if a.awaitPong {
		if a.seen == a.seenAtPing {
			a.closeWith(ReasonTimeout, CloseGoingAway, "keepalive timeout", ErrKeepaliveTimeout)
			return
		}
		a.awaitPong = false
		if wait := a.cfg.pingInterval - a.cfg.pongTimeout; wait > 0 {
			a.keepalive.Reset(wait)
			return
		}
	}
	a.out.push(outItem{frame: Frame{Type: PingMessage}}, 0, 0)
	a.seenAtPing, a.awaitPong = a.seen, true
	a.keepalive.Reset(a.cfg.pongTimeout)
}

func (a *conn) stopKeepalive() {
	if a.keepalive != nil {
		a.keepalive.Stop()
	}
}

func (a *conn) onStopping() {
	switch a.state {
	case stateOpen:
		// Stopped from outside, or by the supervisor after a failure: there
		// is no waiting for the peer now. The writer sends a last close frame
		// after what it is writing and then closes the socket.
		a.state = stateClosed
		a.reason = Reason{Kind: ReasonShutdown, Code: CloseGoingAway}
		if a.failure != nil {
			a.reason = Reason{Kind: ReasonError, Code: CloseInternalError, Text: "internal error", Err: a.failure}
		}
		a.cfg.metrics.dropped(a.out.discard())
		a.out.push(outItem{close: true, code: a.reason.Code, text: a.reason.Text, final: true}, 0, 0)
	case stateClosing:
		a.state = stateClosed
		_ = a.t.Close()
	}
	a.terminate()
}

func (a *conn) terminate() {
	if a.terminated {
		return
	}
	a.terminated = true
	a.cfg.metrics.opened(-1)
	a.cfg.metrics.closed(a.reason.Code)
	if err := safely(func() error { a.h.Terminate(&a.ctx, a.reason); return nil }); err != nil {
		a.logger().Error("Terminate failed", slog.Any("error", err))
	}
}

func (a *conn) onStopped() {
	close(a.done)
	a.stopKeepalive()
	if a.closeTimer != nil {
		a.closeTimer.Stop()
	}
	for id, t := range a.timers {
		t.Stop()
		delete(a.timers, id)
	}
}

// push queues a data frame under the outbound limits.
func (a *conn) push(f Frame) error {
	if a.state != stateOpen {
		return ErrClosed
	}
	if !f.IsData() {
		return fmt.Errorf("protows: Push takes text or binary frames, not %s", f.Type)
	}
	it := outItem{frame: f}
	if a.out.push(it, a.cfg.outboundFrames, a.cfg.outboundBytes) {
		return nil
	}
	switch a.cfg.overflow {
	case OverflowDropOldest:
		if a.out.dropOldest() {
			a.cfg.metrics.dropped(1)
			if a.out.push(it, a.cfg.outboundFrames, a.cfg.outboundBytes) {
				return nil
			}
		}
		a.cfg.metrics.dropped(1)
		return ErrOutboxFull
	case OverflowDropNewest:
		a.cfg.metrics.dropped(1)
		return ErrOutboxFull
	default:
		a.cfg.metrics.dropped(a.out.discard() + 1)
		a.logger().Warn("outbound queue full; closing", slog.Int("code", int(CloseTryAgainLater)))
		a.closeWith(ReasonError, CloseTryAgainLater, "outbound queue full", ErrOutboxFull)
		return ErrOutboxFull
	}
}

// flush writes queued frames. The mailbox calls it on the goroutine that
// has just run the actor, after marking the mailbox idle, so writing never
// holds up the actor. Only the goroutine holding the outbox's writer token
// writes; another one finding it taken returns at once, and the holder
// writes what was queued meanwhile before it lets go.
func (a *conn) flush() {
	if !a.out.acquire() {
		return
	}
	for {
		it, ok := a.out.next()
		if !ok {
			return
		}
		var err error
		if it.close {
			err = a.t.WriteClose(it.code, it.text)
			if it.final {
				_ = a.t.Close()
			} else if err == nil {
				a.mb.PostUserMessage(&writeDone{close: true})
			}
		} else {
			err = a.t.WriteFrame(it.frame)
			if err == nil && it.frame.IsData() {
				a.cfg.metrics.out(len(it.frame.Data))
			}
		}
		if err != nil {
			// A failed write leaves the socket unusable: close it (which ends
			// the reader) and tell the actor.
			a.cfg.metrics.dropped(a.out.release())
			_ = a.t.Close()
			if !it.final {
				a.mb.PostUserMessage(&writeDone{err: err})
			}
			return
		}
	}
}

func (a *conn) logger() *slog.Logger {
	if a.log == nil {
		base := a.cfg.logger
		if base == nil {
			base = a.sys.Logger()
		}
		remote := ""
		if addr := a.t.RemoteAddr(); addr != nil {
			remote = addr.String()
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
