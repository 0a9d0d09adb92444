package conn

import (
	"errors"
	"log/slog"
	"time"

	"github.com/protows/protows/actor"
)

// Ending a connection: failures, the close handshake, and stopping.

// fail handles a callback failure. A server connection escalates it to the
// supervisor by panicking out of Receive: the mailbox recovers, suspends
// itself and sends the failure to the parent, whose strategy
// (StopOnFailure) stops this actor; Stopping then closes the socket with
// 1011. A client closes its socket with 1011, which is a disconnect like
// any other: the reconnect policy decides.
func (a *conn) fail(err error) {
	if a.terminated || a.state == stateClosed {
		a.logger().Error("callback failed while the connection was ending", slog.Any("error", err))
		return
	}
	if a.failure == nil {
		a.failure = err
	}
	attrs := []any{slog.Any("error", err)}
	var pe *actor.PanicError
	if errors.As(err, &pe) {
		attrs = append(attrs, slog.String("stack", string(pe.Stack)))
	}
	a.logger().Error("connection handler failed", attrs...)
	if a.dial != nil {
		// The socket closes with 1011; what follows is a disconnect like any
		// other. A failure while the socket is closing or between sockets
		// changes nothing but the log.
		if a.state == stateOpen {
			a.closeWith(actor.ReasonError, actor.CloseInternalError, "internal error", err)
		}
		return
	}
	panic(err)
}

// closeWith starts closing: the close frame is queued behind the frames
// already pushed, nothing pushed later is sent, and the connection waits up
// to the close timeout for the peer's close.
func (a *conn) closeWith(kind actor.ReasonKind, code actor.CloseCode, text string, err error) {
	if a.state != stateOpen {
		return
	}
	a.state = stateClosing
	text = truncateUTF8(text, maxControlPayload-2)
	a.reason = actor.Reason{Kind: kind, Code: code, Text: text, Err: err}
	if a.keepalive != nil {
		a.keepalive.Stop()
	}
	a.out.push(outItem{close: true, code: code, text: text})
	gen := a.gen
	a.closeTimer = time.AfterFunc(a.cfg.closeTimeout, func() { a.mb.post(closeExpired{gen: gen}) })
}

func (a *conn) onReaderExit(err error) {
	a.readerDone = true
	if a.state == stateClosed {
		// Stopping ran already (the actor waits for its children): the read
		// side is over, so is the socket.
		_ = a.t.Close()
		return
	}
	var ce *actor.CloseError
	var pe *actor.ProtocolError
	switch {
	case errors.As(err, &ce):
		if a.state == stateOpen {
			// The peer closes: answer with its code behind what is queued.
			reply := ce.Code
			if !reply.Sendable() {
				reply = actor.CloseNormal
			}
			a.closeWith(actor.ReasonRemote, reply, ce.Reason, nil)
			a.reason.Code = ce.Code
		}
	case errors.As(err, &pe):
		if a.state == stateOpen {
			a.state = stateClosing
			a.reason = actor.Reason{Kind: actor.ReasonError, Code: pe.Code, Err: pe}
		}
		a.closeSent = true // the transport sent it
		a.cfg.metrics.dropped(a.out.discard())
	default:
		if a.state == stateOpen {
			a.state = stateClosing
			a.reason = actor.Reason{Kind: actor.ReasonError, Code: actor.CloseAbnormal, Err: err}
		}
		a.closeSent = true // the socket is gone
		a.cfg.metrics.dropped(a.out.discard())
	}
	a.maybeFinish()
}

func (a *conn) onCloseExpired() {
	if a.state != stateClosing {
		return
	}
	a.logger().Debug("closing without the peer's close frame", slog.Any("error", actor.ErrCloseTimeout))
	a.closeSent = true
	_ = a.t.Close() // ends the reader, and a write blocked on the peer
	a.maybeFinish()
}

// maybeFinish ends the socket once both directions are done: the reader
// has ended and our close frame is out (or cannot be written). A server
// connection then stops; a client asks its handler what next, unless the
// close was its own choice.
func (a *conn) maybeFinish() {
	if a.state != stateClosing || !a.readerDone || !a.closeSent {
		return
	}
	_ = a.t.Close()
	if a.dial != nil && a.reason.Kind != actor.ReasonNormal && a.reason.Kind != actor.ReasonShutdown && !a.link.closeReq.Load() {
		a.disconnected(time.Since(a.connectedAt))
		return
	}
	a.state = stateClosed
	a.pc.Stop(a.self)
}

func (a *conn) onStopping() {
	if a.cancelDial != nil {
		a.cancelDial()
		a.cancelDial = nil
	}
	switch a.state {
	case stateOpen:
		// Stopped from outside (Stop, Poison, the parent stopping), or by the
		// supervisor after a failure: there is no waiting for the peer now.
		// The writer sends what is queued (not after a failure), then a last
		// close frame, then closes the socket.
		a.state = stateClosed
		a.reason = actor.Reason{Kind: actor.ReasonShutdown, Code: actor.CloseGoingAway}
		if a.failure != nil {
			a.reason = actor.Reason{Kind: actor.ReasonError, Code: actor.CloseInternalError, Text: "internal error", Err: a.failure}
			a.cfg.metrics.dropped(a.out.discard())
		} else if a.link != nil && a.link.closeReq.Load() {
			a.reason = actor.Reason{Kind: actor.ReasonNormal, Code: actor.CloseNormal}
		}
		a.out.push(outItem{close: true, code: a.reason.Code, text: a.reason.Text, final: true})
	case stateClosing:
		a.state = stateClosed
		_ = a.t.Close()
	case stateConnecting, stateDisconnected:
		// A client between sockets: it ends with the last disconnect's
		// reason, or as closed if it never connected or was asked to close.
		a.state = stateClosed
		if a.reason.Kind == 0 || a.link.closeReq.Load() {
			a.reason = actor.Reason{Kind: actor.ReasonNormal, Code: actor.CloseNormal}
		}
	}
	a.cfg.metrics.dropped(len(a.held))
	a.held = nil
	a.terminate()
}

func (a *conn) terminate() {
	if a.terminated {
		return
	}
	a.terminated = true
	a.socketDown()
	if err := safely(func() error { a.h.Terminate(a.ctx, a.reason); return nil }); err != nil {
		a.logger().Error("Terminate failed", slog.Any("error", err))
	}
}

func (a *conn) onStopped() {
	if a.dial != nil {
		a.dialMu.Lock()
		a.dialStop = true
		if a.dialOut != nil && a.dialOut.t != nil {
			_ = a.dialOut.t.Close() // posted, never taken
		}
		a.dialOut = nil
		a.dialMu.Unlock()
	}
	if a.link != nil {
		a.link.setConnected(false)
		a.link.reason = a.reason
		close(a.link.done)
	}
	close(a.done)
	if a.stopNotice != nil {
		a.stopNotice.Fire()
	}
	a.stopTimers()
	for id, t := range a.timers {
		t.Stop()
		delete(a.timers, id)
	}
}
