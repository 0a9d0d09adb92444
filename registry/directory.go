package registry

import (
	"sync"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry/registrypb"
)

// directory is a member's copy of the names and groups of the whole
// cluster. Its replica changes it under the write lock; readers take the
// read lock.
type directory struct {
	mu      sync.RWMutex
	replace bool
	names   map[string][]claim
	groups  map[string]map[string]*members // group -> address -> members
	// changed hears of every change to a membership's presence, under
	// the write lock (the replica's presence hub); nil: nobody listens.
	changed func(group string, k key, before, after *tracked)
}

// members are a group's members on one member of the cluster, by id:
// plain members (Join) in one map, tracked ones (with presence, which
// holds their PID) in the other. Each actor is in one of them, so that
// neither kind pays for the other.
type members struct {
	plain   map[string]*protoactor.PID
	tracked map[string]*tracked
}

func (m *members) len() int { return len(m.plain) + len(m.tracked) }

func (m *members) has(id string) bool {
	if _, ok := m.plain[id]; ok {
		return true
	}
	_, ok := m.tracked[id]
	return ok
}

// all appends the members' PIDs to out.
func (m *members) all(out []*protoactor.PID) []*protoactor.PID {
	for _, pid := range m.plain {
		out = append(out, pid)
	}
	for _, t := range m.tracked {
		out = append(out, t.p.PID)
	}
	return out
}

// claim is one member's claim of a name for one of its actors.
type claim struct {
	pid   *protoactor.PID
	clock uint64
}

func newDirectory(replace bool) *directory {
	return &directory{replace: replace, names: map[string][]claim{}, groups: map[string]map[string]*members{}}
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
	at := d.membersAt(group, pid.Address)
	if at.has(pid.Id) {
		return false
	}
	at.putPlain(pid)
	return true
}

// membersAt returns group's members at address, made if there are none.
func (d *directory) membersAt(group, address string) *members {
	g := d.groups[group]
	if g == nil {
		g = map[string]*members{}
		d.groups[group] = g
	}
	at := g[address]
	if at == nil {
		at = &members{}
		g[address] = at
	}
	return at
}

// putPlain makes pid a plain member; it must not be a tracked one.
func (m *members) putPlain(pid *protoactor.PID) {
	if m.plain == nil {
		m.plain = map[string]*protoactor.PID{}
	}
	m.plain[pid.Id] = pid
}

// putTracked makes t's actor a tracked member, plain no more.
func (m *members) putTracked(t *tracked) {
	id := t.p.PID.Id
	if delete(m.plain, id); len(m.plain) == 0 {
		m.plain = nil // a group of tracked members only keeps no empty map
	}
	if m.tracked == nil {
		m.tracked = map[string]*tracked{}
	}
	m.tracked[id] = t
}

// untrack removes id from the tracked members.
func (m *members) untrack(id string) {
	if delete(m.tracked, id); len(m.tracked) == 0 {
		m.tracked = nil
	}
}

// setPresenceLocked records the presence of pid, a member of group, t
// (nil: none); the caller holds the write lock. It reports whether it
// changed.
func (d *directory) setPresenceLocked(group string, pid *protoactor.PID, t *tracked) bool {
	at := d.groups[group][pid.Address]
	if at == nil || !at.has(pid.Id) {
		return false
	}
	before := at.tracked[pid.Id]
	if same(before, t) {
		return false
	}
	if t == nil {
		at.untrack(pid.Id)
		at.putPlain(before.p.PID)
	} else {
		at.putTracked(t)
	}
	if d.changed != nil {
		d.changed(group, keyOf(pid), before, t)
	}
	return true
}

// track makes pid a member of group with presence t (nil: a plain
// member, as Join makes it); it reports whether anything changed.
func (d *directory) track(group string, pid *protoactor.PID, t *tracked) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.trackLocked(group, pid, t)
}

func (d *directory) trackLocked(group string, pid *protoactor.PID, t *tracked) bool {
	if t == nil {
		// A plain membership, as an entry from another member states it:
		// a tracked member is tracked no more.
		joined := d.joinLocked(group, pid)
		return d.setPresenceLocked(group, pid, nil) || joined
	}
	if at := d.groups[group][pid.Address]; at != nil && at.has(pid.Id) {
		return d.setPresenceLocked(group, pid, t)
	}
	// A newcomer goes straight into the tracked map.
	d.membersAt(group, pid.Address).putTracked(t)
	if d.changed != nil {
		d.changed(group, keyOf(pid), nil, t)
	}
	return true
}

// tracked returns pid's presence in group, or nil.
func (d *directory) trackedOf(group string, pid *protoactor.PID) *tracked {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if at := d.groups[group][pid.Address]; at != nil {
		return at.tracked[pid.Id]
	}
	return nil
}

// presence lists group's presence, key -> entries in PID order, in maps
// and slices of its own.
func (d *directory) presence(group string) map[string][]actor.Presence {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := map[string][]actor.Presence{}
	for _, at := range d.groups[group] {
		for _, t := range at.tracked {
			out[t.key] = append(out[t.key], t.p)
		}
	}
	for _, l := range out {
		sortPresences(l)
	}
	return out
}

// leave removes pid from group; it reports whether pid was a member.
func (d *directory) leave(group string, pid *protoactor.PID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.groups[group]
	at := g[pid.Address]
	if at == nil || !at.has(pid.Id) {
		return false
	}
	if t := at.tracked[pid.Id]; t != nil {
		at.untrack(pid.Id)
		if d.changed != nil {
			d.changed(group, keyOf(pid), t, nil)
		}
	}
	delete(at.plain, pid.Id)
	if len(at.plain) == 0 {
		at.plain = nil
	}
	if at.len() == 0 {
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
		if at, ok := g[address]; ok {
			if d.changed != nil {
				for _, t := range at.tracked {
					d.changed(name, keyOf(t.p.PID), t, nil)
				}
			}
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
			d.trackLocked(e.GetKey(), pid, trackedFrom(e, pid))
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
		local = at.all(make([]*protoactor.PID, 0, at.len()))
	}
	return local, remote
}

func (d *directory) members(group string) []*protoactor.PID {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []*protoactor.PID
	for _, at := range d.groups[group] {
		out = at.all(out)
	}
	return out
}

// trackedFrom returns the presence a group entry from another member
// carries, or nil: none, or one that is not valid.
func trackedFrom(e *registrypb.Entry, pid *protoactor.PID) *tracked {
	if e.GetPresenceKey() == "" || validTrack(e.GetKey(), e.GetPresenceKey(), pid, e.GetMeta()) != nil {
		return nil
	}
	return &tracked{key: e.GetPresenceKey(), p: actor.Presence{PID: pid, Meta: e.GetMeta()}}
}
