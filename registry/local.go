package registry

import (
	"context"
	"sync"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/actorhook"
)

// Local is a [Registry] for one actor system. One actor holds the tables;
// it watches every actor it knows, so names and memberships are released
// when their actors stop.
type Local struct {
	sys  *protoactor.ActorSystem
	pid  *protoactor.PID
	done chan struct{}
	pres *presenceTable
}

// presenceTable is presence its registry actor writes and anyone reads.
type presenceTable struct {
	mu sync.RWMutex
	ps presences
}

func (t *presenceTable) set(group string, k key, v *tracked) *tracked {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ps.set(group, k, v)
}

func (t *presenceTable) list(group string) map[string][]actor.Presence {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.ps.list(group)
}

var _ Registry = (*Local)(nil)

// NewLocal starts a local registry in sys.
func NewLocal(sys *protoactor.ActorSystem, opts ...Option) (*Local, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	l := &Local{sys: sys, done: make(chan struct{}), pres: &presenceTable{ps: presences{}}}
	t := newTables(cfg.conflict)
	t.pres = l.pres
	t.hub = newPresenceHub(cfg.presence, l.pres.list)
	l.pid = sys.Root.SpawnPrefix(protoactor.PropsFromFunc(func(ctx protoactor.Context) {
		switch m := ctx.Message().(type) {
		case *protoactor.Stopping:
			t.hub.stop()
			return
		case *protoactor.Stopped:
			close(l.done)
			return
		case *protoactor.Terminated:
			t.forget(m.Who)
		case *request:
			m.reply <- t.handle(ctx, m)
		case presenceTick:
			t.hub.tick(ctx, m) // nothing once stopped
		}
		t.hub.due(ctx)
	}), "protows-registry")
	return l, nil
}

// Stop stops the registry; later calls return ErrStopped.
func (l *Local) Stop() {
	l.sys.Root.Stop(l.pid)
	<-l.done
}

func (l *Local) call(ctx context.Context, r *request) response {
	r.reply = make(chan response, 1)
	select {
	case <-l.done:
		return response{err: ErrStopped}
	default:
	}
	l.sys.Root.Send(l.pid, r)
	select {
	case res := <-r.reply:
		return res
	case <-l.done:
		return response{err: ErrStopped}
	case <-ctx.Done():
		return response{err: ctx.Err()}
	}
}

// Register gives pid the name (see [Registry]).
func (l *Local) Register(ctx context.Context, name string, pid *protoactor.PID) error {
	if err := validEntry("name", name, pid); err != nil {
		return err
	}
	return l.call(ctx, &request{op: opRegister, name: name, pid: pid, notice: noticeFor(ctx, pid)}).err
}

// Unregister releases the name if pid holds it.
func (l *Local) Unregister(ctx context.Context, name string, pid *protoactor.PID) error {
	return l.call(ctx, &request{op: opUnregister, name: name, pid: pid}).err
}

// Lookup returns the holder of name.
func (l *Local) Lookup(ctx context.Context, name string) (*protoactor.PID, error) {
	res := l.call(ctx, &request{op: opLookup, name: name})
	return res.pid, res.err
}

// SendTo delivers msg to the holder of name.
func (l *Local) SendTo(ctx context.Context, name string, msg any) error {
	return l.call(ctx, &request{op: opSendTo, name: name, msg: msg}).err
}

// Join adds pid to group.
func (l *Local) Join(ctx context.Context, group string, pid *protoactor.PID) error {
	if err := validEntry("group", group, pid); err != nil {
		return err
	}
	return l.call(ctx, &request{op: opJoin, name: group, pid: pid, notice: noticeFor(ctx, pid)}).err
}

// Leave removes pid from group.
func (l *Local) Leave(ctx context.Context, group string, pid *protoactor.PID) error {
	return l.call(ctx, &request{op: opLeave, name: group, pid: pid}).err
}

// Publish sends msg to every member of group.
func (l *Local) Publish(ctx context.Context, group string, msg any) error {
	return l.call(ctx, &request{op: opPublish, name: group, msg: msg}).err
}

// PublishFrom sends msg to every member of group except from.
func (l *Local) PublishFrom(ctx context.Context, group string, from *protoactor.PID, msg any) error {
	return l.call(ctx, &request{op: opPublish, name: group, pid: from, msg: msg}).err
}

// Members returns the members of group, in no particular order.
func (l *Local) Members(ctx context.Context, group string) ([]*protoactor.PID, error) {
	res := l.call(ctx, &request{op: opMembers, name: group})
	return res.pids, res.err
}

// Track adds pid to group and to its presence under key with meta (see
// [Registry]).
func (l *Local) Track(ctx context.Context, group, key string, pid *protoactor.PID, meta []byte) error {
	if err := validTrack(group, key, pid, meta); err != nil {
		return err
	}
	return l.call(ctx, &request{op: opTrack, name: group, pid: pid, notice: noticeFor(ctx, pid), tracked: newTracked(key, pid, meta)}).err
}

// Presence returns group's presence, read without a message to the
// registry actor.
func (l *Local) Presence(ctx context.Context, group string) (map[string][]actor.Presence, error) {
	select {
	case <-l.done:
		return nil, ErrStopped
	default:
	}
	return l.pres.list(group), nil
}

// SubscribePresence sends pid group's presence and then its diffs (see
// [Registry]).
func (l *Local) SubscribePresence(ctx context.Context, group string, pid *protoactor.PID) error {
	if err := validEntry("group", group, pid); err != nil {
		return err
	}
	return l.call(ctx, &request{op: opSubscribe, name: group, pid: pid, notice: noticeFor(ctx, pid)}).err
}

// UnsubscribePresence ends pid's subscription to group's presence.
func (l *Local) UnsubscribePresence(ctx context.Context, group string, pid *protoactor.PID) error {
	if err := validEntry("group", group, pid); err != nil {
		return err
	}
	return l.call(ctx, &request{op: opUnsubscribe, name: group, pid: pid}).err
}

type op uint8

const (
	opRegister op = iota
	opUnregister
	opLookup
	opSendTo
	opJoin
	opLeave
	opPublish
	opMembers
	opTrack
	opSubscribe
	opUnsubscribe
)

type request struct {
	op      op
	name    string
	pid     *protoactor.PID
	msg     any
	notice  *actorhook.StopNotice // pid's own stop notice (see ledger.of), or nil
	tracked *tracked              // opTrack's entry
	reply   chan response
}

type response struct {
	pid  *protoactor.PID
	pids []*protoactor.PID
	err  error
}

// tables are the registry's state, owned by its actor.
type tables struct {
	conflict Conflict
	names    map[string]*protoactor.PID
	groups   map[string]*group
	held     ledger
	pres     *presenceTable
	hub      *presenceHub
}

type group struct {
	members []*protoactor.PID
	index   map[key]int
}

func newTables(c Conflict) *tables {
	return &tables{conflict: c, names: map[string]*protoactor.PID{}, groups: map[string]*group{}, held: ledger{}}
}

func (t *tables) handle(ctx protoactor.Context, r *request) response {
	switch r.op {
	case opRegister:
		return response{err: t.register(ctx, r.name, r.pid, r.notice)}
	case opUnregister:
		if owner, ok := t.names[r.name]; ok {
			if !owner.Equal(r.pid) {
				return response{err: ErrNotOwner}
			}
			t.release(r.name)
		}
		return response{}
	case opLookup:
		if owner, ok := t.names[r.name]; ok {
			return response{pid: owner}
		}
		return response{err: notFound(r.name)}
	case opSendTo:
		owner, ok := t.names[r.name]
		if !ok {
			return response{err: notFound(r.name)}
		}
		ctx.Send(owner, r.msg)
		return response{}
	case opJoin:
		t.join(ctx, r.name, r.pid, r.notice)
		return response{}
	case opLeave:
		t.leave(r.name, r.pid)
		return response{}
	case opPublish:
		if g, ok := t.groups[r.name]; ok {
			msg := shared(r.msg, len(g.members), r.pid != nil)
			for _, pid := range g.members {
				if r.pid == nil || keyOf(pid) != keyOf(r.pid) { // r.pid: PublishFrom's sender
					ctx.Send(pid, msg)
				}
			}
		}
		return response{}
	case opMembers:
		var pids []*protoactor.PID
		if g, ok := t.groups[r.name]; ok {
			pids = append(pids, g.members...)
		}
		return response{pids: pids}
	case opTrack:
		t.join(ctx, r.name, r.pid, r.notice)
		t.setPresence(r.name, r.pid, r.tracked)
	case opSubscribe:
		t.hub.subscribeHeld(ctx, t.held, r.name, r.pid, r.notice)
	case opUnsubscribe:
		t.hub.unsubscribeHeld(t.held, r.name, r.pid)
	}
	return response{}
}

func (t *tables) register(ctx protoactor.Context, name string, pid *protoactor.PID, notice *actorhook.StopNotice) error {
	if owner, ok := t.names[name]; ok {
		if owner.Equal(pid) {
			return nil
		}
		if !t.conflict.replace {
			return ErrNameTaken
		}
		t.release(name)
		ctx.Send(owner, &actor.CloseRequest{Code: t.conflict.code, Reason: t.conflict.reason})
	}
	t.names[name] = pid
	t.held.of(ctx, pid, notice).names.add(name)
	return nil
}

func (t *tables) release(name string) {
	owner := t.names[name]
	delete(t.names, name)
	if h, ok := t.held[keyOf(owner)]; ok {
		h.names.remove(name)
	}
}

func (t *tables) join(ctx protoactor.Context, name string, pid *protoactor.PID, notice *actorhook.StopNotice) {
	g, ok := t.groups[name]
	if !ok {
		g = &group{index: map[key]int{}}
		t.groups[name] = g
	}
	k := keyOf(pid)
	if _, in := g.index[k]; in {
		return
	}
	g.index[k] = len(g.members)
	g.members = append(g.members, pid)
	t.held.of(ctx, pid, notice).groups.add(name)
}

func (t *tables) leave(name string, pid *protoactor.PID) {
	g, ok := t.groups[name]
	if !ok {
		return
	}
	k := keyOf(pid)
	i, in := g.index[k]
	if !in {
		return
	}
	last := len(g.members) - 1
	g.members[i] = g.members[last]
	g.index[keyOf(g.members[i])] = i
	g.members[last] = nil
	g.members = g.members[:last]
	delete(g.index, k)
	if len(g.members) == 0 {
		delete(t.groups, name)
	}
	if h, ok := t.held[k]; ok {
		h.groups.remove(name)
	}
	t.setPresence(name, pid, nil)
}

// setPresence records pid's presence in group (nil: none) and tells the
// subscribers.
func (t *tables) setPresence(group string, pid *protoactor.PID, v *tracked) {
	before := t.pres.set(group, keyOf(pid), v)
	t.hub.changed(group, keyOf(pid), before, v)
}

// forget releases everything a stopped actor held.
func (t *tables) forget(pid *protoactor.PID) {
	k := keyOf(pid)
	h, ok := t.held[k]
	if !ok {
		return
	}
	for _, name := range h.names.all() {
		if owner, ok := t.names[name]; ok && owner.Equal(pid) {
			delete(t.names, name)
		}
	}
	for _, g := range h.groups.all() {
		t.leave(g, pid)
	}
	t.hub.forget(h)
	delete(t.held, k)
}

// shared prepares a frame sent to more than one of n connections
// (actor.Prepare), so that it is framed, and compressed, once for all of
// them rather than once per connection. excluding says that one of them,
// a PublishFrom's sender, which is nearly always a member of the group,
// is left out. Other messages are returned as they are.
func shared(msg any, n int, excluding bool) any {
	if excluding {
		n--
	}
	if f, ok := msg.(actor.Frame); ok && n > 1 {
		return actor.Prepare(f)
	}
	return msg
}
