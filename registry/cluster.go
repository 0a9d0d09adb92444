package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/proto"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/actorhook"
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

// entrySize estimates an entry's encoded size, presence included.
func entrySize(e *registrypb.Entry) int {
	return len(e.GetKey()) + len(e.GetId()) + len(e.GetPresenceKey()) + len(e.GetMeta()) + 24
}

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
// that has members of the group; Presence reads it too. Register,
// Unregister, Join, Leave, Track and SubscribePresence are answered by
// this member's registry actor without waiting for any other member. A member that hangs, dies or is cut off therefore delays no
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
// # Presence
//
// A tracked membership ([Cluster.Track]) carries its presence key and meta
// in the membership entry, so presence travels, numbered and repaired, as
// every other change does, and a member that joins receives it in its
// snapshot. Each member keeps the whole cluster's presence, and its
// registry actor, which applies every change in one order (this member's,
// and each other member's in the order that member made them), sends the
// subscribers of this member their diffs. No member is central: a member
// that dies takes only its own entries with it, delivered to the others'
// subscribers as leaves when they drop it (see Failures).
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
	return r.write(ctx, &write{op: opRegister, key: name, pid: pid, notice: noticeFor(ctx, pid)})
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
	return r.write(ctx, &write{op: opJoin, key: group, pid: pid, notice: noticeFor(ctx, pid)})
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
	return nil, notFound(name)
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
		return notFound(name)
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
	return r.publish(group, nil, msg)
}

// PublishFrom sends msg to every member of group except from, as Publish
// does, and shares its order: a caller's Publish and PublishFrom calls
// reach each member in the order they were made. from may run on any
// member.
func (r *Cluster) PublishFrom(ctx context.Context, group string, from *protoactor.PID, msg any) error {
	return r.publish(group, from, msg)
}

func (r *Cluster) publish(group string, from *protoactor.PID, msg any) error {
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
	lmsg := shared(msg, len(local), from != nil)
	for _, pid := range local {
		if from == nil || keyOf(pid) != keyOf(from) {
			r.sys.Root.Send(pid, lmsg)
		}
	}
	var errs []error
	for _, addr := range remote {
		p, n := &registrypb.Publish{Group: group, Msg: env}, size
		if from != nil && from.Address == addr {
			// Only the member from runs on can leave it out; the others
			// need not know.
			p.Except = from.Id
			n += int64(len(from.Id))
		}
		if err := r.deliver(addr, p, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Members returns the members of group, from this member's copy.
func (r *Cluster) Members(ctx context.Context, group string) ([]*protoactor.PID, error) {
	return r.dir.members(group), nil
}

// Track adds pid, an actor of this member, to group and to its presence
// under key with meta (see [Registry]). Every member has it within one
// message between members, and drops it when pid stops, leaves the group,
// or this member leaves the cluster.
func (r *Cluster) Track(ctx context.Context, group, key string, pid *protoactor.PID, meta []byte) error {
	if err := validTrack(group, key, pid, meta); err != nil {
		return err
	}
	if err := r.local(pid); err != nil {
		return err
	}
	return r.write(ctx, &write{op: opTrack, key: group, pid: pid, notice: noticeFor(ctx, pid), tracked: newTracked(key, pid, meta)})
}

// Presence returns group's presence on every member, from this member's
// copy.
func (r *Cluster) Presence(ctx context.Context, group string) (map[string][]actor.Presence, error) {
	select {
	case <-r.done:
		return nil, ErrStopped
	default:
	}
	return r.dir.presence(group), nil
}

// SubscribePresence sends pid, an actor of this member, group's presence
// on every member, then its diffs (see [Registry]). An entry of a member
// that leaves the cluster is sent as a leave when this member drops it
// (see Failures above).
func (r *Cluster) SubscribePresence(ctx context.Context, group string, pid *protoactor.PID) error {
	if err := validEntry("group", group, pid); err != nil {
		return err
	}
	if err := r.local(pid); err != nil {
		return err
	}
	return r.write(ctx, &write{op: opSubscribe, key: group, pid: pid, notice: noticeFor(ctx, pid)})
}

// UnsubscribePresence ends pid's subscription to group's presence.
func (r *Cluster) UnsubscribePresence(ctx context.Context, group string, pid *protoactor.PID) error {
	if err := validEntry("group", group, pid); err != nil {
		return err
	}
	if err := r.local(pid); err != nil {
		return err
	}
	return r.write(ctx, &write{op: opUnsubscribe, key: group, pid: pid})
}

// Messages from the Cluster's methods to its registry actor.
type (
	write struct {
		op      op
		key     string
		pid     *protoactor.PID
		notice  *actorhook.StopNotice // pid's own stop notice (see ledger.of), or nil
		tracked *tracked              // opTrack's presence
		reply   chan error
	}
	tick     struct{}
	topology struct{ t *cluster.ClusterTopology }
)
