package registry

import (
	"log/slog"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/protows/protows/registry/registrypb"
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
			size += int64(entrySize(op.GetEntry()))
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
			n.dir.track(e.GetKey(), pid, trackedFrom(e, pid))
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
		size += entrySize(e)
		if len(part) >= partEntries || size >= partBytes {
			t.parts = append(t.parts, part)
			part, size = nil, 0
		}
	}
	for _, h := range n.held {
		for _, name := range h.names.all() {
			if c, ok := n.dir.claimOfKey(name, h); ok {
				add(&registrypb.Entry{Key: name, Id: c.pid.Id, Clock: c.clock})
			}
		}
		for _, g := range h.groups.all() {
			add(groupEntry(g, h.pid, n.dir.trackedOf(g, h.pid)))
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
