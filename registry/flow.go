package registry

import (
	"fmt"
	"log/slog"
	"sync"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/protows/protows/registry/registrypb"
)

// Pacing of what one member sends another.
//
// proto.actor's remote sends up to 1000 queued messages for a member in one
// gRPC message, and gRPC refuses one of more than 4 MB by default: the
// link breaks and the whole batch is lost. Every stream between two
// members that can burst is therefore paced by a window: registry changes
// (at most deltaWindow bytes unacknowledged), snapshot parts (partsInFlight
// parts of at most partBytes) and users' sends and publishes (sendWindow,
// or one message of up to MaxMessageSize alone), and one snapshot
// transfer at a time per member. Together they stay under about 3.5 MB.
// The receiver acknowledges a message that asks, and one asks every
// ackEvery bytes; what does not fit waits, in order, in a bounded queue,
// and when something waits a Ping asks for an acknowledgement of the
// bytes sent since the last request. An acknowledgement lost with a broken
// link is made up by the next Digest, which follows everything sent before
// it on the same ordered stream and asks for an acknowledgement of all of
// it. A member that hangs acknowledges nothing, and nothing more is sent
// to it: when it resumes, proto.actor's queue for it holds at most the
// windows.
const (
	ackEvery    = 64 << 10
	deltaWindow = 512 << 10
	sendWindow  = 1 << 20
	maxQueued   = 16 << 20
)

// MaxMessageSize is the largest message [Cluster.SendTo] and
// [Cluster.Publish] carry to another member, in bytes once encoded; a
// larger one is refused with [ErrTooLarge]. Messages to actors of the
// same member have no limit.
const MaxMessageSize = 2 << 20

// window counts the bytes sent to one member and not yet acknowledged,
// and queues what does not fit.
type window struct {
	limit                int64
	sent, acked, askedAt int64 // bytes since the window began
	asks                 uint64
	marks                []mark // messages that asked for an acknowledgement
	queue                []queued
	queued               int64
}

// mark is a message that asked for acknowledgement number n, and the
// bytes sent up to and including it.
type mark struct {
	n    uint64
	sent int64
}

type queued struct {
	msg  proto.Message
	size int64
}

// fits reports whether size more bytes may go now.
func (w *window) fits(size int64) bool {
	return w.sent == w.acked || w.sent-w.acked+size <= w.limit
}

// unasked reports whether messages wait while no acknowledgement asked
// for covers the last bytes sent: then only a Ping moves the window.
func (w *window) unasked() bool {
	return len(w.queue) > 0 && w.askedAt != w.sent && w.sent != w.acked
}

// idle reports whether a message of size bytes may go now, ahead of
// nothing.
func (w *window) idle(size int64) bool { return len(w.queue) == 0 && w.fits(size) }

// take counts size bytes sent now. It returns the number the message
// asks to be acknowledged with, or 0 if it does not ask.
func (w *window) take(size int64) uint64 {
	w.sent += size
	if w.sent-w.askedAt < ackEvery {
		return 0
	}
	w.askedAt = w.sent
	w.asks++
	w.marks = append(w.marks, mark{n: w.asks, sent: w.sent})
	return w.asks
}

// ack takes acknowledgement n; it reports whether the window moved.
func (w *window) ack(n uint64) bool {
	i := 0
	for i < len(w.marks) && w.marks[i].n <= n {
		w.acked = w.marks[i].sent
		i++
	}
	if i == 0 {
		return false
	}
	w.marks = w.marks[i:]
	return true
}

// askAll returns the number with which to ask for an acknowledgement of
// everything sent so far, or 0 when nothing is unacknowledged.
func (w *window) askAll() uint64 {
	if w.sent == w.acked {
		return 0
	}
	if w.askedAt != w.sent {
		w.askedAt = w.sent
		w.asks++
		w.marks = append(w.marks, mark{n: w.asks, sent: w.sent})
	}
	return w.asks
}

// enqueue queues msg; it reports false, queueing nothing, when maxQueued
// bytes already wait.
func (w *window) enqueue(msg proto.Message, size int64) bool {
	if w.queued+size > maxQueued {
		return false
	}
	w.queue = append(w.queue, queued{msg, size})
	w.queued += size
	return true
}

// next pops the first queued message if it fits.
func (w *window) next() (queued, bool) {
	if len(w.queue) == 0 || !w.fits(w.queue[0].size) {
		return queued{}, false
	}
	q := w.queue[0]
	w.queue[0] = queued{}
	w.queue = w.queue[1:]
	w.queued -= q.size
	if len(w.queue) == 0 {
		w.queue = nil
	}
	return q, true
}

// clear drops the queue and returns how many messages it held.
func (w *window) clear() int {
	n := len(w.queue)
	w.queue, w.queued = nil, 0
	return n
}

// sender paces the users' messages (DeliverTo, Publish) this member sends
// to one other member. SendTo and Publish use it from any goroutine; the
// registry actor drains it as acknowledgements arrive.
type sender struct {
	mu   sync.Mutex
	w    window
	dead bool // dropped: its member left
}

// sender returns the sender to the member at address, or nil.
func (r *Cluster) sender(address string) *sender {
	r.sendersMu.RLock()
	defer r.sendersMu.RUnlock()
	return r.senders[address]
}

// senderTo returns the sender to the member at address, made if need be.
func (r *Cluster) senderTo(address string) *sender {
	if s := r.sender(address); s != nil {
		return s
	}
	r.sendersMu.Lock()
	defer r.sendersMu.Unlock()
	s := r.senders[address]
	if s == nil {
		s = &sender{w: window{limit: sendWindow}}
		r.senders[address] = s
	}
	return s
}

// deliver sends m, a DeliverTo or a Publish of size bytes, to the
// registry of the member at address: now, or after what waits for that
// member.
func (r *Cluster) deliver(address string, m proto.Message, size int64) error {
	for {
		select {
		case <-r.done:
			return ErrStopped
		default:
		}
		s := r.senderTo(address)
		s.mu.Lock()
		if s.dead {
			// Dropped since it was looked up: its member left, and a
			// process now at the address gets a new one.
			s.mu.Unlock()
			continue
		}
		err := r.deliverLocked(address, s, m, size)
		s.mu.Unlock()
		return err
	}
}

func (r *Cluster) deliverLocked(address string, s *sender, m proto.Message, size int64) error {
	if s.w.idle(size) {
		r.transmit(address, s, m, size)
		return nil
	}
	if !s.w.enqueue(m, size) {
		return fmt.Errorf("%w: %d bytes wait for member %s", ErrBacklog, s.w.queued, address)
	}
	r.pingIfUnasked(address, s)
	return nil
}

// pingIfUnasked asks the member at address for an acknowledgement when
// messages wait for one that was not asked for; s.mu is held.
func (r *Cluster) pingIfUnasked(address string, s *sender) {
	if s.w.unasked() {
		r.sys.Root.Send(replicaAt(address), &registrypb.Ping{Member: r.member, Address: r.self, AckSends: s.w.askAll()})
	}
}

// transmit sends m now; s.mu is held.
func (r *Cluster) transmit(address string, s *sender, m proto.Message, size int64) {
	if n := s.w.take(size); n != 0 {
		switch m := m.(type) {
		case *registrypb.DeliverTo:
			m.Ack, m.AckTo, m.AckMember = n, r.self, r.member
		case *registrypb.Publish:
			m.Ack, m.AckTo, m.AckMember = n, r.self, r.member
		}
	}
	r.sys.Root.Send(replicaAt(address), m)
}

// drain takes acknowledgement ack from the member at address and sends
// what waits for it and now fits.
func (r *Cluster) drain(address string, ack uint64) {
	s := r.sender(address)
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.w.ack(ack) {
		return
	}
	for {
		q, ok := s.w.next()
		if !ok {
			break
		}
		r.transmit(address, s, q.msg, q.size)
	}
	r.pingIfUnasked(address, s)
}

// dropSender forgets the member at address, which left the cluster, and
// what waits for it.
func (r *Cluster) dropSender(address string) {
	r.sendersMu.Lock()
	s := r.senders[address]
	delete(r.senders, address)
	r.sendersMu.Unlock()
	if s == nil {
		return
	}
	s.mu.Lock()
	n := s.w.clear()
	s.dead = true
	s.mu.Unlock()
	if n > 0 {
		r.sys.Logger().Warn("protows registry: a member left the cluster; dropping the messages that waited for it",
			slog.String("address", address), slog.Int("dropped", n))
	}
}

// askAllSends returns the number with which to ask the member at address
// for an acknowledgement of every user's message sent to it so far, or 0.
func (r *Cluster) askAllSends(address string) uint64 {
	s := r.sender(address)
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.askAll()
}

// flow paces this member's deltas to one other member (see window).
type flow struct {
	w window
	// last is this member's last change the peer should have: sent, or
	// dropped for it (then the digest shows the gap). Digests carry it,
	// so that changes still queued do not read as lost.
	last uint64
}

// flowTo returns the flow of deltas to the member at address.
func (n *replica) flowTo(address string) *flow {
	f := n.flows[address]
	if f == nil {
		// Changes before now reach the member in a snapshot.
		f = &flow{w: window{limit: deltaWindow}, last: n.seq}
		n.flows[address] = f
	}
	return f
}

// push sends delta d (size bytes) to the member at address, or queues it
// while the member has deltaWindow bytes unacknowledged.
func (n *replica) push(ctx protoactor.Context, address string, d *registrypb.Delta, size int64) {
	f := n.flowTo(address)
	if f.w.idle(size) {
		n.transmit(ctx, address, f, d, size)
		return
	}
	if !f.w.enqueue(d, size) {
		// The member does not keep up (it hangs, or its link is cut):
		// it learns of the gap from the digest and resyncs by snapshot.
		n.log.Warn("protows registry: a member does not acknowledge changes; dropping those queued for it, it resyncs",
			slog.String("address", address), slog.Int("queued", len(f.w.queue)))
		f.drop(d.GetSeq())
		return
	}
	n.pingIfUnasked(ctx, address, f)
}

// pingIfUnasked asks the member at address for an acknowledgement when
// deltas wait for one that was not asked for.
func (n *replica) pingIfUnasked(ctx protoactor.Context, address string, f *flow) {
	if f.w.unasked() {
		n.send(ctx, address, &registrypb.Ping{Member: n.r.member, Address: n.r.self, AckDeltas: f.w.askAll()})
	}
}

// drop forgets the queued deltas, up to change seq, as sent.
func (f *flow) drop(seq uint64) {
	f.w.clear()
	f.last = max(f.last, seq)
}

func (n *replica) transmit(ctx protoactor.Context, address string, f *flow, d *registrypb.Delta, size int64) {
	f.last = d.GetSeq()
	if ack := f.w.take(size); ack != 0 {
		// A copy: d itself may go to other members as it is.
		d = &registrypb.Delta{Member: d.Member, Address: d.Address, Seq: d.Seq, Ops: d.Ops, DropAll: d.DropAll, Ack: ack}
	}
	n.send(ctx, address, d)
}

// drain sends the deltas queued for the member at address that now fit.
func (n *replica) drain(ctx protoactor.Context, address string, f *flow) {
	for {
		q, ok := f.w.next()
		if !ok {
			break
		}
		n.transmit(ctx, address, f, q.msg.(*registrypb.Delta), q.size)
	}
	n.pingIfUnasked(ctx, address, f)
}

func (n *replica) onAck(ctx protoactor.Context, m *registrypb.Ack) {
	a := m.GetAddress()
	if p := n.peers[a]; p == nil || p.member != m.GetMember() || m.GetTo() != n.r.member {
		return // not from the process the windows count for, or not for this one
	}
	if m.GetSends() != 0 {
		n.r.drain(a, m.GetSends())
	}
	if f := n.flows[a]; f != nil && m.GetDeltas() != 0 && f.w.ack(m.GetDeltas()) {
		n.drain(ctx, a, f)
	}
}

// ack answers a message from member at address that asked for an
// acknowledgement.
func (n *replica) ack(ctx protoactor.Context, member, address string, deltas, sends uint64) {
	if _, gone := n.gone[member]; gone || (deltas == 0 && sends == 0) || address == n.r.self || address == "" {
		return
	}
	n.send(ctx, address, &registrypb.Ack{Member: n.r.member, Address: n.r.self, Deltas: deltas, Sends: sends, To: member})
}
