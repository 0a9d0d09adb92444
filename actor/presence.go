package actor

import (
	"cmp"
	"slices"

	protoactor "github.com/asynkron/protoactor-go/actor"
)

// Presence is one tracked membership of a group: the actor and the small
// value (JSON or protobuf bytes, for example) it joined with. A registry
// groups them under keys, such as user names: one key may hold several,
// one per connection, as Phoenix.Presence's metas do.
//
// The Meta of a Presence a registry hands out is shared; do not modify it.
type Presence struct {
	PID  *protoactor.PID
	Meta []byte
}

// PresenceState is the whole presence of a group, key -> entries, as a
// subscriber receives it first (see [Context.SubscribePresence]); the
// entries of a key are in PID order (address, then id). Members is the
// subscriber's own, to keep and update with [PresenceDiff.Apply]; the
// Meta bytes are shared.
type PresenceState struct {
	Group   string
	Members map[string][]Presence
}

// PresenceDiff is what changed in a group's presence since the state or
// diff before it, across the cluster: the entries that left and those that
// joined, by key. A subscriber applies Leaves, then Joins (an entry whose
// meta changed is in both: its old value leaves, its new one joins), and
// then holds exactly the group's presence. Entries are matched by PID.
// The value is shared among subscribers: read it, do not modify it.
type PresenceDiff struct {
	Group  string
	Joins  map[string][]Presence
	Leaves map[string][]Presence
}

// Apply applies the diff to state, a non-nil key -> entries map such as
// the Members of the [PresenceState] received for the same group, and
// returns the keys that appeared (had no entries and now have some) and
// those that disappeared, each sorted. The entry slices of state are
// replaced, never modified in place, and none is the diff's own (the diff
// is shared among subscribers).
func (d *PresenceDiff) Apply(state map[string][]Presence) (appeared, disappeared []string) {
	before := map[string]bool{}
	for key, ps := range d.Leaves {
		before[key] = len(state[key]) > 0
		kept := make([]Presence, 0, len(state[key]))
		for _, p := range state[key] {
			if !slices.ContainsFunc(ps, func(l Presence) bool { return samePID(l.PID, p.PID) }) {
				kept = append(kept, p)
			}
		}
		if len(kept) == 0 {
			delete(state, key)
		} else {
			state[key] = kept
		}
	}
	for key, ps := range d.Joins {
		if _, seen := before[key]; !seen {
			before[key] = len(state[key]) > 0
		}
		merged := make([]Presence, 0, len(state[key])+len(ps))
		for _, p := range state[key] {
			if !slices.ContainsFunc(ps, func(j Presence) bool { return samePID(j.PID, p.PID) }) {
				merged = append(merged, p)
			}
		}
		merged = append(merged, ps...)
		sortPresences(merged)
		state[key] = merged
	}
	for key, was := range before {
		switch now := len(state[key]) > 0; {
		case now && !was:
			appeared = append(appeared, key)
		case was && !now:
			disappeared = append(disappeared, key)
		}
	}
	slices.Sort(appeared)
	slices.Sort(disappeared)
	return appeared, disappeared
}

// sortPresences sorts entries in PID order (address, then id), the order a
// registry lists them in.
func sortPresences(ps []Presence) {
	slices.SortFunc(ps, func(a, b Presence) int {
		return cmp.Or(cmp.Compare(a.PID.GetAddress(), b.PID.GetAddress()), cmp.Compare(a.PID.GetId(), b.PID.GetId()))
	})
}

func samePID(a, b *protoactor.PID) bool {
	return a.GetAddress() == b.GetAddress() && a.GetId() == b.GetId()
}
