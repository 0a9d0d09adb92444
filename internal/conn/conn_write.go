package conn

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/protows/protows/actor"
)

// Writing the outbound queue to the socket, off the actor's turn.

func (a *conn) onWriteDone(m *writeDone) {
	if m.err != nil && a.state == stateOpen {
		a.state = stateClosing
		a.reason = actor.Reason{Kind: actor.ReasonError, Code: actor.CloseAbnormal, Err: m.err}
	}
	a.closeSent = true
	a.maybeFinish()
}

// Inline write budget: after running the actor on the reader goroutine,
// that goroutine writes at most this much before it hands the rest to a
// writer goroutine and goes back to reading. One echo reply costs no
// goroutine switch; a burst of pushes does not stop the reading.
const (
	inlineFrames = 4
	inlineBytes  = 64 << 10
)

// Deferred replies (see reader): the reader goroutine defers its write for
// at most maxDeferred turns, for at most maxDeferDelay, and only while the
// backlog holds less than deferBytes (and less than half of each of the
// connection's bounds).
const (
	maxDeferred   = 32
	maxDeferDelay = 500 * time.Microsecond
	deferBytes    = 64 << 10
)

// reader is the state of a socket's reader goroutine that its flushes use:
// while the frame just handled has another whole one behind it in the
// read buffer, the write waits for that one's turn, so that the replies to
// a pipelined run of messages leave together, coalesced, instead of one
// system call each. The next message is already read, so the wait is
// normally the time of a turn; a timer writes the replies if the next
// handler takes longer than maxDeferDelay, and any goroutine that runs the
// actor next flushes, so nothing is left behind.
//
// Each socket has its own reader: a client's reader for an old socket may
// still be finishing while the next socket's reads.
type reader struct {
	a        *conn
	ahead    bool        // the frame being delivered has another behind it (Transport.MoreBuffered)
	deferred int         // flushes deferred since the last write
	timer    *time.Timer // runs expire; made at the first deferral
	armed    atomic.Bool // timer is set and has not written yet
}

// hold reports whether the flush of the reader's turn may wait (see
// reader), and if so arms the timer.
func (rd *reader) hold() bool {
	a := rd.a
	if !rd.ahead || rd.deferred >= maxDeferred || !a.backlog.roomToDefer() {
		rd.deferred = 0
		rd.disarm()
		return false
	}
	rd.deferred++
	if rd.armed.CompareAndSwap(false, true) {
		if rd.timer == nil {
			rd.timer = time.AfterFunc(maxDeferDelay, rd.expire)
		} else {
			rd.timer.Reset(maxDeferDelay)
		}
	}
	return true
}

// expire writes the deferred replies; it runs on the timer's goroutine.
func (rd *reader) expire() {
	rd.armed.Store(false)
	a := rd.a
	if it, t, gen, ok := a.out.take(); ok {
		a.writeQueued(0, it, t, gen)
	}
}

// disarm stops the timer; the reader goroutine is about to write, or is
// done.
func (rd *reader) disarm() {
	if rd.armed.CompareAndSwap(true, false) {
		rd.timer.Stop()
	}
}

// drain writes what is queued at once, on the reader goroutine: the actor
// has stopped (its final close frame may be queued, and no turn will come
// to flush it), or the transport is about to write a close frame of its own
// after a protocol error and replies to the frames before it go first. A
// writer goroutine busy with the queue is waited for (up to the close
// timeout), so that the replies are out when drain returns.
func (rd *reader) drain() {
	rd.ahead, rd.deferred = false, 0
	rd.disarm()
	a := rd.a
	for {
		if it, t, gen, ok := a.out.take(); ok {
			a.writeQueued(0, it, t, gen)
		} else if !a.out.awaitIdle(a.cfg.closeTimeout) {
			return
		}
		// A writer may have taken the last frame and not written it yet:
		// done only when nothing is queued and nobody is writing.
		if a.out.len() == 0 && !a.out.writing.Load() {
			return
		}
	}
}

// beforeClose runs on the reader goroutine before the transport writes a
// close frame of its own after a protocol error (Transport.ReadLoop): the
// frames delivered before the bad one are handled first (those the reader
// queued while the actor was busy elsewhere included), then their replies
// written, so that the close comes after them. Both waits are bounded by
// the close timeout; past it, what is left may be refused behind the
// close (and counted as dropped).
func (rd *reader) beforeClose() {
	a := rd.a
	stopped := false
	select {
	case <-a.done:
		stopped = true // nothing more will be handled
	default:
	}
	if !stopped && len(a.inflight) > 0 {
		h := &handled{done: make(chan struct{})}
		a.mb.postInline(h, rd)
		t := time.NewTimer(a.cfg.closeTimeout)
		select {
		case <-h.done:
		case <-a.done:
		case <-t.C:
		}
		t.Stop()
	}
	rd.drain()
}

// flush writes queued frames. The mailbox calls it on the goroutine that
// has just run the actor, after marking the mailbox idle, so writing never
// holds up the actor. Only the goroutine holding the outbox's writer token
// writes; another one finding it taken returns at once, and the holder
// writes what was queued meanwhile before it lets go. On a reader
// goroutine (rd is not nil) the writing is bounded (see inlineFrames) and
// may be deferred (see reader).
func (a *conn) flush(rd *reader) {
	limit := 0
	if rd != nil {
		// The replies held back go out together, on this goroutine: handing
		// them to a writer goroutine would let the reader run ahead of the
		// writing and fill the backlog.
		limit = inlineFrames + rd.deferred
		if rd.hold() {
			return
		}
	}
	if it, t, gen, ok := a.out.take(); ok {
		a.writeQueued(limit, it, t, gen)
		return
	}
	if rd != nil && rd.ahead && !a.backlog.roomToDefer() {
		// Another goroutine is writing (a writer handed the queue, the
		// deferral timer) while the reader answers a pipelined run faster
		// than it: the reader waits for it (up to the close timeout), then
		// writes what is left itself, rather than read on and fill the
		// backlog, which would close a peer that reads at full speed.
		if a.out.awaitIdle(a.cfg.closeTimeout) {
			if it, t, gen, ok := a.out.take(); ok {
				a.writeQueued(limit, it, t, gen)
			}
		}
	}
}

// writeQueued writes it, the first item taken, then the rest of the queue,
// and lets go of the writer token. With a limit (on a reader goroutine),
// after that many frames or inlineBytes it hands the rest to a writer
// goroutine.
//
// While more frames wait behind the one it writes, it asks the transport
// to hold that one back (Transport.Hold), so that a burst leaves in few
// system calls; the last frame of a run is written at once, with what was
// held. A frame alone is never delayed.
func (a *conn) writeQueued(limit int, it outItem, t Transport, gen uint32) {
	frames, bytes := 0, 0
	var last Transport // the transport written to last, which may hold bytes
	var lastGen uint32
	for ok := true; ok; it, t, gen, ok = a.out.next() {
		if limit > 0 && (frames >= limit || bytes >= inlineBytes) {
			// Writer goroutine: takes over the writer token (and so the queue)
			// from the reader goroutine; it ends when the queue is empty or a
			// write fails. What this goroutine held goes out with its writes.
			go a.writeQueued(0, it, t, gen)
			return
		}
		frames, bytes = frames+1, bytes+len(it.frame.Data)
		last, lastGen = t, gen
		var err error
		if !it.close && a.out.len() > 0 {
			t.Hold()
		}
		if it.close {
			err = t.WriteClose(it.code, it.text)
			if it.final {
				_ = t.Close()
			} else if err == nil {
				a.mb.post(&writeDone{close: true, gen: gen})
			}
		} else {
			switch it.frame.Type {
			case actor.PingMessage:
				err = t.WritePing(it.frame.Data)
			case actor.PongMessage:
				err = t.WritePong(it.frame.Data)
			default:
				err = t.WriteFrame(it.frame)
				if err == nil {
					a.cfg.metrics.out(len(it.frame.Data))
				}
			}
		}
		if errors.Is(err, ErrCloseSent) {
			// The transport closed the conversation itself (a protocol error
			// it is answering; the reader reports why): nothing more is sent,
			// and as far as the close handshake goes, a close frame is out.
			_ = t.Flush() // cancels the hold; the close pushed out what was held
			n := a.out.release(gen)
			if !it.close {
				n++
			}
			a.cfg.metrics.dropped(n)
			if it.final {
				_ = t.Close()
			} else {
				a.mb.post(&writeDone{close: true, gen: gen})
			}
			return
		}
		if err != nil {
			a.cfg.metrics.dropped(a.out.release(gen))
			a.writeFailed(t, gen, it.final, err)
			return
		}
	}
	// The queue is empty and the token given back. Something may still be
	// held: frames dropped from behind the last one written (a discard, an
	// overflow policy). A flush with nothing held costs a lock.
	if last != nil {
		if err := last.Flush(); err != nil {
			a.writeFailed(last, lastGen, false, err)
		}
	}
}

// writeFailed reports a failed write: it leaves the socket unusable (and
// what the transport held back lost), so the actor is told, then the
// socket is closed (which ends the reader). In this order the actor learns
// why before the reader reports a closed socket. After the final close
// frame the actor has stopped: nobody is told.
func (a *conn) writeFailed(t Transport, gen uint32, final bool, err error) {
	if !final {
		a.mb.post(&writeDone{err: err, gen: gen})
	}
	_ = t.Close()
}
