package conn

import (
	"sync/atomic"

	"github.com/protows/protows/actor"

	protoactor "github.com/asynkron/protoactor-go/actor"
)

// itemCost is what one queued message or frame costs besides its payload,
// in the backlog's byte count: a mailbox slot and envelope, or an outbox
// entry, come to about this much. Counting it makes the byte bound a bound
// on memory even for empty frames.
const itemCost = 64

// backlog counts what waits for a connection's peer: messages from other
// actors still in the mailbox and frames in the outbound queue, in bytes
// (payload plus itemCost each) and in items. A message that leaves the
// mailbox gives back its place, and the frames its handler pushes take
// theirs; so a peer that reads at full speed keeps the backlog low however
// long a burst is, and only a peer that does not keep up fills it.
//
// Places are taken by other actors' goroutines (posting to the mailbox) and
// by the actor (pushing), and given back by the actor and the writer; the
// counters are atomic and a place is taken with a compare-and-swap, so the
// bound holds without a lock.
type backlog struct {
	bytes    atomic.Int64
	items    atomic.Int64
	maxBytes int64
	maxItems int64 // 0: no bound on the count
}

// take reserves a place of cost bytes and reports whether it fit. The
// count is taken first and given back if the bytes do not fit, so neither
// bound is ever passed; takers racing near the count bound may be refused
// while another's place is being given back.
func (b *backlog) take(cost int64) bool {
	if n := b.items.Add(1); b.maxItems > 0 && n > b.maxItems {
		b.items.Add(-1)
		return false
	}
	for {
		cur := b.bytes.Load()
		if cur+cost > b.maxBytes {
			b.items.Add(-1)
			return false
		}
		if b.bytes.CompareAndSwap(cur, cur+cost) {
			return true
		}
	}
}

// fits reports whether a place of cost bytes could ever be taken.
func (b *backlog) fits(cost int64) bool { return cost <= b.maxBytes }

// give returns n places of cost bytes in all.
func (b *backlog) give(n int, cost int64) {
	if n == 0 && cost == 0 {
		return
	}
	b.bytes.Add(-cost)
	b.items.Add(-int64(n))
}

// roomToDefer reports whether replies may wait in the outbox a little
// longer to be written together (see reader): the backlog is under
// deferBytes and under half of each bound, so deferring never brings the
// connection near its overflow policy.
func (b *backlog) roomToDefer() bool {
	bytes := b.bytes.Load()
	if bytes >= deferBytes || bytes >= b.maxBytes/2 {
		return false
	}
	return b.maxItems == 0 || b.items.Load() < b.maxItems/2
}

// payloadCost is the backlog cost of a frame with n payload bytes.
func payloadCost(n int) int64 { return int64(n) + itemCost }

// inboxCost is the backlog cost of a message another actor posts to the
// connection; counted is false for messages that must never be refused
// (requests to close, shut down or stop) and for frames a disconnected
// client holds (its hold limit bounds them).
func inboxCost(msg any) (cost int64, counted bool) {
	if env, ok := msg.(*protoactor.MessageEnvelope); ok {
		msg = env.Message
	}
	switch m := msg.(type) {
	case *actor.Shutdown, *actor.CloseRequest, *clientClose, *overflowed, *protoactor.PoisonPill:
		return 0, false
	case actor.Frame:
		return payloadCost(len(m.Data)), true
	case *actor.Frame:
		return payloadCost(len(m.Data)), true
	case *pushMsg:
		if m.reserved {
			return 0, false // a client's hold place bounds it already
		}
		return payloadCost(len(m.f.Data)), true
	case []byte:
		return payloadCost(len(m)), true
	case string:
		return payloadCost(len(m)), true
	}
	return itemCost, true
}

// overflowed is the message the mailbox puts at the head of its queue
// when a message from another actor finds the backlog full and the
// overflow policy is to close: the connection closes before it works
// through what is queued.
type overflowed struct{}
