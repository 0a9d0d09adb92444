package conn

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/supervision"
)

// The client side of a connection actor: dialling, the frames held while
// it is disconnected, and what follows a lost connection.

func (a *conn) startDial() {
	a.state = stateConnecting
	a.gen++
	gen := a.gen
	ctx, cancel := context.WithCancel(context.Background())
	a.cancelDial = cancel
	// Dial goroutine: one per attempt, started here; it ends when the dial
	// succeeds, fails, or is cancelled by Stopping, and reports to the actor.
	go func() {
		t, resp, err := a.dial(ctx)
		res := &dialResult{t: t, resp: resp, err: err, gen: gen}
		a.dialMu.Lock()
		defer a.dialMu.Unlock()
		if a.dialStop {
			if t != nil {
				_ = t.Close() // the client is gone
			}
			return
		}
		a.dialOut = res
		a.mb.post(res)
	}()
}

func (a *conn) onDialResult(m *dialResult) {
	a.dialMu.Lock()
	if a.dialOut == m {
		a.dialOut = nil
	}
	a.dialMu.Unlock()
	if m.gen != a.gen || a.state != stateConnecting {
		if m.t != nil {
			_ = m.t.Close()
		}
		return
	}
	a.cancelDial()
	a.cancelDial = nil
	if m.err != nil {
		a.state = stateOpen // so that disconnected applies
		a.reason = actor.Reason{Kind: actor.ReasonError, Code: actor.CloseAbnormal, Err: m.err}
		a.disconnected(0)
		return
	}
	a.t = m.t
	a.log = nil // the next log line names this socket's peer
	a.out.attach(m.t, a.gen)
	a.state = stateOpen
	a.socketUp()
	a.call(func() error { return a.ch.HandleConnect(a.ctx, m.resp) })
	if a.state == stateOpen {
		// Connected once HandleConnect has run without failing: a
		// WaitConnected caller never sees a socket that is closing.
		a.link.setConnected(true)
	}
	held := a.held
	a.held = nil
	for _, f := range held {
		if err := a.push(f); err != nil {
			a.cfg.metrics.dropped(1)
		}
	}
	a.link.held.Add(-int64(len(held)))
	a.startReader()
}

func (a *conn) onPushMsg(m *pushMsg) {
	if !m.f.IsData() {
		if err := a.pushControl(m.f); err != nil && !errors.Is(err, actor.ErrOutboxFull) {
			a.cfg.metrics.dropped(1)
		}
		return
	}
	if a.state == stateOpen {
		if m.reserved {
			a.link.held.Add(-1)
		}
		if err := a.push(m.f); err != nil && !errors.Is(err, actor.ErrOutboxFull) {
			a.cfg.metrics.dropped(1)
		}
		return
	}
	if !m.reserved && !a.link.reserveHold() {
		a.cfg.metrics.dropped(1)
		a.logger().Debug("frame dropped: client disconnected and its hold is full")
		return
	}
	a.held = append(a.held, m.f)
}

func (a *conn) onClientClose(m *clientClose) {
	if a.state == stateOpen {
		a.closeWith(actor.ReasonNormal, m.code, m.reason, nil)
		return
	}
	if a.state == stateConnecting || a.state == stateDisconnected {
		a.reason = actor.Reason{Kind: actor.ReasonNormal, Code: m.code, Text: m.reason}
		a.state = stateClosed
		a.pc.Stop(a.self)
	}
}

// disconnected runs when a client's socket has ended, or its dial failed,
// with a.reason set: the handler decides, then the actor either stops or
// escalates a *supervision.Disconnect to its supervisor, which restarts it (a new dial)
// or stops it.
func (a *conn) disconnected(uptime time.Duration) {
	a.failure = nil // a failure belongs to the socket it ended
	a.link.setConnected(false)
	a.socketDown()
	a.cfg.metrics.dropped(a.out.attach(nil, a.gen))
	a.t = nil
	a.state = stateDisconnected
	if a.link.closeReq.Load() {
		a.state = stateClosed
		a.pc.Stop(a.self)
		return
	}
	decision := actor.ReconnectByPolicy
	if err := safely(func() error { decision = a.ch.HandleDisconnect(a.ctx, a.reason); return nil }); err != nil {
		a.logger().Error("HandleDisconnect failed; reconnecting by policy", slog.Any("error", err))
	}
	if decision.Stops() {
		a.state = stateClosed
		a.pc.Stop(a.self)
		return
	}
	// The supervision decision that follows is the attempt's one line at
	// INFO (with the reason); this one adds the handler's decision.
	a.logger().Debug("client disconnected", slog.String("reason", a.reason.String()), slog.String("decision", decision.String()))
	a.lastDrop = &supervision.Disconnect{Reason: a.reason, Decision: decision, Uptime: uptime}
	panic(a.lastDrop)
}
