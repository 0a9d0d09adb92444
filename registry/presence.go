package registry

import (
	"bytes"
	"fmt"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
)

// MaxMetaSize is the largest meta of a tracked membership, in bytes.
// Presence is copied to every member of a cluster: keep metas small.
const MaxMetaSize = 4096

// DefaultPresenceInterval is how often, at most, a presence subscriber
// receives a diff (see [WithPresenceInterval]).
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
		actor.SortPresences(l)
	}
	return out
}

// change is an entry's net change since the last diff: what subscribers
// last heard of (before) and what it is now (after).
type change struct{ before, after *tracked }

// presenceHub sends the presence of groups to the actors that subscribe to
// it: the state first, then diffs, at most one every interval, that each
// hold the net change of every entry since the diff before. It belongs to
// a registry actor, which tells it of every change to the presence it
// keeps, in the order the changes are made.
type presenceHub struct {
	interval time.Duration
	list     func(group string) map[string][]actor.Presence
	subs     map[string]map[key]*protoactor.PID // group -> subscribers
	pending  map[string]map[key]*change         // groups with subscribers only
	last     time.Time                          // the last flush
	timer    *time.Timer
}

// presenceTick tells a registry actor that diffs are due.
type presenceTick struct{}

func newPresenceHub(interval time.Duration, list func(string) map[string][]actor.Presence) *presenceHub {
	return &presenceHub{interval: interval, list: list, subs: map[string]map[key]*protoactor.PID{}, pending: map[string]map[key]*change{}}
}

// changed records that pid's entry in group went from before to after.
func (h *presenceHub) changed(group string, k key, before, after *tracked) {
	if h.subs[group] == nil || same(before, after) {
		return
	}
	g := h.pending[group]
	if g == nil {
		g = map[key]*change{}
		h.pending[group] = g
	}
	if c, ok := g[k]; ok {
		c.after = after
		return
	}
	g[k] = &change{before: before, after: after}
}

// subscribe sends pid the state of group and adds it to the subscribers.
// Changes batched for the group go first to the earlier subscribers: the
// state holds them, and the next diff holds what follows.
func (h *presenceHub) subscribe(ctx protoactor.Context, group string, pid *protoactor.PID) {
	subs := h.subs[group]
	if _, in := subs[keyOf(pid)]; in {
		return
	}
	h.flushGroup(ctx, group)
	ctx.Send(pid, &actor.PresenceState{Group: group, Members: h.list(group)})
	if subs == nil {
		subs = map[key]*protoactor.PID{}
		h.subs[group] = subs
	}
	subs[keyOf(pid)] = pid
}

func (h *presenceHub) unsubscribe(group string, pid *protoactor.PID) {
	subs := h.subs[group]
	delete(subs, keyOf(pid))
	if len(subs) == 0 {
		delete(h.subs, group)
		delete(h.pending, group)
	}
}

// due sends the diffs batched, when the last were sent at least an
// interval ago, or arranges to be told (presenceTick) when they are due.
// Registry actors call it after every message.
func (h *presenceHub) due(ctx protoactor.Context) {
	if len(h.pending) == 0 || h.timer != nil {
		return
	}
	if wait := h.interval - time.Since(h.last); wait > 0 {
		sys, self := ctx.ActorSystem(), ctx.Self()
		h.timer = time.AfterFunc(wait, func() { sys.Root.Send(self, presenceTick{}) })
		return
	}
	h.last = time.Now()
	for group := range h.pending {
		h.flushGroup(ctx, group)
	}
}

// tick is the timer's presenceTick.
func (h *presenceHub) tick(ctx protoactor.Context) {
	h.timer = nil
	h.due(ctx)
}

func (h *presenceHub) stop() {
	if h.timer != nil {
		h.timer.Stop()
	}
}

// flushGroup sends group's batched changes to its subscribers, as one
// diff shared by all.
func (h *presenceHub) flushGroup(ctx protoactor.Context, group string) {
	pending := h.pending[group]
	if len(pending) == 0 {
		return
	}
	delete(h.pending, group)
	d := &actor.PresenceDiff{Group: group}
	add := func(m *map[string][]actor.Presence, t *tracked) {
		if *m == nil {
			*m = map[string][]actor.Presence{}
		}
		(*m)[t.key] = append((*m)[t.key], t.p)
	}
	for _, c := range pending {
		if same(c.before, c.after) {
			continue
		}
		if c.before != nil {
			add(&d.Leaves, c.before)
		}
		if c.after != nil {
			add(&d.Joins, c.after)
		}
	}
	if d.Joins == nil && d.Leaves == nil {
		return
	}
	for _, l := range d.Joins {
		actor.SortPresences(l)
	}
	for _, l := range d.Leaves {
		actor.SortPresences(l)
	}
	for _, pid := range h.subs[group] {
		ctx.Send(pid, d)
	}
}
