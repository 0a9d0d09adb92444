package actor

import (
	"runtime"
	"sync"
	"sync/atomic"

	protoactor "github.com/asynkron/protoactor-go/actor"
)

// mailbox is a connection actor's proto.actor mailbox. It behaves like
// proto.actor's default mailbox (system messages first, suspend and resume,
// a panic escalated to the supervisor) with two differences that make an
// actor per connection cost about what a plain goroutine per connection
// costs:
//
//   - runDirect and postInline let the connection's reader goroutine run
//     the actor on its own stack when the mailbox is idle, instead of waking
//     a new goroutine for every frame (proto.actor's default dispatcher
//     starts one each time an idle mailbox gets a message); runDirect does
//     not even queue the frame.
//   - after each run, the goroutine that ran it calls drained, which writes
//     the connection's queued frames; a write never runs inside Receive, so
//     a slow peer never stalls the actor. The reader goroutine writes only a
//     little (it must get back to reading) and hands a backlog to a writer
//     goroutine.
//
// Messages from other actors arrive through PostUserMessage and run on a
// fresh goroutine, as with the default dispatcher: a sender never runs, and
// never blocks on, a connection's work.
type mailbox struct {
	mu        sync.Mutex
	user      ring
	system    ring
	userN     atomic.Int32
	sysN      atomic.Int32
	running   atomic.Bool
	suspended atomic.Bool
	invoker   protoactor.MessageInvoker
	drained   func(inline bool)
}

var _ protoactor.Mailbox = (*mailbox)(nil)

// throughput is how many messages one run handles before yielding the
// processor, as proto.actor's default dispatcher does.
const throughput = 300

func (m *mailbox) PostUserMessage(msg any) {
	m.pushUser(msg)
	m.schedule()
}

// The counters change with their queue, under mu: outside it they equal
// the queues' lengths, so a reader of a counter never sees a queue emptier
// than it is (a message counted late could be overtaken by a frame run
// directly, or a Suspend passed over).
func (m *mailbox) pushUser(msg any) {
	m.mu.Lock()
	m.user.push(msg)
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
// first; it then writes queued frames (drained) and reports true. The
// actor must not keep msg: the caller may reuse it once runDirect returns.
// Otherwise it reports false and msg has not been delivered: the caller
// queues it with postInline.
func (m *mailbox) runDirect(msg any) bool {
	if !m.running.CompareAndSwap(false, true) {
		return false
	}
	direct := m.sysN.Load() == 0 && m.userN.Load() == 0 && !m.suspended.Load()
	if direct {
		m.invokeDirect(msg)
	}
	// Whatever arrived meanwhile (or was queued ahead of msg) runs now: a
	// sender that found the mailbox running left it to this goroutine.
	m.process(true)
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

// postInline queues msg and, when the mailbox is idle, runs the actor on
// the calling goroutine before returning.
func (m *mailbox) postInline(msg any) {
	m.pushUser(msg)
	if m.running.CompareAndSwap(false, true) {
		m.process(true)
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
		// (drained) and exits.
		go func() {
			growStack()
			m.process(false)
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

// process runs the actor until the mailbox is empty; inline says it runs
// on the connection's reader goroutine.
func (m *mailbox) process(inline bool) {
	for {
		m.run()
		m.running.Store(false)
		pending := m.sysN.Load() > 0 || (!m.suspended.Load() && m.userN.Load() > 0)
		if !pending || !m.running.CompareAndSwap(false, true) {
			break
		}
	}
	if m.drained != nil {
		m.drained(inline)
	}
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
			msg = m.system.pop()
			if msg != nil {
				m.sysN.Add(-1)
			}
			if m.system.size == 0 {
				// System messages are rare (start, stop, watch): an idle
				// connection keeps no buffer for them.
				m.system.buf = nil
			}
			m.mu.Unlock()
			if msg != nil {
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
		msg = m.user.pop()
		if msg != nil {
			m.userN.Add(-1)
		}
		m.mu.Unlock()
		if msg == nil {
			return
		}
		m.invoker.InvokeUserMessage(msg)
	}
}

// ring is a FIFO of messages that keeps no memory while it is empty.
type ring struct {
	buf        []any
	head, size int
}

func (r *ring) push(v any) {
	if r.size == len(r.buf) {
		n := 2 * len(r.buf)
		if n == 0 {
			n = 4
		}
		buf := make([]any, n)
		k := copy(buf, r.buf[r.head:])
		copy(buf[k:], r.buf[:r.head])
		r.buf, r.head = buf, 0
	}
	r.buf[(r.head+r.size)%len(r.buf)] = v
	r.size++
}

func (r *ring) pop() any {
	if r.size == 0 {
		return nil
	}
	v := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	if r.size == 0 {
		r.head = 0
		if len(r.buf) > 64 {
			r.buf = nil
		}
	}
	return v
}
