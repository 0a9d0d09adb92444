package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/proto"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry/registrypb"
)

// replicaName is the name of the registry actor every member runs; other
// members address it by this name at the member's address.
const replicaName = "protows-registry"

// A snapshot part, and a delta, holds at most partEntries entries and
// about partBytes bytes. Parts go one at a time (the receiver asks for the
// next), so that proto.actor's remote, which packs many queued messages
// into one gRPC message, stays far below gRPC's 4 MB limit.
const (
	partEntries = 4096
	partBytes   = 256 << 10
	// maxPending bounds the changes a member keeps, while it receives a
	// peer's snapshot, to apply after it (and maxQueued their bytes);
	// beyond, it asks again.
	maxPending = 1 << 16
	// partsInFlight is how many parts of a snapshot travel at once: about
	// 1 MB, and the transfer does not wait a round trip per part.
	partsInFlight = 4
	// goneFor is how long a member that left the topology is remembered.
	goneFor = time.Hour
	// probeTimeout bounds the wait for the dead letter that says a member
	// runs no registry (it comes back in a round trip). A member found
	// absent is probed again every reprobe sync intervals.
	probeTimeout = 2 * time.Second
	reprobe      = 5
)

// entrySize estimates an entry's encoded size.
func entrySize(key, id string) int { return len(key) + len(id) + 24 }

// Cluster is a [Registry] across the members of a proto.actor cluster,
// replicated on every member and read locally.
//
// Every member holds a copy of the whole directory: names (name → holder)
// and groups (group → members). The member an actor runs on speaks for
// that actor's entries: it records them and sends each change to every
// other member over proto.actor's remote, numbered, so that a member that
// misses one notices and asks for a full copy. A member that joins asks
// each peer for its entries; a member that leaves the cluster topology
// (gracefully, or declared gone by the cluster provider) has its entries
// dropped everywhere. Membership is proto.actor's cluster topology.
//
// Reads are local. Lookup, Members, SendTo and Publish read this member's
// copy and send at once, with no request over the network: SendTo sends
// one message to the holder's member, Publish one message to each member
// that has members of the group. Register, Unregister, Join and Leave are
// answered by this member's registry actor without waiting for any other
// member. A member that hangs, dies or is cut off therefore delays no
// traffic between the others.
//
// # Consistency
//
// The directory is eventually consistent. A change reaches the other
// members after one message between members (well under 50 ms on a LAN);
// until then they answer from what they had. A name is unique once the
// members have heard of each other's claims: two members can give one name
// to two actors within that window, or on the two sides of a partition.
// When the claims meet, every member picks the same winner by the conflict
// policy ([Reject]: the earlier claim; [Replace]: the newer), whatever the
// order the claims arrive in, and the member of the losing actor sends it
// an *actor.CloseRequest (a connection closes with its code) and logs the
// conflict.
//
// # Failures
//
// A dead member's names and memberships stop resolving when the cluster
// provider declares it gone: with the automanaged provider, within about
// its refresh interval plus the failed health check (about 1-3 s with a
// 1 s refresh); with etcd, when its lease expires (about 3 s). A member
// that hangs keeps its entries until then. A SendTo or Publish to an actor
// on a hanging member does not block: the message waits, in order, and is
// delivered if the member resumes before it is declared gone, and dropped
// if it leaves the cluster topology (the registry logs how many it
// dropped; they are never handed to a process that takes the address
// next). At most 16 MB wait for one member; beyond, SendTo returns
// [ErrBacklog] and sends nothing.
// proto.actor never lets a member it declared gone back in. When such a
// member resumes, the others tell it so: its [Cluster.Expelled] channel
// closes (within about one sync interval) and it should restart, to join
// as a new member and resync. A member that restarts on the same address
// replaces its old entries as soon as the others hear from it. A member
// that resumes before it is declared gone just carries on: the changes it
// missed reach it by the periodic digest.
//
// # Messages
//
// Messages cross members as protobuf: actor.Frame, *actor.CloseRequest and
// the user's own protobuf messages travel in an envelope (see registrypb)
// and are delivered as themselves, up to [MaxMessageSize] each
// ([ErrTooLarge] beyond). Messages from one sender reach each member in
// the order sent. proto.actor's remote packs up to 1000 queued messages
// for a member into one gRPC message, and gRPC refuses one over 4 MB: the
// link breaks and the batch is lost. The registry paces what it sends each
// member so that this never happens: about 1 MB of users' messages travels
// unacknowledged, the rest waits its turn (see above). Messages sent
// across members without the registry, with proto.actor directly, are not
// paced. Anything else is refused with
// [ErrNotSerializable], and so are proto.actor's own messages (PoisonPill,
// Stop, Watch, ...): a member never delivers them to an actor on behalf of
// another. A member only accepts deliveries for actors that hold a name or
// a membership in its registry.
type Cluster struct {
	c      *cluster.Cluster
	sys    *protoactor.ActorSystem
	self   string // this member's address
	member string // this member's id
	cfg    *config
	dir    *directory
	pid    *protoactor.PID
	done   chan struct{}
	synced chan struct{}
	// expelled is closed when another member says its topology dropped
	// this one.
	expelled chan struct{}

	sendersMu sync.RWMutex
	senders   map[string]*sender // users' messages to other members, by address

	cutMu sync.Mutex
	cut   map[string]bool // test hook: members whose registry traffic is dropped
}

var _ Registry = (*Cluster)(nil)

// setCut drops (or again lets through) the registry's own traffic with the
// member at address, both ways: a partition as the registry sees it.
// Tests use it; messages sent to actors are not affected.
func (r *Cluster) setCut(address string, cut bool) {
	r.cutMu.Lock()
	defer r.cutMu.Unlock()
	if r.cut == nil {
		r.cut = map[string]bool{}
	}
	r.cut[address] = cut
}

func (r *Cluster) isCut(address string) bool {
	r.cutMu.Lock()
	defer r.cutMu.Unlock()
	return r.cut[address]
}

// NewCluster starts the registry on this member. Call it once per member,
// after StartMember, with the same options on every member. It does not
// wait for the other members' entries: see [Cluster.WaitSynced].
func NewCluster(c *cluster.Cluster, opts ...Option) (*Cluster, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	r := &Cluster{
		c: c, sys: c.ActorSystem, self: c.ActorSystem.Address(), member: c.ActorSystem.ID, cfg: cfg,
		dir: newDirectory(cfg.conflict.replace), done: make(chan struct{}), synced: make(chan struct{}),
		expelled: make(chan struct{}), senders: map[string]*sender{},
	}
	rep := newReplica(r)
	pid, err := r.sys.Root.SpawnNamed(protoactor.PropsFromProducer(func() protoactor.Actor { return rep }), replicaName)
	if err != nil {
		return nil, fmt.Errorf("protows: starting the cluster registry: %w", err)
	}
	r.pid = pid
	return r, nil
}

// WaitSynced waits until this member has the entries of every member that
// was in the cluster topology when the registry started (or has left it
// since). A member that serves users before then answers from a partial
// directory. A member that runs no registry (it answers the registry's
// request with a dead letter) is not waited for. Give ctx a deadline: a
// member that hangs is waited for until the cluster drops it.
func (r *Cluster) WaitSynced(ctx context.Context) error {
	select {
	case <-r.synced:
		return nil
	case <-r.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Expelled is closed when this member learns that the cluster dropped it:
// another member, still in this member's view of the cluster, declared it
// gone (after a pause such as SIGSTOP, a long GC or a half-open link
// outlasted the provider's health checks) and says so when it hears from
// it again. proto.actor never lets a dropped member back in, so the other
// members no longer reach this member's actors and Register and Join
// return [ErrExpelled]. The member should close its connections (code
// 1012, service restart, tells clients to come back) and restart, as a new
// member that resyncs on joining; examples/chat exits with an error so
// that its supervisor restarts it.
func (r *Cluster) Expelled() <-chan struct{} { return r.expelled }

// Stop stops this member's registry actor, first releasing every name and
// membership of this member's actors on the other members. Shut the
// websocket server down first: the actors are not told, and their names
// can be given to others.
func (r *Cluster) Stop() {
	r.sys.Root.Stop(r.pid)
	<-r.done
}

func replicaAt(address string) *protoactor.PID { return protoactor.NewPID(address, replicaName) }

// write asks this member's registry actor to change its entries.
func (r *Cluster) write(ctx context.Context, w *write) error {
	w.reply = make(chan error, 1)
	select {
	case <-r.done:
		return ErrStopped
	default:
	}
	r.sys.Root.Send(r.pid, w)
	select {
	case err := <-w.reply:
		return err
	case <-r.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Cluster) local(pid *protoactor.PID) error {
	if pid.Address != r.self {
		return fmt.Errorf("%w: %s is on %s, this member is %s", ErrNotLocal, pid.Id, pid.Address, r.self)
	}
	return nil
}

// Register gives pid, an actor of this member, the name (see [Registry]
// and the consistency model above).
func (r *Cluster) Register(ctx context.Context, name string, pid *protoactor.PID) error {
	if err := validEntry("name", name, pid); err != nil {
		return err
	}
	if err := r.local(pid); err != nil {
		return err
	}
	return r.write(ctx, &write{op: opRegister, key: name, pid: pid})
}

// Unregister releases the name if pid holds it.
func (r *Cluster) Unregister(ctx context.Context, name string, pid *protoactor.PID) error {
	if err := validEntry("name", name, pid); err != nil {
		return err
	}
	if err := r.local(pid); err != nil {
		return err
	}
	return r.write(ctx, &write{op: opUnregister, key: name, pid: pid})
}

// Join adds pid, an actor of this member, to group.
func (r *Cluster) Join(ctx context.Context, group string, pid *protoactor.PID) error {
	if err := validEntry("group", group, pid); err != nil {
		return err
	}
	if err := r.local(pid); err != nil {
		return err
	}
	return r.write(ctx, &write{op: opJoin, key: group, pid: pid})
}

// Leave removes pid from group.
func (r *Cluster) Leave(ctx context.Context, group string, pid *protoactor.PID) error {
	if err := validEntry("group", group, pid); err != nil {
		return err
	}
	if err := r.local(pid); err != nil {
		return err
	}
	return r.write(ctx, &write{op: opLeave, key: group, pid: pid})
}

// Lookup returns the holder of name, from this member's copy.
func (r *Cluster) Lookup(ctx context.Context, name string) (*protoactor.PID, error) {
	if pid := r.dir.holder(name); pid != nil {
		return pid, nil
	}
	return nil, ErrNotFound
}

// SendTo sends msg to the holder of name, wherever it runs, without
// waiting for any other member. It returns ErrNotFound if this member's
// copy has no holder.
func (r *Cluster) SendTo(ctx context.Context, name string, msg any) error {
	if err := sendable(msg); err != nil {
		return err
	}
	pid := r.dir.holder(name)
	if pid == nil {
		return ErrNotFound
	}
	if pid.Address == r.self {
		r.sys.Root.Send(pid, msg)
		return nil
	}
	env, size, err := r.envelope(msg)
	if err != nil {
		return err
	}
	return r.deliver(pid.Address, &registrypb.DeliverTo{Id: pid.Id, Msg: env}, size+int64(len(pid.Id)))
}

// envelope wraps msg for another member and returns its size.
func (r *Cluster) envelope(msg any) (*registrypb.Envelope, int64, error) {
	env, err := wrap(msg)
	if err != nil {
		return nil, 0, err
	}
	size := proto.Size(env)
	if size > MaxMessageSize {
		return nil, 0, fmt.Errorf("%w: %d bytes encoded, at most %d cross members", ErrTooLarge, size, MaxMessageSize)
	}
	return env, int64(size) + 16, nil
}

// Publish sends msg to every member of group: directly to those on this
// member, and once to each other member that has some, which hands it to
// its own. Messages published by one caller reach each member in order.
// A message too large to cross members ([ErrTooLarge]) is sent to no one;
// [ErrBacklog] names the members it was not sent to, while the others
// have it.
func (r *Cluster) Publish(ctx context.Context, group string, msg any) error {
	if err := sendable(msg); err != nil {
		return err
	}
	local, remote := r.dir.route(group, r.self)
	var env *registrypb.Envelope
	var size int64
	if len(remote) > 0 {
		var err error
		if env, size, err = r.envelope(msg); err != nil {
			return err // sent to no one
		}
		size += int64(len(group))
	}
	for _, pid := range local {
		r.sys.Root.Send(pid, msg)
	}
	var errs []error
	for _, addr := range remote {
		if err := r.deliver(addr, &registrypb.Publish{Group: group, Msg: env}, size); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Members returns the members of group, from this member's copy.
func (r *Cluster) Members(ctx context.Context, group string) ([]*protoactor.PID, error) {
	return r.dir.members(group), nil
}

// Messages from the Cluster's methods to its registry actor.
type (
	write struct {
		op    op
		key   string
		pid   *protoactor.PID
		reply chan error
	}
	tick     struct{}
	topology struct{ t *cluster.ClusterTopology }
)

// peer is what this member knows of another: which process (member id) at
// its address, the last of its changes applied, and a snapshot being
// received.
type peer struct {
	address      string
	member       string
	seq          uint64
	asked        time.Time // when a snapshot was last asked for; zero: not waiting
	snap         *snapshotBuf
	snapAt       time.Time           // when the last part arrived
	pending      []*registrypb.Delta // changes that arrived during the snapshot
	pendingBytes int64
	out          *transfer // this member's snapshot being sent to the peer
	outAt        time.Time // when a part of out was last sent
}

// cancelSnapshot forgets the snapshot being received, and the changes
// kept to apply after it.
func (p *peer) cancelSnapshot() {
	p.snap, p.pending, p.pendingBytes, p.asked = nil, nil, 0, time.Time{}
}

// transfer is a snapshot being sent, part by part as the receiver asks.
type transfer struct {
	id    uint64
	seq   uint64
	parts [][]*registrypb.Entry
}

type snapshotBuf struct {
	transfer uint64
	seq      uint64
	next     uint32
	entries  []*registrypb.Entry
}

// flow paces this member's deltas to one other member (see window).
type flow struct {
	w window
	// last is this member's last change the peer should have: sent, or
	// dropped for it (then the digest shows the gap). Digests carry it,
	// so that changes still queued do not read as lost.
	last uint64
}

// replica is the registry actor of one member. It alone changes the
// directory; the Cluster's readers take its read lock.
type replica struct {
	r        *Cluster
	dir      *directory
	held     ledger           // this member's actors: their names and groups
	seq      uint64           // this member's last change
	clock    uint64           // hybrid logical clock, ns
	peers    map[string]*peer // by address
	flows    map[string]*flow // by address
	xfers    uint64           // snapshot transfers started
	members  map[string]string
	gone     map[string]time.Time // member ids that left the topology, and when
	told     map[string]time.Time // gone members last told so
	expelled bool
	waiting  map[string]bool      // addresses WaitSynced waits for
	absent   map[string]*absence  // members with no registry, by address
	probed   map[string]time.Time // members not heard from: when last probed
	sub      *eventstreamSub
	timer    *time.Timer
	stopped  bool
	log      *slog.Logger
}

func newReplica(r *Cluster) *replica {
	return &replica{
		r: r, dir: r.dir, held: ledger{}, peers: map[string]*peer{}, flows: map[string]*flow{}, members: map[string]string{},
		gone: map[string]time.Time{}, told: map[string]time.Time{}, waiting: map[string]bool{}, absent: map[string]*absence{}, probed: map[string]time.Time{}, log: r.sys.Logger(),
	}
}

func (n *replica) Receive(ctx protoactor.Context) {
	switch m := ctx.Message().(type) {
	case *protoactor.Started:
		n.start(ctx)
	case *protoactor.Stopping:
		n.stopped = true
		n.releaseAll(ctx)
		n.sub.stop()
		n.timer.Stop()
	case *protoactor.Stopped:
		close(n.r.done)
	case *write:
		m.reply <- n.write(ctx, m)
	case *protoactor.Terminated:
		n.forget(ctx, m.Who) // an actor of this member, or a prober
	case *topology:
		n.onTopology(ctx, m.t)
	case tick:
		if n.stopped {
			return
		}
		n.digest(ctx)
		sys, self := ctx.ActorSystem(), ctx.Self()
		n.timer = time.AfterFunc(n.r.cfg.digest, func() { sys.Root.Send(self, tick{}) })
	case *registrypb.Delta:
		n.onDelta(ctx, m)
	case *registrypb.Ack:
		n.onAck(ctx, m)
	case *registrypb.Ping:
		n.ack(ctx, m.GetMember(), m.GetAddress(), m.GetAckDeltas(), m.GetAckSends())
	case *registrypb.Snapshot:
		n.onSnapshot(ctx, m)
	case *registrypb.SyncRequest:
		n.onSyncRequest(ctx, m)
	case *registrypb.Digest:
		n.onDigest(ctx, m)
	case *registrypb.DeliverTo:
		n.onDeliver(ctx, m)
	case *registrypb.Publish:
		n.onPublish(ctx, m)
	case *registrypb.Gone:
		n.onGone(m)
	case absentAt:
		n.markAbsent(m.address, m.member)
	}
}

func (n *replica) start(ctx protoactor.Context) {
	n.sub = subscribeTopology(ctx)
	for _, m := range n.r.c.MemberList.Members().Members() {
		if m.Address() != n.r.self {
			n.members[m.Address()] = m.Id
			n.waiting[m.Address()] = true
			n.ask(ctx, m.Address())
		}
	}
	n.checkSynced()
	sys, self := ctx.ActorSystem(), ctx.Self()
	n.timer = time.AfterFunc(n.r.cfg.digest, func() { sys.Root.Send(self, tick{}) })
}

// now advances the hybrid logical clock.
func (n *replica) now() uint64 {
	t := uint64(time.Now().UnixNano())
	if t <= n.clock {
		t = n.clock + 1
	}
	n.clock = t
	return t
}

func (n *replica) observe(t uint64) {
	if t > n.clock {
		n.clock = t
	}
}

// targets are the members changes go to: those in the topology and those
// heard from.
func (n *replica) targets() []string {
	out := make([]string, 0, len(n.members)+len(n.peers))
	for a := range n.members {
		if _, ok := n.absent[a]; !ok {
			out = append(out, a)
		}
	}
	for a := range n.peers {
		if _, ok := n.members[a]; !ok {
			out = append(out, a)
		}
	}
	return out
}

func (n *replica) broadcast(ctx protoactor.Context, ops []*registrypb.Op) {
	targets := n.targets()
	for len(ops) > 0 {
		// Many changes at once (a heal that settles many names, an actor
		// that held thousands) go as several deltas of bounded size.
		cut, size := 0, 0
		for cut < len(ops) && cut < partEntries && size < partBytes {
			e := ops[cut].GetEntry()
			size += entrySize(e.GetKey(), e.GetId())
			cut++
		}
		n.seq++
		d := &registrypb.Delta{Member: n.r.member, Address: n.r.self, Seq: n.seq, Ops: ops[:cut]}
		for _, a := range targets {
			n.push(ctx, a, d, int64(size))
		}
		ops = ops[cut:]
	}
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

// send sends msg to the registry actor of the member at address.
func (n *replica) send(ctx protoactor.Context, address string, msg any) {
	if n.r.isCut(address) {
		return
	}
	ctx.Send(replicaAt(address), msg)
}

func nameOp(remove bool, name string, pid *protoactor.PID, clock uint64) *registrypb.Op {
	return &registrypb.Op{Remove: remove, Entry: &registrypb.Entry{Key: name, Id: pid.Id, Clock: clock}}
}

func groupOp(remove bool, group string, pid *protoactor.PID) *registrypb.Op {
	return &registrypb.Op{Remove: remove, Entry: &registrypb.Entry{Group: true, Key: group, Id: pid.Id}}
}

func (n *replica) write(ctx protoactor.Context, w *write) error {
	var ops []*registrypb.Op
	var err error
	if n.expelled && (w.op == opRegister || w.op == opJoin) {
		return ErrExpelled
	}
	switch w.op {
	case opRegister:
		ops, err = n.register(ctx, w.key, w.pid)
	case opUnregister:
		ops, err = n.unregister(w.key, w.pid)
	case opJoin:
		if n.dir.join(w.key, w.pid) {
			n.held.of(ctx, w.pid).groups[w.key] = struct{}{}
			ops = append(ops, groupOp(false, w.key, w.pid))
		}
	case opLeave:
		if n.dir.leave(w.key, w.pid) {
			ops = append(ops, groupOp(true, w.key, w.pid))
		}
		if h, ok := n.held[keyOf(w.pid)]; ok {
			delete(h.groups, w.key)
		}
	}
	n.broadcast(ctx, ops)
	return err
}

func (n *replica) register(ctx protoactor.Context, name string, pid *protoactor.PID) ([]*registrypb.Op, error) {
	w, ok := n.dir.winner(name)
	if ok && w.pid.Equal(pid) {
		return nil, nil
	}
	if ok && !n.r.cfg.conflict.replace {
		return nil, ErrNameTaken
	}
	if ok {
		// Replace: the new claim must be newer than every claim seen.
		for _, c := range n.dir.names[name] {
			n.observe(c.clock)
		}
	}
	c := claim{pid: pid, clock: n.now()}
	n.dir.addClaim(name, c)
	n.held.of(ctx, pid).names[name] = struct{}{}
	ops := []*registrypb.Op{nameOp(false, name, pid, c.clock)}
	return append(ops, n.settle(ctx, name)...), nil
}

func (n *replica) unregister(name string, pid *protoactor.PID) ([]*registrypb.Op, error) {
	c, ok := n.dir.claimOf(name, pid)
	if !ok {
		if w, held := n.dir.winner(name); held && !w.pid.Equal(pid) {
			return nil, ErrNotOwner
		}
		return nil, nil
	}
	n.dir.removeClaim(name, pid)
	if h, ok := n.held[keyOf(pid)]; ok {
		delete(h.names, name)
	}
	return []*registrypb.Op{nameOp(true, name, pid, c.clock)}, nil
}

// settle drops this member's claims on name that are not the winner, and
// tells their holders. Claims of other members are their members' to drop.
func (n *replica) settle(ctx protoactor.Context, name string) []*registrypb.Op {
	w, ok := n.dir.winner(name)
	if !ok {
		return nil
	}
	var ops []*registrypb.Op
	for _, c := range append([]claim(nil), n.dir.names[name]...) {
		if c.pid.Address != n.r.self || c.pid.Equal(w.pid) {
			continue
		}
		n.dir.removeClaim(name, c.pid)
		if h, ok := n.held[keyOf(c.pid)]; ok {
			delete(h.names, name)
		}
		ops = append(ops, nameOp(true, name, c.pid, c.clock))
		cf := n.r.cfg.conflict
		n.log.Warn("protows registry: name claimed twice; the other claim wins",
			slog.String("name", name), slog.String("policy", cf.String()),
			slog.String("winner", w.pid.String()), slog.String("closed", c.pid.String()))
		ctx.Send(c.pid, &actor.CloseRequest{Code: cf.code, Reason: cf.reason})
	}
	return ops
}

// forget releases everything a stopped actor of this member held.
func (n *replica) forget(ctx protoactor.Context, pid *protoactor.PID) {
	n.broadcast(ctx, n.release(pid))
}

// releaseAll releases everything this member's actors hold, in one small
// change that drops all of this member's entries (whatever a member
// missed or has queued), so that the other members drop them at once
// when this registry stops rather than when the member leaves the
// cluster topology.
func (n *replica) releaseAll(ctx protoactor.Context) {
	for _, h := range n.held {
		n.release(h.pid)
	}
	n.seq++
	d := &registrypb.Delta{Member: n.r.member, Address: n.r.self, Seq: n.seq, DropAll: true}
	for _, a := range n.targets() {
		n.send(ctx, a, d)
	}
}

// release drops pid's entries and returns the changes that drop them on
// the other members.
func (n *replica) release(pid *protoactor.PID) []*registrypb.Op {
	k := keyOf(pid)
	h, ok := n.held[k]
	if !ok {
		return nil
	}
	delete(n.held, k)
	var ops []*registrypb.Op
	for name := range h.names {
		if c, ok := n.dir.claimOf(name, pid); ok {
			n.dir.removeClaim(name, pid)
			ops = append(ops, nameOp(true, name, pid, c.clock))
		}
	}
	for g := range h.groups {
		if n.dir.leave(g, pid) {
			ops = append(ops, groupOp(true, g, pid))
		}
	}
	return ops
}

// ask requests a peer's snapshot, at most once per sync interval.
func (n *replica) ask(ctx protoactor.Context, address string) {
	p := n.peers[address]
	if p != nil && !p.asked.IsZero() && time.Since(p.asked) < n.r.cfg.digest {
		return
	}
	req := &registrypb.SyncRequest{Member: n.r.member, Address: n.r.self}
	if p != nil {
		p.asked = time.Now()
		n.send(ctx, address, req)
		return
	}
	if n.r.isCut(address) || time.Since(n.probed[address]) < n.r.cfg.digest {
		return
	}
	// A member not heard from yet may run no registry (a member of the
	// cluster that is not a protows server): proto.actor then answers a
	// request with a dead letter, and the member is left out until it
	// speaks.
	n.probed[address] = time.Now()
	pr := &prober{address: address, member: n.members[address], req: req}
	ctx.Spawn(protoactor.PropsFromProducer(func() protoactor.Actor { return pr }))
}

// prober sends one SyncRequest on the registry's behalf and waits a
// moment for the dead letter proto.actor answers with when no registry
// runs at the address; it tells the registry (absentAt).
type prober struct {
	address, member string
	req             *registrypb.SyncRequest
}

// absentAt tells the registry actor that the member at address runs no
// registry.
type absentAt struct{ address, member string }

func (p *prober) Receive(ctx protoactor.Context) {
	switch m := ctx.Message().(type) {
	case *protoactor.Started:
		ctx.SetReceiveTimeout(probeTimeout)
		ctx.Request(replicaAt(p.address), p.req)
	case *protoactor.DeadLetterResponse:
		// The member's own answer names no target; the one proto.actor
		// makes up for a member it cannot reach names it, and says
		// nothing of a registry there.
		if m.GetTarget() == nil {
			ctx.Send(ctx.Parent(), absentAt{p.address, p.member})
		}
		ctx.Stop(ctx.Self())
	case *protoactor.ReceiveTimeout:
		ctx.Stop(ctx.Self())
	}
}

// absence is a member that runs no registry.
type absence struct {
	member string // its member id
	since  time.Time
}

// markAbsent leaves out the member at address, which runs no registry: no
// changes go to it and WaitSynced does not wait for it. It is taken back
// when it speaks (its registry starts), or joins again.
func (n *replica) markAbsent(address, member string) {
	if n.stopped || member == "" || n.members[address] != member || n.peers[address] != nil {
		return
	}
	if _, ok := n.absent[address]; ok {
		return
	}
	n.absent[address] = &absence{member: member, since: time.Now()}
	delete(n.flows, address)
	n.r.dropSender(address)
	delete(n.waiting, address)
	n.log.Info("protows registry: a cluster member runs no registry; leaving it out until it does", slog.String("address", address))
	n.checkSynced()
}

// peerFor returns the state kept for member at address, replacing that of
// an earlier process at the same address. It returns nil for a member
// that left the topology, or a message from this member itself.
func (n *replica) peerFor(ctx protoactor.Context, member, address string) *peer {
	if n.r.isCut(address) || address == n.r.self || address == "" || member == "" {
		return nil
	}
	if _, ok := n.gone[member]; ok {
		n.tellGone(ctx, member, address)
		return nil
	}
	if _, ok := n.members[address]; !ok {
		// Not in this member's topology: a member that left (a message
		// still in flight must not bring its entries back, as no Left
		// would come to drop them again), or one whose join is not seen
		// yet (it is asked for its entries when it is).
		return nil
	}
	delete(n.absent, address) // it speaks
	delete(n.probed, address)
	p := n.peers[address]
	if p != nil && p.member == member {
		return p
	}
	if p != nil {
		// A new process at the address: the old one is gone.
		n.log.Info("protows registry: member restarted; dropping its old entries", slog.String("address", address))
		n.dir.dropAddress(address)
		// What was in flight to the old process is not acknowledged.
		delete(n.flows, address)
		n.r.dropSender(address)
	}
	p = &peer{address: address, member: member}
	n.peers[address] = p
	return p
}

func (n *replica) onDelta(ctx protoactor.Context, d *registrypb.Delta) {
	// It arrived, whatever becomes of it: the sender may send more.
	n.ack(ctx, d.GetMember(), d.GetAddress(), d.GetAck(), 0)
	p := n.peerFor(ctx, d.GetMember(), d.GetAddress())
	if p == nil {
		return
	}
	if d.GetDropAll() && d.GetSeq() > p.seq {
		// All of the peer's entries are the ops that follow: whatever
		// was missed, or is still coming in a snapshot, is superseded.
		p.cancelSnapshot()
		n.dir.dropAddress(p.address)
		p.seq = d.GetSeq() - 1
		delete(n.waiting, p.address)
		if _, ok := n.members[p.address]; ok {
			// Its registry stopped; the process may stay in the cluster
			// for a while (shutting down) or for good: leave it out until
			// it speaks again, as a member that runs no registry.
			defer func() {
				delete(n.peers, p.address)
				n.markAbsent(p.address, n.members[p.address])
			}()
		}
	}
	if p.snap != nil {
		// A snapshot is on its way: its changes up to its number are in
		// it, later ones apply after it.
		size := int64(32)
		for _, op := range d.GetOps() {
			size += int64(entrySize(op.GetEntry().GetKey(), op.GetEntry().GetId()))
		}
		if len(p.pending) >= maxPending || p.pendingBytes+size > maxQueued {
			p.cancelSnapshot()
			n.ask(ctx, p.address)
			return
		}
		p.pending = append(p.pending, d)
		p.pendingBytes += size
		return
	}
	switch {
	case d.GetSeq() <= p.seq:
		return // already applied, or in the snapshot applied
	case d.GetSeq() > p.seq+1:
		n.ask(ctx, p.address)
		return
	}
	p.seq = d.GetSeq()
	var ours []string
	for _, op := range d.GetOps() {
		e := op.GetEntry()
		if validName("name", e.GetKey()) != nil || e.GetId() == "" {
			continue
		}
		pid := protoactor.NewPID(p.address, e.GetId())
		switch {
		case e.GetGroup() && op.GetRemove():
			n.dir.leave(e.GetKey(), pid)
		case e.GetGroup():
			n.dir.join(e.GetKey(), pid)
		case op.GetRemove():
			n.dir.removeClaim(e.GetKey(), pid)
		default:
			n.observe(e.GetClock())
			n.dir.addClaim(e.GetKey(), claim{pid: pid, clock: e.GetClock()})
			ours = append(ours, e.GetKey())
		}
	}
	n.settleAll(ctx, ours)
	n.checkSynced()
}

// settleAll settles names a peer claimed that this member also claims.
func (n *replica) settleAll(ctx protoactor.Context, names []string) {
	var ops []*registrypb.Op
	for _, name := range names {
		ops = append(ops, n.settle(ctx, name)...)
	}
	n.broadcast(ctx, ops)
}

func (n *replica) onSnapshot(ctx protoactor.Context, s *registrypb.Snapshot) {
	p := n.peerFor(ctx, s.GetMember(), s.GetAddress())
	if p == nil {
		return
	}
	if s.GetPart() == 0 {
		p.snap = &snapshotBuf{transfer: s.GetTransfer(), seq: s.GetSeq()}
	}
	b := p.snap
	if b == nil || b.next != s.GetPart() || b.transfer != s.GetTransfer() {
		// A part of a transfer restarted since (parts of the one under
		// way follow), or of none: dropped. A transfer that no longer
		// advances is started over by the digest.
		return
	}
	b.next++
	b.entries = append(b.entries, s.GetEntries()...)
	p.snapAt = time.Now()
	if !s.GetLast() {
		// Part b.next-1 is here: ask for the one partsInFlight after it.
		n.send(ctx, p.address, &registrypb.SyncRequest{Member: n.r.member, Address: n.r.self, Seq: b.seq, Next: b.next + partsInFlight - 1, Transfer: b.transfer})
		return
	}
	pending := p.pending
	p.cancelSnapshot()
	defer func() {
		for _, d := range pending {
			n.onDelta(ctx, d)
		}
	}()
	if b.seq < p.seq {
		return // older than the changes already applied
	}
	p.seq = b.seq
	var ours []string
	for _, e := range b.entries {
		if !e.GetGroup() {
			n.observe(e.GetClock())
			if n.dir.hasLocalClaim(e.GetKey(), n.r.self) {
				ours = append(ours, e.GetKey())
			}
		}
	}
	n.dir.replaceAddress(p.address, b.entries)
	n.settleAll(ctx, ours)
	delete(n.waiting, p.address)
	n.checkSynced()
}

func (n *replica) onSyncRequest(ctx protoactor.Context, m *registrypb.SyncRequest) {
	p := n.peerFor(ctx, m.GetMember(), m.GetAddress())
	if p == nil {
		return
	}
	if m.GetNext() > 0 {
		// The receiver asks for part next (it has received part
		// next-partsInFlight).
		t := p.out
		if t != nil && t.id == m.GetTransfer() && int(m.GetNext()) < len(t.parts) {
			n.sendPart(ctx, p, int(m.GetNext()))
		}
		return
	}
	if p.out != nil && time.Since(p.outAt) < n.r.cfg.digest {
		// A transfer to the peer is under way: requests that piled up
		// (this registry was busy, or the peer asked again) must not
		// each start another.
		return
	}
	n.sendSnapshot(ctx, p)
	if p.seq == 0 && p.snap == nil {
		// A member we have nothing of: it may be new (then its changes
		// start at 1 and apply as they come) or we may have missed it.
		n.ask(ctx, p.address)
	}
}

// sendSnapshot cuts this member's entries into parts and sends the first;
// the peer asks for each next one.
func (n *replica) sendSnapshot(ctx protoactor.Context, p *peer) {
	n.xfers++
	t := &transfer{id: n.xfers, seq: n.seq}
	// The snapshot holds every change so far: deltas queued for the peer
	// need not go.
	n.flowTo(p.address).drop(n.seq)
	var part []*registrypb.Entry
	size := 0
	add := func(e *registrypb.Entry) {
		part = append(part, e)
		size += entrySize(e.Key, e.Id)
		if len(part) >= partEntries || size >= partBytes {
			t.parts = append(t.parts, part)
			part, size = nil, 0
		}
	}
	for _, h := range n.held {
		for name := range h.names {
			if c, ok := n.dir.claimOfKey(name, h); ok {
				add(&registrypb.Entry{Key: name, Id: c.pid.Id, Clock: c.clock})
			}
		}
		for g := range h.groups {
			add(&registrypb.Entry{Group: true, Key: g, Id: h.pid.Id})
		}
	}
	if len(part) > 0 || len(t.parts) == 0 {
		t.parts = append(t.parts, part)
	}
	p.out = t
	for i := 0; i < partsInFlight && p.out == t; i++ {
		n.sendPart(ctx, p, i)
	}
}

func (n *replica) sendPart(ctx protoactor.Context, p *peer, i int) {
	t := p.out
	p.outAt = time.Now()
	last := i == len(t.parts)-1
	n.send(ctx, p.address, &registrypb.Snapshot{Member: n.r.member, Address: n.r.self, Seq: t.seq, Part: uint32(i), Last: last, Entries: t.parts[i], Transfer: t.id})
	if last {
		p.out = nil
	}
}

func (n *replica) digest(ctx protoactor.Context) {
	for _, a := range n.targets() {
		f := n.flowTo(a)
		// The digest follows everything sent to the member before it and
		// asks for it all to be acknowledged, in case the link lost an
		// acknowledgement.
		n.send(ctx, a, &registrypb.Digest{Member: n.r.member, Address: n.r.self, Seq: f.last,
			AckDeltas: f.w.askAll(), AckSends: n.r.askAllSends(a)})
	}
	for a := range n.waiting {
		if p := n.peers[a]; p != nil && p.snap != nil {
			continue // under way; onDigest restarts it if it stalls
		}
		n.ask(ctx, a)
	}
	for _, p := range n.peers {
		if p.out != nil && time.Since(p.outAt) > 3*n.r.cfg.digest {
			p.out = nil // the peer no longer asks for parts
		}
	}
	for a, ab := range n.absent {
		if time.Since(ab.since) > reprobe*n.r.cfg.digest {
			// Probe again: its registry may run by now, or the dead
			// letter may have said only that it could not be reached.
			ab.since = time.Now()
			n.ask(ctx, a)
		}
	}
	for m, at := range n.gone {
		// A process that left is remembered for goneFor: long enough
		// for one that was only paused to hear it was dropped (after
		// that, its messages are still ignored, as it is in no
		// topology), short enough that churn does not grow the map.
		if time.Since(at) > goneFor {
			delete(n.gone, m)
			delete(n.told, m)
		}
	}
}

func (n *replica) onDigest(ctx protoactor.Context, d *registrypb.Digest) {
	n.ack(ctx, d.GetMember(), d.GetAddress(), d.GetAckDeltas(), d.GetAckSends())
	p := n.peerFor(ctx, d.GetMember(), d.GetAddress())
	if p == nil {
		return
	}
	if p.snap != nil {
		if time.Since(p.snapAt) > 3*n.r.cfg.digest {
			p.cancelSnapshot() // stalled: start over
			n.ask(ctx, p.address)
		}
		return
	}
	if d.GetSeq() > p.seq {
		n.ask(ctx, p.address)
		return
	}
	if d.GetSeq() == 0 && n.waiting[p.address] {
		delete(n.waiting, p.address) // it has nothing to send
		n.checkSynced()
	}
}

// onTopology follows members joining and leaving. Cluster providers name
// members in their own way (etcd: "cluster@system-id", Kubernetes: a pod
// label), while a peer is known by its actor system's id, so a member
// that left is matched to a peer by its address: the peer at that address
// is dropped, and, if another member now has the address (a process
// restarted on the same port), asked for its entries again.
func (n *replica) onTopology(ctx protoactor.Context, t *cluster.ClusterTopology) {
	present := map[string]bool{}
	for _, m := range t.GetMembers() {
		present[m.Address()] = true
	}
	for _, m := range t.GetLeft() {
		a := m.Address()
		n.gone[m.Id] = time.Now()
		if n.members[a] == m.Id {
			delete(n.members, a)
			delete(n.waiting, a)
		}
		// What waits for the process that left is not for whatever
		// process has the address next.
		delete(n.flows, a)
		delete(n.absent, a)
		delete(n.probed, a)
		n.r.dropSender(a)
		p := n.peers[a]
		if p == nil {
			continue
		}
		delete(n.peers, a)
		n.dir.dropAddress(a)
		if !present[a] {
			n.gone[p.member] = time.Now()
		} else if _, ok := n.members[a]; ok {
			n.ask(ctx, a)
		}
	}
	for _, m := range t.GetJoined() {
		a := m.Address()
		if _, gone := n.gone[m.Id]; a == n.r.self || gone {
			continue
		}
		n.members[a] = m.Id
		delete(n.absent, a)
		if p := n.peers[a]; p == nil || p.member != m.Id {
			// A new process: nothing is in flight to it.
			delete(n.flows, a)
			n.r.dropSender(a)
			n.ask(ctx, a)
		}
	}
	n.checkSynced()
}

// tellGone tells a process this member saw leave the cluster, and now
// hears from again, that it was dropped; at most once per sync interval.
func (n *replica) tellGone(ctx protoactor.Context, member, address string) {
	if t, ok := n.told[member]; ok && time.Since(t) < n.r.cfg.digest {
		return
	}
	n.told[member] = time.Now()
	n.send(ctx, address, &registrypb.Gone{Member: member, Address: address, From: n.r.self})
}

// onGone handles another member's word that its topology dropped this
// one. It counts only from a member this one still sees in the cluster:
// when each side dropped the other (a partition both sides saw), neither
// is the one to restart, and proto.actor keeps them apart.
func (n *replica) onGone(m *registrypb.Gone) {
	if n.expelled || m.GetMember() != n.r.member || m.GetAddress() != n.r.self {
		return
	}
	if _, ok := n.members[m.GetFrom()]; !ok {
		return
	}
	n.expelled = true
	n.log.Error("protows registry: the cluster dropped this member and will not let it back in; its actors are unreachable from other members: restart it",
		slog.String("address", n.r.self), slog.String("told by", m.GetFrom()))
	close(n.r.expelled)
}

func (n *replica) checkSynced() {
	if len(n.waiting) == 0 {
		select {
		case <-n.r.synced:
		default:
			close(n.r.synced)
		}
	}
}

// onDeliver hands a message from another member to an actor of this one
// that holds a name here.
func (n *replica) onDeliver(ctx protoactor.Context, m *registrypb.DeliverTo) {
	n.ack(ctx, m.GetAckMember(), m.GetAckTo(), 0, m.GetAck())
	pid := protoactor.NewPID(n.r.self, m.GetId())
	if _, ok := n.held[keyOf(pid)]; !ok {
		n.log.Debug("protows registry: delivery for an actor that holds nothing here; dropped", slog.String("id", m.GetId()))
		return
	}
	if msg, ok := n.unwrap(m.GetMsg()); ok {
		ctx.Send(pid, msg)
	}
}

func (n *replica) onPublish(ctx protoactor.Context, m *registrypb.Publish) {
	n.ack(ctx, m.GetAckMember(), m.GetAckTo(), 0, m.GetAck())
	msg, ok := n.unwrap(m.GetMsg())
	if !ok {
		return
	}
	local, _ := n.dir.route(m.GetGroup(), n.r.self)
	for _, pid := range local {
		ctx.Send(pid, msg)
	}
}

func (n *replica) unwrap(env *registrypb.Envelope) (any, bool) {
	msg := unwrap(env)
	switch u := msg.(type) {
	case *UnknownMessage:
		n.log.Warn("protows registry: message of an unknown type; delivering UnknownMessage", slog.String("type", u.TypeURL), slog.Any("error", u.Err))
	case *systemMessage:
		n.log.Warn("protows registry: a member sent a proto.actor system message; dropped", slog.String("type", u.name))
		return nil, false
	}
	return msg, true
}

// directory is a member's copy of the names and groups of the whole
// cluster. Its replica changes it under the write lock; readers take the
// read lock.
type directory struct {
	mu      sync.RWMutex
	replace bool
	names   map[string][]claim
	groups  map[string]map[string]map[string]*protoactor.PID // group -> address -> id
}

// claim is one member's claim of a name for one of its actors.
type claim struct {
	pid   *protoactor.PID
	clock uint64
}

func newDirectory(replace bool) *directory {
	return &directory{replace: replace, names: map[string][]claim{}, groups: map[string]map[string]map[string]*protoactor.PID{}}
}

// before reports whether a is a claim made before b; distinct claims are
// never equal.
func before(a, b claim) bool {
	if a.clock != b.clock {
		return a.clock < b.clock
	}
	if a.pid.Address != b.pid.Address {
		return a.pid.Address < b.pid.Address
	}
	return a.pid.Id < b.pid.Id
}

// winner picks the holder of a name among its claims: the earliest under
// Reject, the newest under Replace.
func (d *directory) winner(name string) (claim, bool) {
	cs := d.names[name]
	if len(cs) == 0 {
		return claim{}, false
	}
	w := cs[0]
	for _, c := range cs[1:] {
		if before(c, w) != d.replace {
			w = c
		}
	}
	return w, true
}

func (d *directory) holder(name string) *protoactor.PID {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if w, ok := d.winner(name); ok {
		return w.pid
	}
	return nil
}

func (d *directory) claimOf(name string, pid *protoactor.PID) (claim, bool) {
	for _, c := range d.names[name] {
		if c.pid.Address == pid.Address && c.pid.Id == pid.Id {
			return c, true
		}
	}
	return claim{}, false
}

func (d *directory) claimOfKey(name string, h *holdings) (claim, bool) { return d.claimOf(name, h.pid) }

func (d *directory) hasLocalClaim(name, self string) bool {
	for _, c := range d.names[name] {
		if c.pid.Address == self {
			return true
		}
	}
	return false
}

func (d *directory) addClaim(name string, c claim) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addClaimLocked(name, c)
}

func (d *directory) addClaimLocked(name string, c claim) {
	cs := d.names[name]
	for i := range cs {
		if cs[i].pid.Address == c.pid.Address && cs[i].pid.Id == c.pid.Id {
			cs[i] = c
			return
		}
	}
	d.names[name] = append(cs, c)
}

func (d *directory) removeClaim(name string, pid *protoactor.PID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs := d.names[name]
	for i := range cs {
		if cs[i].pid.Address == pid.Address && cs[i].pid.Id == pid.Id {
			cs = append(cs[:i], cs[i+1:]...)
			break
		}
	}
	if len(cs) == 0 {
		delete(d.names, name)
	} else {
		d.names[name] = cs
	}
}

// join adds pid to group; it reports whether pid was not a member.
func (d *directory) join(group string, pid *protoactor.PID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.joinLocked(group, pid)
}

func (d *directory) joinLocked(group string, pid *protoactor.PID) bool {
	g := d.groups[group]
	if g == nil {
		g = map[string]map[string]*protoactor.PID{}
		d.groups[group] = g
	}
	at := g[pid.Address]
	if at == nil {
		at = map[string]*protoactor.PID{}
		g[pid.Address] = at
	}
	if _, in := at[pid.Id]; in {
		return false
	}
	at[pid.Id] = pid
	return true
}

// leave removes pid from group; it reports whether pid was a member.
func (d *directory) leave(group string, pid *protoactor.PID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.groups[group]
	at := g[pid.Address]
	if _, in := at[pid.Id]; !in {
		return false
	}
	delete(at, pid.Id)
	if len(at) == 0 {
		delete(g, pid.Address)
		if len(g) == 0 {
			delete(d.groups, group)
		}
	}
	return true
}

// dropAddress removes every entry of the member at address.
func (d *directory) dropAddress(address string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dropAddressLocked(address)
}

func (d *directory) dropAddressLocked(address string) {
	for name, cs := range d.names {
		kept := cs[:0]
		for _, c := range cs {
			if c.pid.Address != address {
				kept = append(kept, c)
			}
		}
		if len(kept) == 0 {
			delete(d.names, name)
		} else if len(kept) != len(cs) {
			clear(cs[len(kept):])
			d.names[name] = kept
		}
	}
	for name, g := range d.groups {
		if _, ok := g[address]; ok {
			delete(g, address)
			if len(g) == 0 {
				delete(d.groups, name)
			}
		}
	}
}

// replaceAddress swaps the entries of the member at address for entries,
// at once for readers.
func (d *directory) replaceAddress(address string, entries []*registrypb.Entry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dropAddressLocked(address)
	for _, e := range entries {
		if validName("name", e.GetKey()) != nil || e.GetId() == "" {
			continue
		}
		pid := protoactor.NewPID(address, e.GetId())
		if e.GetGroup() {
			d.joinLocked(e.GetKey(), pid)
		} else {
			d.addClaimLocked(e.GetKey(), claim{pid: pid, clock: e.GetClock()})
		}
	}
}

// route returns group's members on member self, and the other members'
// addresses that have some.
func (d *directory) route(group, self string) (local []*protoactor.PID, remote []string) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for addr, at := range d.groups[group] {
		if addr != self {
			remote = append(remote, addr)
			continue
		}
		local = make([]*protoactor.PID, 0, len(at))
		for _, pid := range at {
			local = append(local, pid)
		}
	}
	return local, remote
}

func (d *directory) members(group string) []*protoactor.PID {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []*protoactor.PID
	for _, at := range d.groups[group] {
		for _, pid := range at {
			out = append(out, pid)
		}
	}
	return out
}
