package registry

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/protows/protows/registry/registrypb"
)

const (
	// NameKind is the cluster kind of the grains that hold names.
	NameKind = "protows-name"
	// nodeActor is the name of the registry actor every member runs.
	nodeActor = "protows-registry"
	// defaultTimeout bounds a call whose context has no deadline.
	defaultTimeout = 5 * time.Second
)

// Kinds returns the cluster kinds a cluster registry needs. Pass them to
// cluster.WithKinds on every member, before the member starts:
//
//	cluster.Configure("chat", provider, disthash.New(), remoteConfig,
//		cluster.WithKinds(registry.Kinds()...))
func Kinds() []*cluster.Kind {
	return []*cluster.Kind{cluster.NewKind(NameKind, protoactor.PropsFromProducer(func() protoactor.Actor { return &nameGrain{} }))}
}

// Cluster is a [Registry] across the members of a proto.actor cluster.
//
// Names: each name is a cluster identity of kind [NameKind], a small grain
// that holds its owner's PID and watches it. A name is released when its
// owner stops or its owner's member leaves the cluster. When a member
// leaves, the grains it hosted are gone; every member re-claims the names
// of its own actors on each topology change, so a name is unknown for at
// most the time the cluster takes to notice the member left plus one
// request.
//
// Groups: every member runs a registry actor that keeps its own actors'
// memberships. Publish goes to the registry actor of every member the
// cluster lists, which hands the message to its local members; a member
// that leaves takes its members with it. Messages from one publisher reach
// each member in order.
//
// Messages cross nodes as protobuf: actor.Frame, *actor.CloseRequest and
// the user's own protobuf messages are carried in an envelope (see
// registrypb) and delivered unwrapped. Anything else is refused with
// ErrNotSerializable.
type Cluster struct {
	c      *cluster.Cluster
	sys    *protoactor.ActorSystem
	node   *protoactor.PID
	cfg    *config
	done   chan struct{}
	claims sync.WaitGroup // re-claims under way
}

var _ Registry = (*Cluster)(nil)

// NewCluster starts the registry on this member. Call it once per member
// (its registry actor has a fixed name, so that other members can address
// it), after StartMember, with the same options on every member.
func NewCluster(c *cluster.Cluster, opts ...Option) (*Cluster, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	r := &Cluster{c: c, sys: c.ActorSystem, cfg: cfg, done: make(chan struct{})}
	n := &node{r: r, groups: map[string]map[key]*protoactor.PID{}, held: ledger{}, names: map[string]*protoactor.PID{}}
	pid, err := r.sys.Root.SpawnNamed(protoactor.PropsFromProducer(func() protoactor.Actor { return n }), nodeActor)
	if err != nil {
		return nil, fmt.Errorf("protows: starting the cluster registry: %w", err)
	}
	r.node = pid
	return r, nil
}

// Stop stops this member's registry actor: its actors' memberships go
// with it.
func (r *Cluster) Stop() {
	r.sys.Root.Stop(r.node)
	<-r.done
	r.claims.Wait()
}

func nodePID(address string) *protoactor.PID { return protoactor.NewPID(address, nodeActor) }

func timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return defaultTimeout
}

// grain sends msg to the grain of name and returns its answer.
func (r *Cluster) grain(ctx context.Context, name string, msg any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := r.c.Request(name, NameKind, msg)
	if err != nil {
		return nil, fmt.Errorf("protows: registry request for %q: %w", name, err)
	}
	return res, nil
}

// Register gives pid the name across the cluster (see [Registry]).
func (r *Cluster) Register(ctx context.Context, name string, pid *protoactor.PID) error {
	if err := validEntry("name", name, pid); err != nil {
		return err
	}
	res, err := r.grain(ctx, name, &registrypb.Claim{Name: name, Owner: pid, Replace: r.cfg.conflict.replace, Code: uint32(r.cfg.conflict.code), Reason: r.cfg.conflict.reason})
	if err != nil {
		return err
	}
	cr, ok := res.(*registrypb.ClaimResponse)
	if !ok {
		return fmt.Errorf("protows: unexpected registry answer %T", res)
	}
	if !cr.GetOk() {
		return ErrNameTaken
	}
	if pid.Address == r.sys.Address() {
		// This member re-claims it after topology changes.
		r.sys.Root.Send(r.node, &track{name: name, pid: pid})
	}
	return nil
}

// Unregister releases the name if pid holds it.
func (r *Cluster) Unregister(ctx context.Context, name string, pid *protoactor.PID) error {
	res, err := r.grain(ctx, name, &registrypb.Release{Owner: pid})
	if err != nil {
		return err
	}
	r.sys.Root.Send(r.node, &untrack{name: name, pid: pid})
	if rr, ok := res.(*registrypb.ReleaseResponse); ok && rr.GetNotOwner() {
		return ErrNotOwner
	}
	return nil
}

// Lookup returns the holder of name.
func (r *Cluster) Lookup(ctx context.Context, name string) (*protoactor.PID, error) {
	res, err := r.grain(ctx, name, &registrypb.Lookup{})
	if err != nil {
		return nil, err
	}
	lr, ok := res.(*registrypb.LookupResponse)
	if !ok || lr.GetOwner() == nil {
		return nil, ErrNotFound
	}
	return lr.GetOwner(), nil
}

// SendTo delivers msg to the holder of name, on whatever member it runs.
func (r *Cluster) SendTo(ctx context.Context, name string, msg any) error {
	env, err := wrap(msg)
	if err != nil {
		return err
	}
	res, err := r.grain(ctx, name, &registrypb.Deliver{Msg: env})
	if err != nil {
		return err
	}
	if dr, ok := res.(*registrypb.DeliverResponse); !ok || !dr.GetDelivered() {
		return ErrNotFound
	}
	return nil
}

// nodeCall asks the registry actor at address.
func (r *Cluster) nodeCall(ctx context.Context, address string, msg any) (any, error) {
	res, err := r.sys.Root.RequestFuture(nodePID(address), msg, timeout(ctx)).Result()
	if err != nil {
		return nil, fmt.Errorf("protows: registry of member %s: %w", address, err)
	}
	return res, nil
}

// Join adds pid to group; the membership is kept by the registry actor of
// pid's member.
func (r *Cluster) Join(ctx context.Context, group string, pid *protoactor.PID) error {
	if err := validEntry("group", group, pid); err != nil {
		return err
	}
	_, err := r.nodeCall(ctx, pid.Address, &registrypb.Join{Group: group, Member: pid})
	return err
}

// Leave removes pid from group.
func (r *Cluster) Leave(ctx context.Context, group string, pid *protoactor.PID) error {
	_, err := r.nodeCall(ctx, pid.Address, &registrypb.Leave{Group: group, Member: pid})
	return err
}

// Publish sends msg to every member of group on every member of the
// cluster. It does not wait for delivery.
func (r *Cluster) Publish(ctx context.Context, group string, msg any) error {
	env, err := wrap(msg)
	if err != nil {
		return err
	}
	r.sys.Root.Send(r.node, &registrypb.Forward{Publish: &registrypb.Publish{Group: group, Msg: env}})
	return nil
}

// Members returns the members of group across the cluster, asking every
// member's registry actor; members that do not answer in time are left out.
func (r *Cluster) Members(ctx context.Context, group string) ([]*protoactor.PID, error) {
	q := &addressesAsk{reply: make(chan []string, 1)}
	r.sys.Root.Send(r.node, q)
	var addresses []string
	select {
	case addresses = <-q.reply:
	case <-r.done:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	type answer struct {
		pids []*protoactor.PID
		err  error
	}
	answers := make(chan answer, len(addresses))
	for _, addr := range addresses {
		go func() {
			res, err := r.nodeCall(ctx, addr, &registrypb.MembersRequest{Group: group})
			mr, _ := res.(*registrypb.MembersResponse)
			answers <- answer{pids: mr.GetMembers(), err: err}
		}()
	}
	var pids []*protoactor.PID
	for range addresses {
		a := <-answers
		if a.err != nil {
			r.sys.Logger().Debug("registry member did not answer", slog.Any("error", a.err))
			continue
		}
		pids = append(pids, a.pids...)
	}
	return pids, nil
}

// Local messages to the node actor.
type (
	track struct {
		name string
		pid  *protoactor.PID
	}
	untrack struct {
		name string
		pid  *protoactor.PID
	}
	addressesAsk struct{ reply chan []string }
	topology     struct{ t *cluster.ClusterTopology }
	reclaim      struct{}
)

// Re-claims follow a membership change twice: proto.actor's placement
// stops moved grains on its own schedule, and a claim that reaches a grain
// just before that is lost with it.
var reclaimAfter = []time.Duration{300 * time.Millisecond, 2 * time.Second}

// node is the registry actor of one member: its actors' group memberships,
// the names they hold, and the cluster's member list.
type node struct {
	r         *Cluster
	groups    map[string]map[key]*protoactor.PID
	held      ledger
	names     map[string]*protoactor.PID
	addresses []string
	sub       *eventstreamSub
	timers    []*time.Timer // pending re-claims
}

func (n *node) Receive(ctx protoactor.Context) {
	switch m := ctx.Message().(type) {
	case *protoactor.Started:
		n.sub = subscribeTopology(ctx)
		// The members known now; later changes arrive as topology events.
		for _, m := range n.r.c.MemberList.Members().Members() {
			n.addresses = append(n.addresses, m.Address())
		}
		if len(n.addresses) == 0 {
			n.addresses = []string{ctx.ActorSystem().Address()}
		}
	case *protoactor.Stopping:
		n.sub.stop()
		for _, t := range n.timers {
			t.Stop()
		}
	case *protoactor.Stopped:
		close(n.r.done)
	case *topology:
		n.onTopology(ctx, m.t)
	case reclaim:
		n.reclaim(ctx)
	case *registrypb.Join:
		n.join(ctx, m.GetGroup(), m.GetMember())
		ctx.Respond(&registrypb.Ack{})
	case *registrypb.Leave:
		n.leave(m.GetGroup(), m.GetMember())
		ctx.Respond(&registrypb.Ack{})
	case *registrypb.Forward:
		for _, addr := range n.addresses {
			ctx.Send(nodePID(addr), m.GetPublish())
		}
	case *registrypb.Publish:
		msg := unwrap(m.GetMsg())
		n.logUnknown(ctx, msg)
		for _, pid := range n.groups[m.GetGroup()] {
			ctx.Send(pid, msg)
		}
	case *registrypb.DeliverTo:
		msg := unwrap(m.GetMsg())
		n.logUnknown(ctx, msg)
		ctx.Send(m.GetTarget(), msg)
	case *registrypb.MembersRequest:
		var pids []*protoactor.PID
		for _, pid := range n.groups[m.GetGroup()] {
			pids = append(pids, pid)
		}
		ctx.Respond(&registrypb.MembersResponse{Members: pids})
	case *track:
		n.held.of(ctx, m.pid).names[m.name] = struct{}{}
		n.names[m.name] = m.pid
	case *untrack:
		n.untrack(m.name, m.pid)
	case *registrypb.Untrack:
		n.untrack(m.GetName(), m.GetOwner())
	case *addressesAsk:
		m.reply <- append([]string(nil), n.addresses...)
	case *protoactor.Terminated:
		n.forget(m.Who)
	}
}

func (n *node) untrack(name string, pid *protoactor.PID) {
	if owner, ok := n.names[name]; ok && owner.Equal(pid) {
		delete(n.names, name)
		if h, ok := n.held[keyOf(pid)]; ok {
			delete(h.names, name)
		}
	}
}

func (n *node) logUnknown(ctx protoactor.Context, msg any) {
	if u, ok := msg.(*UnknownMessage); ok {
		ctx.Logger().Warn("protows registry: message of an unknown type; delivering UnknownMessage", slog.String("type", u.TypeURL), slog.Any("error", u.Err))
	}
}

func (n *node) onTopology(ctx protoactor.Context, t *cluster.ClusterTopology) {
	n.addresses = n.addresses[:0]
	for _, m := range t.GetMembers() {
		n.addresses = append(n.addresses, m.Address())
	}
	if len(t.GetLeft()) == 0 && len(t.GetJoined()) == 0 || len(n.names) == 0 {
		return
	}
	// Membership changed: name grains may have moved (proto.actor's
	// placement stops grains whose member changes, on joins as on leaves)
	// and lost their state. Claim this member's names again.
	for _, t := range n.timers {
		t.Stop()
	}
	n.timers = n.timers[:0]
	sys, self := ctx.ActorSystem(), ctx.Self()
	for _, d := range reclaimAfter {
		n.timers = append(n.timers, time.AfterFunc(d, func() { sys.Root.Send(self, reclaim{}) }))
	}
}

// reclaim claims this member's names, off the actor (each claim is a
// cluster request). A claim never replaces: if another actor got the name
// meanwhile, it keeps it and this member stops tracking it.
func (n *node) reclaim(ctx protoactor.Context) {
	claims := make(map[string]*protoactor.PID, len(n.names))
	for name, pid := range n.names {
		claims[name] = pid
	}
	r, self := n.r, ctx.Self()
	r.claims.Add(1)
	// Claim goroutine: one per re-claim round; it ends when its requests
	// have been answered or timed out (Cluster.Stop waits for it).
	go func() {
		defer r.claims.Done()
		for name, pid := range claims {
			res, err := r.c.Request(name, NameKind, &registrypb.Claim{Name: name, Owner: pid})
			if err != nil {
				r.sys.Logger().Warn("protows registry: re-claiming a name failed", slog.String("name", name), slog.Any("error", err))
				continue
			}
			if cr, ok := res.(*registrypb.ClaimResponse); ok && !cr.GetOk() {
				r.sys.Logger().Warn("protows registry: a name was taken by another actor while its grain moved", slog.String("name", name), slog.String("holder", cr.GetHolder().String()))
				r.sys.Root.Send(self, &untrack{name: name, pid: pid})
			}
		}
	}()
}

func (n *node) join(ctx protoactor.Context, group string, pid *protoactor.PID) {
	g, ok := n.groups[group]
	if !ok {
		g = map[key]*protoactor.PID{}
		n.groups[group] = g
	}
	g[keyOf(pid)] = pid
	n.held.of(ctx, pid).groups[group] = struct{}{}
}

func (n *node) leave(group string, pid *protoactor.PID) {
	k := keyOf(pid)
	if g, ok := n.groups[group]; ok {
		delete(g, k)
		if len(g) == 0 {
			delete(n.groups, group)
		}
	}
	if h, ok := n.held[k]; ok {
		delete(h.groups, group)
	}
}

func (n *node) forget(pid *protoactor.PID) {
	k := keyOf(pid)
	h, ok := n.held[k]
	if !ok {
		return
	}
	for g := range h.groups {
		n.leave(g, pid)
	}
	for name := range h.names {
		if owner, ok := n.names[name]; ok && owner.Equal(pid) {
			delete(n.names, name)
		}
	}
	delete(n.held, k)
}

// nameGrain holds one name: its owner's PID, watched, and cleared when the
// owner stops or its member leaves the cluster.
type nameGrain struct {
	owner *protoactor.PID
	sub   *eventstreamSub
}

// passivate stops a grain that holds no name: it has no state to keep, and
// a grain per name ever looked up would otherwise stay.
func (g *nameGrain) passivate(ctx protoactor.Context) {
	if g.owner == nil {
		ctx.Poison(ctx.Self())
	}
}

func (g *nameGrain) Receive(ctx protoactor.Context) {
	switch m := ctx.Message().(type) {
	case *protoactor.Started:
		g.sub = subscribeTopology(ctx)
	case *protoactor.Stopping:
		g.sub.stop()
	case *topology:
		if g.owner == nil {
			return
		}
		for _, left := range m.t.GetLeft() {
			if left.Address() == g.owner.Address {
				g.owner = nil
				g.passivate(ctx)
				return
			}
		}
	case *protoactor.Terminated:
		if g.owner != nil && g.owner.Equal(m.Who) {
			g.owner = nil
			g.passivate(ctx)
		}
	case *registrypb.Claim:
		ctx.Respond(g.claim(ctx, m))
	case *registrypb.Release:
		switch {
		case g.owner == nil:
			ctx.Respond(&registrypb.ReleaseResponse{})
		case !g.owner.Equal(m.GetOwner()):
			ctx.Respond(&registrypb.ReleaseResponse{NotOwner: true})
		default:
			ctx.Unwatch(g.owner)
			g.owner = nil
			ctx.Respond(&registrypb.ReleaseResponse{Released: true})
		}
		g.passivate(ctx)
	case *registrypb.Lookup:
		ctx.Respond(&registrypb.LookupResponse{Owner: g.owner})
		g.passivate(ctx)
	case *registrypb.Deliver:
		if g.owner == nil {
			ctx.Respond(&registrypb.DeliverResponse{})
			g.passivate(ctx)
			return
		}
		ctx.Send(nodePID(g.owner.Address), &registrypb.DeliverTo{Target: g.owner, Msg: m.GetMsg()})
		ctx.Respond(&registrypb.DeliverResponse{Delivered: true})
	}
}

func (g *nameGrain) claim(ctx protoactor.Context, m *registrypb.Claim) *registrypb.ClaimResponse {
	newOwner := m.GetOwner()
	if g.owner != nil && !g.owner.Equal(newOwner) {
		if !m.GetReplace() {
			return &registrypb.ClaimResponse{Holder: g.owner}
		}
		old := g.owner
		ctx.Unwatch(old)
		env := &registrypb.Envelope{Body: &registrypb.Envelope_Close{Close: &registrypb.CloseRequest{Code: m.GetCode(), Reason: m.GetReason()}}}
		ctx.Send(nodePID(old.Address), &registrypb.Untrack{Name: m.GetName(), Owner: old})
		ctx.Send(nodePID(old.Address), &registrypb.DeliverTo{Target: old, Msg: env})
	}
	if g.owner == nil || !g.owner.Equal(newOwner) {
		g.owner = newOwner
		ctx.Watch(newOwner)
	}
	return &registrypb.ClaimResponse{Ok: true}
}
