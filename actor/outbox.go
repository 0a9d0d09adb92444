package actor

import "sync"

// outItem is one frame waiting to be written.
type outItem struct {
	frame Frame     // a data frame or a ping
	close bool      // a close frame with code and text instead of frame
	code  CloseCode //
	text  string    //
	final bool      // close the network connection once this close frame is written
}

// outbox queues the frames a connection actor pushes until a writer takes
// them. The actor appends; at most one goroutine at a time holds the writer
// token and writes, in order (see conn.flush). It is bounded in frames and
// bytes; what happens past the bound is the actor's overflow policy.
type outbox struct {
	mu      sync.Mutex
	items   []outItem
	head    int
	bytes   int
	writing bool      // a goroutine holds the writer token
	t       Transport // the socket the items are for (clients change it on reconnect)
	gen     uint32    // that socket's generation
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

func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.items) - o.head
}

// push appends it unless it is a data frame that would pass maxFrames or
// maxBytes; control frames always fit. It reports whether it was queued.
func (o *outbox) push(it outItem, maxFrames, maxBytes int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(it.frame.Data)
	if !it.close && it.frame.IsData() && (len(o.items)-o.head >= maxFrames || o.bytes+n > maxBytes) {
		return false
	}
	o.items = append(o.items, it)
	o.bytes += n
	return true
}

// dropOldest removes the oldest queued data frame and reports whether there
// was one.
func (o *outbox) dropOldest() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := o.head; i < len(o.items); i++ {
		if !o.items[i].close && o.items[i].frame.IsData() {
			o.bytes -= len(o.items[i].frame.Data)
			copy(o.items[i:], o.items[i+1:])
			o.items[len(o.items)-1] = outItem{}
			o.items = o.items[:len(o.items)-1]
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
	n := 0
	var final *outItem
	for _, it := range o.items[o.head:] {
		switch {
		case it.final:
			final = &it
		case !it.close && it.frame.IsData():
			n++
		}
	}
	clear(o.items)
	o.items, o.head, o.bytes = o.items[:0], 0, 0
	if final != nil {
		o.items = append(o.items, *final)
	}
	return n
}

// take takes the writer token and the first item to write, if nobody
// holds the token and there is something to write.
func (o *outbox) take() (outItem, Transport, uint32, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.writing || o.head == len(o.items) {
		return outItem{}, nil, 0, false
	}
	o.writing = true
	return o.nextLocked()
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
		o.writing = false
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
	o.bytes -= len(it.frame.Data)
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
		o.writing = false
		return 0
	}
	n := 0
	for _, it := range o.items[o.head:] {
		if !it.close && it.frame.IsData() {
			n++
		}
	}
	clear(o.items)
	o.items, o.head, o.bytes, o.writing = o.items[:0], 0, 0, false
	return n
}
