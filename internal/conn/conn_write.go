package conn

import (
	"errors"

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
	maxDeferred  = 32
	inlineFrames = 4
	inlineBytes  = 64 << 10
)

// flush writes queued frames. The mailbox calls it on the goroutine that
// has just run the actor, after marking the mailbox idle, so writing never
// holds up the actor. Only the goroutine holding the outbox's writer token
// writes; another one finding it taken returns at once, and the holder
// writes what was queued meanwhile before it lets go. On the reader
// goroutine (inline) the writing is bounded: see inlineFrames.
//
// On the reader goroutine, while the frame just handled has another whole
// one behind it in the read buffer, the write waits for that one's turn
// (up to maxDeferred turns): the replies to a pipelined run of messages
// then leave together, coalesced, instead of one system call each. The
// next message is already read, so the wait is the time of a turn; and
// any goroutine that runs the actor next flushes, so nothing is left
// behind.
func (a *conn) flush(inline bool) {
	if inline { // readAhead and deferred belong to the reader goroutine
		if a.readAhead && a.deferred < maxDeferred {
			a.deferred++
			return
		}
		a.deferred = 0
	}
	if it, t, gen, ok := a.out.take(); ok {
		a.writeQueued(inline, it, t, gen)
	}
}

// writeQueued writes it, the first item taken, then the rest of the queue,
// and lets go of the writer token.
//
// While more frames wait behind the one it writes, it asks the transport
// to hold that one back (Transport.Hold), so that a burst leaves in few
// system calls; the last frame of a run is written at once, with what was
// held. A frame alone is never delayed.
func (a *conn) writeQueued(inline bool, it outItem, t Transport, gen uint32) {
	frames, bytes := 0, 0
	var last Transport // the transport written to last, which may hold bytes
	defer func() {
		if last != nil {
			// Something may still be held: frames dropped from behind the
			// last one written (a discard, an overflow policy), or a write
			// that failed. A flush with nothing held costs a lock.
			_ = last.Flush()
		}
	}()
	for ok := true; ok; it, t, gen, ok = a.out.next() {
		if inline && (frames >= inlineFrames || bytes >= inlineBytes) {
			// Writer goroutine: takes over the writer token (and so the queue)
			// from the reader goroutine; it ends when the queue is empty or a
			// write fails.
			// What this goroutine held goes out with the writer's writes.
			last = nil
			go a.writeQueued(false, it, t, gen)
			return
		}
		frames, bytes = frames+1, bytes+len(it.frame.Data)
		last = t
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
			// A failed write leaves the socket unusable: tell the actor, then
			// close the socket (which ends the reader). In this order the
			// actor learns why before the reader reports a closed socket.
			a.cfg.metrics.dropped(a.out.release(gen))
			if !it.final {
				a.mb.post(&writeDone{err: err, gen: gen})
			}
			_ = t.Close()
			return
		}
	}
}
