package conn

import (
	"runtime"
	"sync"
	"sync/atomic"

	protoactor "github.com/asynkron/protoactor-go/actor"
)

// mailbox is a connection actor's proto.actor mailbox. It behaves like
// proto.actor's default mailbox (system messages first, suspend and resume,
// a panic escalated to the supervisor) with these differences, which make
// an actor per connection cost about what a plain goroutine per connection
// costs and keep a connection's memory bounded:
//
//   - runDirect and postInline let the connection's reader goroutine run
//     the actor on its own stack when the mailbox is idle, instead of waking
//     a new goroutine for every frame (proto.actor's default dispatcher
//     starts one each time an idle mailbox gets a message); runDirect does
//     not even queue the frame.
//   - after each run, the goroutine that ran it writes the connection's
//     queued frames (conn.flush); a write never runs inside Receive, so a
//     slow peer never stalls the actor. The reader goroutine writes only a
//     little (it must get back to reading) and hands a backlog to a writer
//     goroutine. During a long run, between two messages, frames already
//     pushed are handed to a writer goroutine (conn.kick): writing keeps
//     pace with the actor instead of waiting for the mailbox to empty.
//   - a message from another actor takes a place in the connection's
//     backlog (see backlog), which is bounded: a full backlog applies the
//     connection's overflow policy to the message instead of queueing it.
//
// Messages from other actors arrive through PostUserMessage and run on a
// fresh goroutine, as with the default dispatcher: a sender never runs, and
// never blocks on, a connection's work.
type mailbox struct {
	mu        sync.Mutex
	user      ring[entry]
	system    ring[any]
	userN     atomic.Int32
	sysN      atomic.Int32
	running   atomic.Bool
	suspended atomic.Bool
	invoker   protoactor.MessageInvoker
	a         *conn
}

// entry is a queued user message with its place in the connection's
// backlog (0 for the actor's own messages, which are not counted).
type entry struct {
	msg  any
	cost int64
}

var _ protoactor.Mailbox = (*mailbox)(nil)

// throughput is how many messages one run handles before yielding the
// processor, as proto.actor's default dispatcher does.
const throughput = 300

// PostUserMessage queues a message from another actor. It takes a place
// in the connection's backlog; when the backlog is full the connection's
// overflow policy decides (conn.inboxFull) and the message may be dropped.
// The sender never blocks.
func (m *mailbox) PostUserMessage(msg any) {
	cost, counted := inboxCost(msg)
	if !counted {
		cost = 0
	} else if !m.a.backlog.take(cost) && !m.a.inboxFull(cost) {
		return
	}
	m.pushUser(entry{msg: msg, cost: cost})
	m.schedule()
}

// post queues one of the actor's own messages (timers, the writer's and
// the dialler's reports): not counted, never refused.
func (m *mailbox) post(msg any) {
	m.pushUser(entry{msg: msg})
	m.schedule()
}

// postFirst queues msg ahead of every user message.
func (m *mailbox) postFirst(msg any) {
	m.mu.Lock()
	m.user.pushFront(entry{msg: msg})
	m.userN.Add(1)
	m.mu.Unlock()
	m.schedule()
}

// dropOldest removes the oldest counted message, gives back its place and
// reports whether there was one.
func (m *mailbox) dropOldest() bool {
	m.mu.Lock()
	var cost int64
	for i := range m.user.size {
		if e := m.user.at(i); e.cost > 0 {
			cost = e.cost
			m.user.removeAt(i)
			m.userN.Add(-1)
			break
		}
	}
	m.mu.Unlock()
	if cost == 0 {
		return false
	}
	m.a.backlog.give(1, cost)
	return true
}

// dropCounted removes every counted message, gives back their places and
// returns how many there were; the actor's own messages stay.
func (m *mailbox) dropCounted() int {
	m.mu.Lock()
	n, cost := 0, int64(0)
	var kept ring[entry]
	for m.user.size > 0 {
		e, _ := m.user.pop()
		if e.cost > 0 {
			n++
			cost += e.cost
			continue
		}
		kept.push(e)
	}
	m.user = kept
	m.userN.Store(int32(kept.size))
	m.mu.Unlock()
	m.a.backlog.give(n, cost)
	return n
}

// The counters change with their queue, under mu: outside it they equal
// the queues' lengths, so a reader of a counter never sees a queue emptier
// than it is (a message counted late could be overtaken by a frame run
// directly, or a Suspend passed over).
func (m *mailbox) pushUser(e entry) {
	m.mu.Lock()
	m.user.push(e)
	m.userN.Add(1)
	m.mu.Unlock()
}

func (m *mailbox) PostSystemMessage(msg any) {
	m.mu.Lock()
	m.system.push(msg)
	m.sysN.Add(1)
	m.mu.Unlock()
	m.schedule()
}

// runDirect runs the actor on msg on the calling goroutine, without
// queueing it, when the mailbox is idle and holds nothing that must go
// first; it then writes queued frames (conn.flush) and reports true. The
// actor must not keep msg: the caller may reuse it once runDirect returns.
// Otherwise it reports false and msg has not been delivered: the caller
// queues it with postInline.
func (m *mailbox) runDirect(msg any, rd *reader) bool {
	if !m.running.CompareAndSwap(false, true) {
		return false
	}
	direct := m.sysN.Load() == 0 && m.userN.Load() == 0 && !m.suspended.Load()
	if direct {
		m.invokeDirect(msg)
	}
	// Whatever arrived meanwhile (or was queued ahead of msg) runs now: a
	// sender that found the mailbox running left it to this goroutine.
	m.process(rd)
	return direct
}

func (m *mailbox) invokeDirect(msg any) {
	defer func() {
		if r := recover(); r != nil {
			if f, ok := msg.(*inFrame); ok {
				c := *f // the caller reuses msg; the failure may outlive it
				msg = &c
			}
			m.invoker.EscalateFailure(r, msg)
		}
	}()
	m.invoker.InvokeUserMessage(msg)
}

// postInline queues msg (one of the actor's own) and, when the mailbox is
// idle, runs the actor on the calling goroutine, the reader rd, before
// returning.
func (m *mailbox) postInline(msg any, rd *reader) {
	m.pushUser(entry{msg: msg})
	if m.running.CompareAndSwap(false, true) {
		m.process(rd)
	}
}

func (m *mailbox) RegisterHandlers(invoker protoactor.MessageInvoker, _ protoactor.Dispatcher) {
	m.invoker = invoker
}

func (m *mailbox) Start() {}

func (m *mailbox) UserMessageCount() int { return int(m.userN.Load()) }

func (m *mailbox) schedule() {
	if m.running.CompareAndSwap(false, true) {
		// Goroutine: started by any sender to an idle mailbox, it runs the
		// actor until the mailbox is empty, then writes queued frames
		// (conn.flush) and exits.
		go func() {
			growStack()
			m.process(nil)
		}()
	}
}

// growStack makes the calling goroutine's stack big enough for an actor
// turn and a socket write (4 KiB, measured with the gorilla transport) in
// one step, while the stack is shallow. A new goroutine starts with a small
// stack; growing it deep inside the turn makes the runtime walk and adjust
// every frame on the way, which costs more than the turn itself (half of
// BenchmarkActorInfo's time).
//
//go:noinline
func growStack() byte {
	var pad [stackPad]byte
	return pad[stackIndex] // a variable index keeps pad on the stack
}

const stackPad = 1536

var stackIndex byte // always 0; read only

// process runs the actor until the mailbox is empty; rd is the reader
// whose goroutine runs it, or nil.
func (m *mailbox) process(rd *reader) {
	for {
		m.run()
		m.running.Store(false)
		pending := m.sysN.Load() > 0 || (!m.suspended.Load() && m.userN.Load() > 0)
		if !pending || !m.running.CompareAndSwap(false, true) {
			break
		}
	}
	m.a.flush(rd)
}

func (m *mailbox) run() {
	var msg any
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
		}
	}()
	for i := 0; ; i++ {
		if i == throughput {
			i = 0
			runtime.Gosched()
		}
		// A message the counters do not show yet is still being posted: its
		// poster's schedule, or process's check, runs it.
		if m.sysN.Load() > 0 {
			m.mu.Lock()
			var ok bool
			msg, ok = m.system.pop()
			if ok {
				m.sysN.Add(-1)
			}
			if m.system.size == 0 {
				// System messages are rare (start, stop, watch): an idle
				// connection keeps no buffer for them.
				m.system.buf = nil
			}
			m.mu.Unlock()
			if ok {
				switch msg.(type) {
				case *protoactor.SuspendMailbox:
					m.suspended.Store(true)
				case *protoactor.ResumeMailbox:
					m.suspended.Store(false)
				default:
					m.invoker.InvokeSystemMessage(msg)
				}
				continue
			}
		}
		if m.suspended.Load() || m.userN.Load() == 0 {
			return
		}
		m.mu.Lock()
		e, ok := m.user.pop()
		if ok {
			m.userN.Add(-1)
		}
		m.mu.Unlock()
		if !ok {
			return
		}
		if e.cost > 0 {
			// The message leaves the backlog; what its handler pushes joins it.
			m.a.backlog.give(1, e.cost)
		}
		msg = e.msg
		m.invoker.InvokeUserMessage(msg)
		if m.userN.Load() > 0 {
			// More to do: frames pushed so far go out meanwhile, so that
			// writing keeps pace with a long run of messages.
			m.a.kick()
		}
	}
}

// ring is a FIFO that keeps no memory while it is empty.
type ring[T any] struct {
	buf        []T
	head, size int
}

func (r *ring[T]) grow() {
	n := 2 * len(r.buf)
	if n == 0 {
		n = 4
	}
	buf := make([]T, n)
	k := copy(buf, r.buf[r.head:])
	copy(buf[k:], r.buf[:r.head])
	r.buf, r.head = buf, 0
}

func (r *ring[T]) push(v T) {
	if r.size == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.size)%len(r.buf)] = v
	r.size++
}

func (r *ring[T]) pushFront(v T) {
	if r.size == len(r.buf) {
		r.grow()
	}
	r.head = (r.head - 1 + len(r.buf)) % len(r.buf)
	r.buf[r.head] = v
	r.size++
}

// at returns the i-th element from the head.
func (r *ring[T]) at(i int) T { return r.buf[(r.head+i)%len(r.buf)] }

// removeAt removes the i-th element from the head, keeping the order of
// the others.
func (r *ring[T]) removeAt(i int) {
	for ; i > 0; i-- {
		r.buf[(r.head+i)%len(r.buf)] = r.buf[(r.head+i-1)%len(r.buf)]
	}
	var zero T
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.size--
}

func (r *ring[T]) pop() (T, bool) {
	var zero T
	if r.size == 0 {
		return zero, false
	}
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	if r.size == 0 {
		r.head = 0
		if len(r.buf) > 64 {
			r.buf = nil
		}
	}
	return v, true
}
