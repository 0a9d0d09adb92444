package conn

import (
	"fmt"
	"log/slog"

	"github.com/protows/protows/actor"
)

// This file holds what bounds a connection's outbound side: pushing frames
// into the backlog, the overflow policy when it is full, and handing queued
// frames to a writer while the actor is busy.

// maxControlPayload is the largest payload of a ping, pong or close frame
// (RFC 6455 section 5.5).
const maxControlPayload = 125

// push queues a data frame under the backlog's bound; a client that is not
// connected holds it instead, up to its hold limit.
func (a *conn) push(f actor.Frame) error {
	if !f.IsData() {
		return fmt.Errorf("protows: Push takes text or binary frames, not %s", f.Type)
	}
	switch a.state {
	case stateOpen:
	case stateConnecting, stateDisconnected:
		if a.link.reserveHold() {
			a.held = append(a.held, f)
			return nil
		}
		return actor.ErrDisconnected
	default:
		return actor.ErrClosed
	}
	return a.enqueue(f)
}

// pushControl queues a ping or a pong for the peer, in order with the data
// frames, under the same bound.
func (a *conn) pushControl(f actor.Frame) error {
	if f.Type != actor.PingMessage && f.Type != actor.PongMessage {
		return fmt.Errorf("protows: a control frame is a ping or a pong, not %s", f.Type)
	}
	if len(f.Data) > maxControlPayload {
		return fmt.Errorf("protows: %s payload of %d bytes is over the %d a control frame holds", f.Type, len(f.Data), maxControlPayload)
	}
	switch a.state {
	case stateOpen:
		return a.enqueue(f)
	case stateConnecting, stateDisconnected:
		return actor.ErrDisconnected
	}
	return actor.ErrClosed
}

// enqueue takes a place in the backlog for f and queues it; when there is
// none, the overflow policy decides.
func (a *conn) enqueue(f actor.Frame) error {
	cost := payloadCost(len(f.Data))
	if !a.backlog.take(cost) && !a.makeRoom(cost) {
		return a.refuse()
	}
	a.out.push(outItem{frame: f, cost: cost})
	return nil
}

// makeRoom applies OverflowDropOldest: it drops the oldest waiting frames,
// then the oldest waiting messages, until a place of cost bytes is taken,
// and reports whether one was. A frame that could never fit sacrifices
// nothing. It may run on any goroutine.
func (a *conn) makeRoom(cost int64) bool {
	if a.cfg.overflow != OverflowDropOldest || !a.backlog.fits(cost) {
		return false
	}
	for {
		switch {
		case a.out.dropOldest():
			a.cfg.metrics.dropped(1)
		case a.mb.dropOldest():
			a.cfg.metrics.droppedMessages(1)
		default:
			return false
		}
		if a.backlog.take(cost) {
			return true
		}
	}
}

// refuse applies the overflow policy to a frame the actor pushed that
// found no place: it is dropped, and under OverflowClose the connection
// closes with 1013 and what waits is dropped with it.
func (a *conn) refuse() error {
	a.cfg.metrics.dropped(1)
	if a.cfg.overflow == OverflowClose {
		a.closeOverflowed()
	}
	return actor.ErrOutboxFull
}

// inboxFull applies the overflow policy to a message another actor posts
// while the backlog is full. It runs on the sender's goroutine and reports
// whether a place was made for the message (drop-oldest); otherwise the
// message is dropped and counted. Under OverflowClose the connection is
// told to close, ahead of everything it has queued.
func (a *conn) inboxFull(cost int64) bool {
	if a.makeRoom(cost) {
		return true
	}
	a.cfg.metrics.droppedMessages(1)
	if a.cfg.overflow == OverflowClose && a.overflowing.CompareAndSwap(false, true) {
		a.mb.postFirst(&overflowed{})
	}
	return false
}

// onOverflow handles the message inboxFull put first in the mailbox.
func (a *conn) onOverflow() {
	if a.state == stateOpen {
		a.closeOverflowed()
		return
	}
	// Not connected (a client between sockets) or closing already: the
	// waiting messages go, the connection stays as it is.
	a.cfg.metrics.droppedMessages(a.mb.dropCounted())
	a.overflowing.Store(false)
}

// closeOverflowed closes the connection with 1013 under OverflowClose:
// what waits for the peer, queued frames and messages from other actors
// alike, is dropped (and counted) so that its memory is freed at once.
func (a *conn) closeOverflowed() {
	a.overflowing.Store(true)
	if a.state != stateOpen {
		return
	}
	a.cfg.metrics.dropped(a.out.discard())
	a.cfg.metrics.droppedMessages(a.mb.dropCounted())
	a.logger().Warn("outbound backlog full; closing",
		slog.Int("code", int(actor.CloseTryAgainLater)),
		slog.Int64("limit_bytes", a.backlog.maxBytes))
	a.closeWith(actor.ReasonError, actor.CloseTryAgainLater, "outbound queue full", actor.ErrOutboxFull)
}

// kick hands the queued frames to a writer goroutine when frames wait and
// nobody writes them. The mailbox calls it between two messages while more
// wait, so that a long run of messages is written as it is worked through,
// with the writer and the actor on separate goroutines, rather than once
// the mailbox is empty.
func (a *conn) kick() {
	if !a.out.idleWithWork() {
		return
	}
	if it, t, gen, ok := a.out.take(); ok {
		// Writer goroutine: holds the writer token until the queue is empty
		// or a write fails (see writeQueued).
		go a.writeQueued(0, it, t, gen)
	}
}

// abort drops the connection without a close handshake: queued frames are
// discarded and the socket is closed at once.
func (a *conn) abort() {
	if a.state != stateOpen {
		return
	}
	a.state = stateClosing
	a.reason = actor.Reason{Kind: actor.ReasonNormal, Code: actor.CloseAbnormal, Err: actor.ErrAborted}
	if a.keepalive != nil {
		a.keepalive.Stop()
	}
	a.cfg.metrics.dropped(a.out.discard())
	a.closeSent = true
	_ = a.t.Close() // ends the reader, and a write in progress
	a.maybeFinish()
}
