package conn

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/protows/protows/actor"
)

// outItem is one frame waiting to be written.
type outItem struct {
	frame actor.Frame     // a data frame, a ping or a pong
	close bool            // a close frame with code and text instead of frame
	code  actor.CloseCode //
	text  string          //
	final bool            // close the network connection once this close frame is written
	cost  int64           // its place in the backlog; close frames take none
}

// outbox queues the frames a connection actor pushes until a writer takes
// them. The actor appends; at most one goroutine at a time holds the writer
// token and writes, in order (see conn.flush and conn.kick). Its bound is
// the connection's backlog, which the actor checks before it appends; each
// item gives its place back when a writer takes it or it is dropped.
type outbox struct {
	mu      sync.Mutex
	items   []outItem
	head    int
	queued  atomic.Int32 // len(items)-head, readable without mu
	writing atomic.Bool  // a goroutine holds the writer token; changed under mu
	t       Transport    // the socket the items are for (clients change it on reconnect)
	gen     uint32       // that socket's generation
	bl      *backlog
	idle    chan struct{} // closed when the token is given back; made by awaitIdle
}

// attach points the outbox at a new socket; what was queued is discarded
// and the number of data frames returned.
func (o *outbox) attach(t Transport, gen uint32) int {
	n := o.discard()
	o.mu.Lock()
	o.t, o.gen = t, gen
	o.mu.Unlock()
	return n
}

func (o *outbox) len() int { return int(o.queued.Load()) }

// idleWithWork reports, without locking, whether frames wait and no
// goroutine is writing them.
func (o *outbox) idleWithWork() bool { return o.queued.Load() > 0 && !o.writing.Load() }

// push appends it; its place in the backlog is taken already.
func (o *outbox) push(it outItem) {
	o.mu.Lock()
	o.items = append(o.items, it)
	o.queued.Add(1)
	o.mu.Unlock()
}

// dropOldest removes the oldest queued data frame, gives back its place
// and reports whether there was one.
func (o *outbox) dropOldest() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := o.head; i < len(o.items); i++ {
		if o.items[i].cost > 0 && o.items[i].frame.IsData() {
			o.bl.give(1, o.items[i].cost)
			copy(o.items[i:], o.items[i+1:])
			o.items[len(o.items)-1] = outItem{}
			o.items = o.items[:len(o.items)-1]
			o.queued.Add(-1)
			return true
		}
	}
	return false
}

// discard empties the queue, except a final close frame (the only thing
// left that closes the socket), and returns how many data frames it held.
func (o *outbox) discard() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	var final *outItem
	for _, it := range o.items[o.head:] {
		if it.final {
			final = &it
		}
	}
	n := o.clearLocked()
	if final != nil {
		o.items = append(o.items, *final)
		o.queued.Store(1)
	}
	return n
}

// clearLocked empties the queue, gives back the places and returns how
// many data frames it held.
func (o *outbox) clearLocked() int {
	n, items, cost := 0, 0, int64(0)
	for _, it := range o.items[o.head:] {
		if it.frame.IsData() && !it.close {
			n++
		}
		if it.cost > 0 {
			items++
			cost += it.cost
		}
	}
	o.bl.give(items, cost)
	clear(o.items)
	o.items, o.head = o.items[:0], 0
	o.queued.Store(0)
	return n
}

// take takes the writer token and the first item to write, if nobody
// holds the token and there is something to write.
func (o *outbox) take() (outItem, Transport, uint32, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.writing.Load() || o.head == len(o.items) {
		return outItem{}, nil, 0, false
	}
	o.writing.Store(true)
	return o.nextLocked()
}

// awaitIdle waits until no goroutine holds the writer token, or until
// timeout has passed, and reports whether the token was free.
func (o *outbox) awaitIdle(timeout time.Duration) bool {
	o.mu.Lock()
	if !o.writing.Load() {
		o.mu.Unlock()
		return true
	}
	if o.idle == nil {
		o.idle = make(chan struct{})
	}
	idle := o.idle
	o.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
		return false
	}
}

// letGo gives the writer token back; mu is held.
func (o *outbox) letGo() {
	o.writing.Store(false)
	if o.idle != nil {
		close(o.idle)
		o.idle = nil
	}
}

// next returns the next item for the token holder with the socket and
// generation to write it to, or releases the token and reports false when
// the queue is empty.
func (o *outbox) next() (outItem, Transport, uint32, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.nextLocked()
}

func (o *outbox) nextLocked() (outItem, Transport, uint32, bool) {
	if o.head == len(o.items) || o.t == nil {
		if o.head != len(o.items) {
			o.clearLocked() // no socket to write them to
		}
		o.letGo()
		if cap(o.items) > 64 {
			o.items = nil
		} else {
			o.items = o.items[:0]
		}
		o.head = 0
		return outItem{}, nil, 0, false
	}
	it := o.items[o.head]
	o.items[o.head] = outItem{}
	o.head++
	o.queued.Add(-1)
	if it.cost > 0 {
		o.bl.give(1, it.cost)
	}
	return it, o.t, o.gen, true
}

// release gives the token back without writing the rest, after a write
// to socket generation gen failed; the queue is emptied and the number of
// data frames returned. If the outbox has moved on to a newer socket, its
// queue is that socket's and is kept.
func (o *outbox) release(gen uint32) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gen != gen {
		o.letGo()
		return 0
	}
	n := o.clearLocked()
	o.letGo()
	return n
}
