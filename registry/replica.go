package registry

import (
	"log/slog"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/actorhook"
	"github.com/protows/protows/registry/registrypb"
)

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
	hub      *presenceHub
	stopped  bool
	log      *slog.Logger
}

func newReplica(r *Cluster) *replica {
	n := &replica{
		r: r, dir: r.dir, held: ledger{}, peers: map[string]*peer{}, flows: map[string]*flow{}, members: map[string]string{},
		gone: map[string]time.Time{}, told: map[string]time.Time{}, waiting: map[string]bool{}, absent: map[string]*absence{}, probed: map[string]time.Time{}, log: r.sys.Logger(),
		hub: newPresenceHub(r.cfg.presence, r.dir.presence),
	}
	r.dir.changed = n.hub.changed
	return n
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
		n.hub.stop()
		return
	case *protoactor.Stopped:
		close(n.r.done)
		return
	case presenceTick:
		n.hub.tick(ctx, m) // nothing once stopped
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
	if !n.stopped {
		n.hub.due(ctx)
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
			size += entrySize(ops[cut].GetEntry())
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
	return &registrypb.Op{Remove: remove, Entry: groupEntry(group, pid, nil)}
}

// groupEntry is pid's membership of group, with presence t (or none).
func groupEntry(group string, pid *protoactor.PID, t *tracked) *registrypb.Entry {
	e := &registrypb.Entry{Group: true, Key: group, Id: pid.Id}
	if t != nil {
		e.PresenceKey, e.Meta = t.key, t.p.Meta
	}
	return e
}

func (n *replica) write(ctx protoactor.Context, w *write) error {
	var ops []*registrypb.Op
	var err error
	if n.expelled && (w.op == opRegister || w.op == opJoin || w.op == opTrack) {
		return ErrExpelled
	}
	switch w.op {
	case opRegister:
		ops, err = n.register(ctx, w.key, w.pid, w.notice)
	case opUnregister:
		ops, err = n.unregister(w.key, w.pid)
	case opJoin:
		if n.dir.join(w.key, w.pid) {
			n.held.of(ctx, w.pid, w.notice).groups.add(w.key)
			ops = append(ops, groupOp(false, w.key, w.pid))
		}
	case opLeave:
		if n.dir.leave(w.key, w.pid) {
			ops = append(ops, groupOp(true, w.key, w.pid))
		}
		if h, ok := n.held[keyOf(w.pid)]; ok {
			h.groups.remove(w.key)
		}
	case opTrack:
		if n.dir.track(w.key, w.pid, w.tracked) {
			ops = append(ops, &registrypb.Op{Entry: groupEntry(w.key, w.pid, w.tracked)})
		}
		n.held.of(ctx, w.pid, w.notice).groups.add(w.key)
	case opSubscribe:
		n.hub.subscribeHeld(ctx, n.held, w.key, w.pid, w.notice)
	case opUnsubscribe:
		n.hub.unsubscribeHeld(n.held, w.key, w.pid)
	}
	n.broadcast(ctx, ops)
	return err
}

func (n *replica) register(ctx protoactor.Context, name string, pid *protoactor.PID, notice *actorhook.StopNotice) ([]*registrypb.Op, error) {
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
	n.held.of(ctx, pid, notice).names.add(name)
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
		h.names.remove(name)
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
			h.names.remove(name)
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
	for _, name := range h.names.all() {
		if c, ok := n.dir.claimOf(name, pid); ok {
			n.dir.removeClaim(name, pid)
			ops = append(ops, nameOp(true, name, pid, c.clock))
		}
	}
	for _, g := range h.groups.all() {
		if n.dir.leave(g, pid) {
			ops = append(ops, groupOp(true, g, pid))
		}
	}
	n.hub.forget(h)
	return ops
}

// onDeliver hands a message from another member to an actor of this one
// that holds a name here.
func (n *replica) onDeliver(ctx protoactor.Context, m *registrypb.DeliverTo) {
	n.ack(ctx, m.GetAckMember(), m.GetAckTo(), 0, m.GetAck())
	pid := protoactor.NewPID(n.r.self, m.GetId())
	if h, ok := n.held[keyOf(pid)]; !ok || h.names.empty() && h.groups.empty() {
		// (An actor that only subscribes to presence holds nothing.)
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
	msg = shared(msg, len(local), m.GetExcept() != "")
	for _, pid := range local {
		if pid.Id != m.GetExcept() || m.GetExcept() == "" {
			ctx.Send(pid, msg)
		}
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
