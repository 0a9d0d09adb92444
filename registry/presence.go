package registry

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/actorhook"
)

// MaxMetaSize is the largest meta of a tracked membership, in bytes.
// Presence is copied to every member of a cluster: keep metas small.
const MaxMetaSize = 4096

// DefaultPresenceInterval is how often, at most, a presence subscriber
// receives a diff of one group (see [WithPresenceInterval]).
const DefaultPresenceInterval = 50 * time.Millisecond

// tracked is a membership with presence: its key and the entry listed.
// It is never modified: a change makes a new one.
type tracked struct {
	key string
	p   actor.Presence
}

func same(a, b *tracked) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.key == b.key && bytes.Equal(a.p.Meta, b.p.Meta)
}

func validTrack(group, key string, pid *protoactor.PID, meta []byte) error {
	if err := validEntry("group", group, pid); err != nil {
		return err
	}
	if err := validName("presence key", key); err != nil {
		return err
	}
	if len(meta) > MaxMetaSize {
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrMetaTooLarge, len(meta), MaxMetaSize)
	}
	return nil
}

// newTracked copies meta: the caller may reuse its slice.
func newTracked(key string, pid *protoactor.PID, meta []byte) *tracked {
	var m []byte
	if len(meta) > 0 {
		m = bytes.Clone(meta)
	}
	return &tracked{key: key, p: actor.Presence{PID: pid, Meta: m}}
}

// presences are the tracked memberships of groups: group -> PID -> entry.
type presences map[string]map[key]*tracked

// set records t (nil: none) for pid in group and returns what was there.
func (ps presences) set(group string, k key, t *tracked) (before *tracked) {
	g := ps[group]
	before = g[k]
	switch {
	case t != nil && g == nil:
		ps[group] = map[key]*tracked{k: t}
	case t != nil:
		g[k] = t
	case before != nil:
		delete(g, k)
		if len(g) == 0 {
			delete(ps, group)
		}
	}
	return before
}

// list returns group's presence, key -> entries in PID order, in maps and
// slices of its own.
func (ps presences) list(group string) map[string][]actor.Presence {
	out := make(map[string][]actor.Presence, len(ps[group]))
	for _, t := range ps[group] {
		out[t.key] = append(out[t.key], t.p)
	}
	for _, l := range out {
		sortPresences(l)
	}
	return out
}

// change is an entry's change since the last diff: what it is now
// (after), and what it was (before) when each batch of subscribers last
// heard of it. A batch is the subscribers that subscribed between two
// changes: those that came later hold later changes in their state.
type change struct {
	after *tracked
	since []since // in batch order
}

type since struct {
	batch  int
	before *tracked
}

// before returns what subscribers of batch last heard of the entry, and
// whether it changed since.
func (c *change) before(batch int) (*tracked, bool) {
	for _, s := range c.since {
		if s.batch >= batch {
			return s.before, true
		}
	}
	return nil, false
}

// groupPresence is a group's subscribers and the changes not yet sent.
type groupPresence struct {
	subs    map[key]subscriber
	batch   int // the batch of changes being recorded
	pending map[key]*change
	last    time.Time // when the last diff was sent
}

type subscriber struct {
	pid   *protoactor.PID
	batch int // the first batch of changes it has not heard of
}

// presenceHub sends the presence of groups to the actors that subscribe to
// it: the state first, then diffs, at most one every interval per group,
// that each hold the net change of every entry since the diff before (or
// the state). It belongs to a registry actor, which tells it of every
// change to the presence it keeps, in the order the changes are made.
type presenceHub struct {
	interval time.Duration
	list     func(group string) map[string][]actor.Presence
	groups   map[string]*groupPresence // groups with subscribers
	dirty    map[string]*groupPresence // groups with changes not yet sent
	fresh    []string                  // groups dirty since due last ran
	timer    *time.Timer               // for the earliest group due, at
	at       time.Time
	gen      uint64 // the timer's number: a tick of a timer replaced since is ignored
	stopped  bool
}

// presenceTick tells a registry actor that diffs are due.
type presenceTick struct{ gen uint64 }

func newPresenceHub(interval time.Duration, list func(string) map[string][]actor.Presence) *presenceHub {
	return &presenceHub{interval: interval, list: list, groups: map[string]*groupPresence{}, dirty: map[string]*groupPresence{}}
}

// changed records that pid's entry in group went from before to after.
func (h *presenceHub) changed(group string, k key, before, after *tracked) {
	g := h.groups[group]
	if g == nil || same(before, after) {
		return
	}
	if g.pending == nil {
		g.pending = map[key]*change{}
		h.dirty[group] = g
		h.fresh = append(h.fresh, group)
	}
	c := g.pending[k]
	if c == nil {
		c = &change{}
		g.pending[k] = c
	}
	c.after = after
	if n := len(c.since); n == 0 || c.since[n-1].batch != g.batch {
		c.since = append(c.since, since{batch: g.batch, before: before})
	}
}

// subscribe sends pid the state of group and adds it to the subscribers.
// Changes not yet sent are in the state it gets: its diffs start with the
// changes that follow, while the earlier subscribers' next diff has both.
func (h *presenceHub) subscribe(ctx protoactor.Context, group string, pid *protoactor.PID) {
	g := h.groups[group]
	if g == nil {
		g = &groupPresence{subs: map[key]subscriber{}}
		h.groups[group] = g
	}
	if _, in := g.subs[keyOf(pid)]; in {
		return
	}
	if len(g.pending) > 0 {
		g.batch++
	}
	ctx.Send(pid, &actor.PresenceState{Group: group, Members: h.list(group)})
	g.subs[keyOf(pid)] = subscriber{pid: pid, batch: g.batch}
}

// subscribeHeld subscribes pid and records it in held, the registry
// actor's ledger, so that the subscription ends when pid stops (forget).
func (h *presenceHub) subscribeHeld(ctx protoactor.Context, held ledger, group string, pid *protoactor.PID, notice *actorhook.StopNotice) {
	held.of(ctx, pid, notice).subs.add(group)
	h.subscribe(ctx, group, pid)
}

// unsubscribeHeld ends pid's subscription and its record in held.
func (h *presenceHub) unsubscribeHeld(held ledger, group string, pid *protoactor.PID) {
	if hd, ok := held[keyOf(pid)]; ok {
		hd.subs.remove(group)
	}
	h.unsubscribe(group, pid)
}

// forget ends every subscription of an actor that stopped.
func (h *presenceHub) forget(hd *holdings) {
	for _, g := range hd.subs.all() {
		h.unsubscribe(g, hd.pid)
	}
}

func (h *presenceHub) unsubscribe(group string, pid *protoactor.PID) {
	g := h.groups[group]
	if g == nil {
		return
	}
	delete(g.subs, keyOf(pid))
	if len(g.subs) == 0 {
		delete(h.groups, group)
		delete(h.dirty, group) // (and a fresh mention is skipped)
	}
}

// due sends the diffs of the groups that changed since it last ran and
// had a quiet interval before, and arranges to be told (presenceTick) when
// the others are due. Registry actors call it after every message: it
// looks only at the groups that became dirty since.
func (h *presenceHub) due(ctx protoactor.Context) {
	if h.stopped || len(h.fresh) == 0 {
		return
	}
	now := time.Now()
	for _, group := range h.fresh {
		if g := h.dirty[group]; g != nil {
			h.send(ctx, now, group, g)
		}
	}
	h.fresh = h.fresh[:0]
}

// tick is a timer's presenceTick: it sends the diffs due.
func (h *presenceHub) tick(ctx protoactor.Context, t presenceTick) {
	if h.stopped || t.gen != h.gen {
		return
	}
	h.timer = nil
	now := time.Now()
	for group, g := range h.dirty {
		h.send(ctx, now, group, g)
	}
}

// send sends group's diffs if its interval has passed, or arms the timer
// for when it does.
func (h *presenceHub) send(ctx protoactor.Context, now time.Time, group string, g *groupPresence) {
	if at := g.last.Add(h.interval); at.After(now) {
		h.arm(ctx, now, at)
		return
	}
	delete(h.dirty, group)
	// Changes that cancel out (a snapshot that swaps a member's entries
	// for the same ones) send nothing and do not start an interval.
	if h.flush(ctx, group, g) {
		g.last = now
	}
}

// arm makes sure a presenceTick comes at at or before.
func (h *presenceHub) arm(ctx protoactor.Context, now, at time.Time) {
	if h.timer != nil && !at.Before(h.at) {
		return
	}
	if h.timer != nil {
		h.timer.Stop()
	}
	h.gen++
	h.at = at
	sys, self, gen := ctx.ActorSystem(), ctx.Self(), h.gen
	h.timer = time.AfterFunc(at.Sub(now), func() { sys.Root.Send(self, presenceTick{gen}) })
}

// stop stops the timer; no diff is sent after it.
func (h *presenceHub) stop() {
	h.stopped = true
	if h.timer != nil {
		h.timer.Stop()
	}
}

// flush sends group's changes to its subscribers: one diff, shared, for
// all that subscribed before the changes, and one for each batch that
// subscribed since. It reports whether it sent any.
func (h *presenceHub) flush(ctx protoactor.Context, group string, g *groupPresence) bool {
	sent := false
	diffs := map[int]*actor.PresenceDiff{}
	for k, s := range g.subs {
		d, ok := diffs[s.batch]
		if !ok {
			d = diffSince(group, g.pending, s.batch)
			diffs[s.batch] = d
		}
		if d != nil {
			ctx.Send(s.pid, d)
			sent = true
		}
		s.batch = 0
		g.subs[k] = s
	}
	g.pending, g.batch = nil, 0
	return sent
}

// diffSince is the net change of pending since batch, or nil if none.
func diffSince(group string, pending map[key]*change, batch int) *actor.PresenceDiff {
	d := &actor.PresenceDiff{Group: group}
	add := func(m *map[string][]actor.Presence, t *tracked) {
		if *m == nil {
			*m = map[string][]actor.Presence{}
		}
		(*m)[t.key] = append((*m)[t.key], t.p)
	}
	for _, c := range pending {
		before, changed := c.before(batch)
		if !changed || same(before, c.after) {
			continue
		}
		if before != nil {
			add(&d.Leaves, before)
		}
		if c.after != nil {
			add(&d.Joins, c.after)
		}
	}
	if d.Joins == nil && d.Leaves == nil {
		return nil
	}
	for _, l := range d.Joins {
		sortPresences(l)
	}
	for _, l := range d.Leaves {
		sortPresences(l)
	}
	return d
}

// sortPresences sorts entries in PID order, address then id.
func sortPresences(ps []actor.Presence) {
	slices.SortFunc(ps, func(a, b actor.Presence) int {
		return cmp.Or(cmp.Compare(a.PID.GetAddress(), b.PID.GetAddress()), cmp.Compare(a.PID.GetId(), b.PID.GetId()))
	})
}
