package registry_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry"
)

// watcher is an actor that subscribes to a group's presence and keeps it
// as a subscriber would, strictly: a diff before the state, a second
// state, a join of an entry it already holds (unless the same diff has it
// leave), or a leave of an entry it does not hold, is recorded as a
// fault. It also records, per PID, the metas it saw join, in order.
type watcher struct {
	pid *protoactor.PID

	mu     sync.Mutex
	state  map[string]map[string]string // key -> PID -> meta
	got    bool                         // the state arrived
	diffs  int
	faults []string
	metas  map[string][]string // PID -> metas joined, in order
}

func newWatcher(t testing.TB, sys *protoactor.ActorSystem) *watcher {
	w := &watcher{metas: map[string][]string{}}
	w.pid = sys.Root.Spawn(protoactor.PropsFromFunc(w.receive))
	t.Cleanup(func() { _ = sys.Root.StopFuture(w.pid).Wait() })
	return w
}

func pidString(p *protoactor.PID) string { return p.GetAddress() + "/" + p.GetId() }

func (w *watcher) receive(ctx protoactor.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch m := ctx.Message().(type) {
	case *actor.PresenceState:
		if w.got {
			w.faults = append(w.faults, "a second state")
		}
		w.got = true
		w.state = map[string]map[string]string{}
		for key, ps := range m.Members {
			w.state[key] = map[string]string{}
			for _, p := range ps {
				w.state[key][pidString(p.PID)] = string(p.Meta)
			}
		}
	case *actor.PresenceDiff:
		if !w.got {
			w.faults = append(w.faults, "a diff before the state")
			return
		}
		w.diffs++
		leaving := map[string]bool{}
		for key, ps := range m.Leaves {
			for _, p := range ps {
				id := pidString(p.PID)
				leaving[id] = true
				if meta, ok := w.state[key][id]; !ok || meta != string(p.Meta) {
					w.faults = append(w.faults, fmt.Sprintf("leave of %s %s %q, not held (held: %q, %v)", key, id, p.Meta, meta, ok))
				}
				delete(w.state[key], id)
				if len(w.state[key]) == 0 {
					delete(w.state, key)
				}
			}
		}
		for key, ps := range m.Joins {
			for _, p := range ps {
				id := pidString(p.PID)
				if _, ok := w.state[key][id]; ok {
					w.faults = append(w.faults, fmt.Sprintf("join of %s %s, already held", key, id))
				}
				for k, entries := range w.state {
					if _, ok := entries[id]; ok && !leaving[id] {
						w.faults = append(w.faults, fmt.Sprintf("join of %s %s, already held under %s", key, id, k))
					}
				}
				if w.state[key] == nil {
					w.state[key] = map[string]string{}
				}
				w.state[key][id] = string(p.Meta)
				w.metas[id] = append(w.metas[id], string(p.Meta))
			}
		}
	}
}

// view returns the state as key -> sorted "PID=meta" entries.
func (w *watcher) view() map[string][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]string{}
	for key, entries := range w.state {
		for id, meta := range entries {
			out[key] = append(out[key], id+"="+meta)
		}
		slices.Sort(out[key])
	}
	return out
}

func (w *watcher) check(t testing.TB) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	assert.Empty(t, w.faults, "presence stream faults")
}

// expect waits until w holds want.
func (w *watcher) expect(t testing.TB, want map[string][]string, what string) {
	t.Helper()
	for _, l := range want {
		slices.Sort(l)
	}
	require.Eventually(t, func() bool { return maps.EqualFunc(w.view(), want, slices.Equal) }, wait, time.Millisecond,
		"%s: the subscriber holds %v, want %v", what, w.view(), want)
	w.check(t)
}

func entry(p *protoactor.PID, meta string) string { return pidString(p) + "=" + meta }

func idle(sys *protoactor.ActorSystem) *protoactor.PID {
	return sys.Root.Spawn(protoactor.PropsFromFunc(func(protoactor.Context) {}))
}

// listing is Presence's answer as key -> sorted "PID=meta" entries.
func listing(t testing.TB, r registry.Registry, group string) map[string][]string {
	t.Helper()
	ps, err := r.Presence(context.Background(), group)
	require.NoError(t, err)
	out := map[string][]string{}
	for key, l := range ps {
		for _, p := range l {
			out[key] = append(out[key], entry(p.PID, string(p.Meta)))
		}
		assert.True(t, slices.IsSortedFunc(l, func(a, b actor.Presence) int { return strings.Compare(pidString(a.PID), pidString(b.PID)) }),
			"the entries of %q are not in PID order", key)
	}
	return out
}

// On one node: a subscriber gets the state, then joins, meta updates (a
// leave of the old meta and a join of the new), leaves, and the leaves
// of an actor that stops; Presence lists the same; a late subscriber gets
// the state as it is.
func TestLocalPresence(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys)
	ctx := context.Background()
	a1, a2, b := idle(sys), idle(sys), idle(sys)

	w := newWatcher(t, sys)
	require.NoError(t, r.SubscribePresence(ctx, "room", w.pid))
	w.expect(t, map[string][]string{}, "empty room")

	require.NoError(t, r.Track(ctx, "room", "alice", a1, []byte(`{"tab":1}`)))
	require.NoError(t, r.Track(ctx, "room", "alice", a2, []byte(`{"tab":2}`)))
	require.NoError(t, r.Track(ctx, "room", "bob", b, nil))
	want := map[string][]string{"alice": {entry(a1, `{"tab":1}`), entry(a2, `{"tab":2}`)}, "bob": {entry(b, "")}}
	w.expect(t, want, "three joins")
	assert.Equal(t, want, listing(t, r, "room"))

	// A tracked member is a member: it receives what the group is sent.
	members, err := r.Members(ctx, "room")
	require.NoError(t, err)
	assert.Len(t, members, 3)

	// Tracking again changes the meta.
	require.NoError(t, r.Track(ctx, "room", "alice", a1, []byte(`{"tab":1,"away":true}`)))
	want["alice"] = []string{entry(a1, `{"tab":1,"away":true}`), entry(a2, `{"tab":2}`)}
	w.expect(t, want, "meta update")

	// Join does not take a tracked member out of the presence; Leave does.
	require.NoError(t, r.Join(ctx, "room", b))
	require.NoError(t, r.Leave(ctx, "room", b))
	delete(want, "bob")
	w.expect(t, want, "bob left")

	// An actor that stops leaves.
	require.NoError(t, sys.Root.StopFuture(a2).Wait())
	want["alice"] = []string{entry(a1, `{"tab":1,"away":true}`)}
	w.expect(t, want, "a2 stopped")
	assert.Equal(t, want, listing(t, r, "room"))

	// A late subscriber starts from the state; plain members are not in it.
	require.NoError(t, r.Join(ctx, "room", b))
	late := newWatcher(t, sys)
	require.NoError(t, r.SubscribePresence(ctx, "room", late.pid))
	late.expect(t, want, "late subscriber")
	// Subscribing again sends nothing more.
	require.NoError(t, r.SubscribePresence(ctx, "room", late.pid))
	require.NoError(t, r.Track(ctx, "room", "carol", b, []byte("c")))
	want["carol"] = []string{entry(b, "c")}
	late.expect(t, want, "carol, late subscriber")
	w.expect(t, want, "carol")

	// Other groups are their own.
	assert.Empty(t, listing(t, r, "elsewhere"))
}

// A subscriber that unsubscribes, or stops, receives no more; the others
// carry on.
func TestPresenceUnsubscribe(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys)
	ctx := context.Background()
	gone, stays := newInbox(t, sys), newWatcher(t, sys)
	require.NoError(t, r.SubscribePresence(ctx, "room", gone.pid))
	require.NoError(t, r.SubscribePresence(ctx, "room", stays.pid))
	require.IsType(t, &actor.PresenceState{}, gone.next(t))
	require.NoError(t, r.UnsubscribePresence(ctx, "room", gone.pid))
	a := idle(sys)
	require.NoError(t, r.Track(ctx, "room", "alice", a, nil))
	stays.expect(t, map[string][]string{"alice": {entry(a, "")}}, "after the unsubscribe")
	// Subscribing again starts over with the state, which holds alice:
	// nothing was sent in between.
	require.NoError(t, r.SubscribePresence(ctx, "room", gone.pid))
	st, ok := gone.next(t).(*actor.PresenceState)
	require.True(t, ok, "the first message after subscribing again is the state")
	assert.Len(t, st.Members["alice"], 1)

	// A subscriber that stops is dropped by the registry: the others are
	// still served.
	gone.stop(t, sys)
	require.NoError(t, r.Leave(ctx, "room", a))
	stays.expect(t, map[string][]string{}, "after a subscriber stopped")
}

// Changes within one presence interval reach subscribers as one diff with
// each entry's net change: an entry that joins and leaves in it is not
// in it at all.
func TestPresenceBatches(t *testing.T) {
	sys := newSystem(t)
	// A long interval: everything after the first change falls in one batch
	// however loaded the machine is.
	r := newLocal(t, sys, registry.WithPresenceInterval(2*time.Second))
	ctx := context.Background()
	in := newInbox(t, sys)
	require.NoError(t, r.SubscribePresence(ctx, "room", in.pid))
	require.IsType(t, &actor.PresenceState{}, in.next(t))
	a, b, c := idle(sys), idle(sys), idle(sys)

	start := time.Now()
	require.NoError(t, r.Track(ctx, "room", "a", a, []byte("1")))
	d := in.next(t).(*actor.PresenceDiff)
	assert.Less(t, time.Since(start), time.Second, "a change after a quiet interval goes at once")
	assert.Equal(t, map[string][]actor.Presence{"a": {{PID: a, Meta: []byte("1")}}}, d.Joins)
	assert.Empty(t, d.Leaves)

	require.NoError(t, r.Track(ctx, "room", "b", b, nil))
	require.NoError(t, r.Track(ctx, "room", "c", c, nil))
	require.NoError(t, r.Leave(ctx, "room", b))
	require.NoError(t, r.Track(ctx, "room", "a", a, []byte("2")))
	require.NoError(t, r.Track(ctx, "room", "a", a, []byte("3")))
	d = in.next(t).(*actor.PresenceDiff)
	assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "at most one diff per interval")
	assert.Equal(t, "room", d.Group)
	assert.Equal(t, map[string][]actor.Presence{"a": {{PID: a, Meta: []byte("3")}}, "c": {{PID: c}}}, d.Joins)
	assert.Equal(t, map[string][]actor.Presence{"a": {{PID: a, Meta: []byte("1")}}}, d.Leaves)

	// A change undone within the interval sends nothing: the next diff
	// holds only what follows.
	require.NoError(t, r.Track(ctx, "room", "a", a, []byte("4")))
	require.NoError(t, r.Track(ctx, "room", "a", a, []byte("3")))
	require.NoError(t, r.Leave(ctx, "room", c))
	d = in.next(t).(*actor.PresenceDiff)
	assert.Empty(t, d.Joins)
	assert.Equal(t, map[string][]actor.Presence{"c": {{PID: c}}}, d.Leaves)
}

// Diff.Apply keeps a copy of the state and tells the keys that appeared
// and disappeared, as a chat needs for "joined" and "left".
func TestPresenceDiffApply(t *testing.T) {
	p := func(id, meta string) actor.Presence {
		return actor.Presence{PID: protoactor.NewPID("n", id), Meta: []byte(meta)}
	}
	shared := map[string][]actor.Presence{"alice": {p("1", "x")}, "bob": {p("2", "")}}
	state := maps.Clone(shared)
	appeared, gone := (&actor.PresenceDiff{
		Joins:  map[string][]actor.Presence{"alice": {p("3", "y"), p("1", "x2")}, "carol": {p("4", "")}},
		Leaves: map[string][]actor.Presence{"alice": {p("1", "x")}, "bob": {p("2", "")}},
	}).Apply(state)
	assert.Equal(t, []string{"carol"}, appeared)
	assert.Equal(t, []string{"bob"}, gone)
	assert.Equal(t, map[string][]actor.Presence{"alice": {p("1", "x2"), p("3", "y")}, "carol": {p("4", "")}}, state)
	assert.Equal(t, []actor.Presence{p("1", "x")}, shared["alice"], "Apply modified a shared entry slice")
}

// Bad arguments are refused with a clear error, and change nothing.
func TestTrackInvalid(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys)
	ctx := context.Background()
	a := idle(sys)
	assert.ErrorIs(t, r.Track(ctx, "room", "", a, nil), registry.ErrInvalidName)
	assert.ErrorIs(t, r.Track(ctx, "", "alice", a, nil), registry.ErrInvalidName)
	assert.ErrorIs(t, r.Track(ctx, "room", strings.Repeat("k", registry.MaxNameLen+1), a, nil), registry.ErrInvalidName)
	assert.ErrorIs(t, r.Track(ctx, "room", "alice", a, make([]byte, registry.MaxMetaSize+1)), registry.ErrMetaTooLarge)
	assert.Error(t, r.Track(ctx, "room", "alice", nil, nil))
	assert.Error(t, r.SubscribePresence(ctx, "room", nil))
	assert.Empty(t, listing(t, r, "room"))
	require.NoError(t, r.Track(ctx, "room", "alice", a, make([]byte, registry.MaxMetaSize)))
	_, err := registry.NewLocal(sys, registry.WithPresenceInterval(0))
	assert.Error(t, err)
}

// The meta is copied: the caller may reuse its buffer.
func TestTrackCopiesMeta(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys)
	a := idle(sys)
	meta := []byte("first")
	require.NoError(t, r.Track(context.Background(), "room", "alice", a, meta))
	copy(meta, "XXXXX")
	assert.Equal(t, map[string][]string{"alice": {entry(a, "first")}}, listing(t, r, "room"))
}

// Three members: subscribers on each see every member's joins, meta
// updates and leaves, one key held on two members, the entries of an
// actor that stops, and the entries of a member that dies (as leaves,
// when the cluster drops it); a subscriber that comes late, while changes
// flow, gets the state and then every change once, in the order each
// member made them.
func TestClusterPresence(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	agent := test.NewInMemAgent()
	a := startMember(t, test.NewTestProvider(agent))
	b := startMember(t, test.NewTestProvider(agent))
	c := startMember(t, test.NewTestProvider(agent))
	ctx := context.Background()
	ms := []*member{a, b, c}
	watchers := make([]*watcher, len(ms))
	for i, m := range ms {
		watchers[i] = newWatcher(t, m.sys)
		require.NoError(t, m.reg.SubscribePresence(ctx, "room", watchers[i].pid))
	}
	expectAll := func(want map[string][]string, what string) {
		t.Helper()
		for i, w := range watchers {
			if w != nil {
				w.expect(t, want, what+" on member "+strconv.Itoa(i))
			}
		}
	}
	expectAll(map[string][]string{}, "empty")

	alice1, alice2, bob, carol := idle(a.sys), idle(b.sys), idle(b.sys), idle(c.sys)
	require.NoError(t, a.reg.Track(ctx, "room", "alice", alice1, []byte("on a")))
	require.NoError(t, b.reg.Track(ctx, "room", "alice", alice2, []byte("on b")))
	require.NoError(t, b.reg.Track(ctx, "room", "bob", bob, nil))
	require.NoError(t, c.reg.Track(ctx, "room", "carol", carol, []byte("c")))
	want := map[string][]string{
		"alice": {entry(alice1, "on a"), entry(alice2, "on b")},
		"bob":   {entry(bob, "")},
		"carol": {entry(carol, "c")},
	}
	expectAll(want, "joins")
	for _, m := range ms {
		assert.Equal(t, want, listing(t, m.reg, "room"), "Presence on %s", m.sys.Address())
	}
	// Only a member's own actors are tracked there.
	assert.ErrorIs(t, a.reg.Track(ctx, "room", "x", bob, nil), registry.ErrNotLocal)
	assert.ErrorIs(t, a.reg.SubscribePresence(ctx, "room", bob), registry.ErrNotLocal)

	require.NoError(t, c.reg.Track(ctx, "room", "carol", carol, []byte("away")))
	want["carol"] = []string{entry(carol, "away")}
	expectAll(want, "meta update")

	require.NoError(t, c.reg.Leave(ctx, "room", carol))
	delete(want, "carol")
	expectAll(want, "carol left")
	require.NoError(t, a.sys.Root.StopFuture(alice1).Wait())
	want["alice"] = []string{entry(alice2, "on b")}
	expectAll(want, "alice's actor on a stopped")

	// A late subscriber on C while A makes a numbered run of changes: a
	// new key tracked every step, and one actor's meta counting up.
	counter := idle(a.sys)
	const steps = 400
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		for i := 1; i <= steps; i++ {
			if i == steps/4 {
				close(started)
			}
			if err := a.reg.Track(ctx, "room", "counter", counter, []byte(strconv.Itoa(i))); err != nil {
				done <- err
				return
			}
			if err := a.reg.Track(ctx, "room", "k"+strconv.Itoa(i), idle(a.sys), nil); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	<-started
	late := newWatcher(t, c.sys)
	require.NoError(t, c.reg.SubscribePresence(ctx, "room", late.pid))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("the run of changes did not finish")
	}
	require.Eventually(t, func() bool {
		v := late.view()
		return len(v["counter"]) == 1 && v["counter"][0] == entry(counter, strconv.Itoa(steps)) && len(v) == len(want)+1+steps
	}, wait, time.Millisecond, "the late subscriber did not reach the end of the run")
	for _, w := range append(watchers, late) {
		require.Eventually(t, func() bool { return len(w.view()) == len(want)+1+steps }, wait, time.Millisecond)
		w.check(t)
		w.mu.Lock()
		seen := w.metas[pidString(counter)]
		w.mu.Unlock()
		nums := make([]int, len(seen))
		for i, s := range seen {
			nums[i], _ = strconv.Atoi(s)
		}
		assert.True(t, slices.IsSorted(nums), "the counter's metas arrived out of order: %v", nums)
		assert.NotEmpty(t, nums)
		assert.Equal(t, steps, nums[len(nums)-1])
	}

	// B dies without a word (its registry sends nothing); when the cluster
	// drops it, its entries leave on A and C.
	bAddr := b.sys.Address()
	b.c.Remote.Shutdown(false) // the rest of B is shut down by its cleanup
	start := time.Now()
	agent.DeregisterService(b.sys.ID)
	watchers[1] = nil
	require.Eventually(t, func() bool {
		for _, w := range []*watcher{watchers[0], watchers[2], late} {
			for _, entries := range w.view() {
				for _, e := range entries {
					if strings.HasPrefix(e, bAddr+"/") {
						return false
					}
				}
			}
		}
		return true
	}, wait, time.Millisecond, "B's entries did not leave")
	t.Logf("B's entries left A's and C's subscribers %v after the provider dropped B", time.Since(start).Round(time.Millisecond))
	for _, w := range []*watcher{watchers[0], watchers[2], late} {
		v := w.view()
		assert.NotContains(t, v, "bob")
		assert.NotContains(t, v, "alice")
		w.check(t)
	}
	assert.NotContains(t, listing(t, a.reg, "room"), "bob")
}

// A member that joins later receives the presence with the rest of the
// directory (its snapshot carries keys and metas); a member whose
// registry stops takes its entries with it at once, as leaves.
func TestClusterPresenceSnapshotAndStop(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	agent := test.NewInMemAgent()
	a := startMember(t, test.NewTestProvider(agent))
	ctx := context.Background()
	alice, bob := idle(a.sys), idle(a.sys)
	require.NoError(t, a.reg.Track(ctx, "room", "alice", alice, []byte(`{"x":1}`)))
	require.NoError(t, a.reg.Track(ctx, "room", "bob", bob, nil))
	require.NoError(t, a.reg.Join(ctx, "room", idle(a.sys))) // a plain member: not in the presence

	b := startMember(t, test.NewTestProvider(agent)) // waits until synced
	want := map[string][]string{"alice": {entry(alice, `{"x":1}`)}, "bob": {entry(bob, "")}}
	assert.Equal(t, want, listing(t, b.reg, "room"))
	wb := newWatcher(t, b.sys)
	require.NoError(t, b.reg.SubscribePresence(ctx, "room", wb.pid))
	wb.expect(t, want, "B's subscriber")

	carol := idle(b.sys)
	require.NoError(t, b.reg.Track(ctx, "room", "carol", carol, nil))
	want["carol"] = []string{entry(carol, "")}
	wa := newWatcher(t, a.sys)
	require.NoError(t, a.reg.SubscribePresence(ctx, "room", wa.pid))
	wa.expect(t, want, "A's subscriber")

	// B's registry stops: A drops its entries at once, not when B leaves
	// the cluster.
	b.reg.Stop()
	delete(want, "carol")
	wa.expect(t, want, "after B's registry stopped")
}

// Subscribers that come while changes are batched get those changes in
// their state, and the rest in their first diff; the earlier subscribers
// still get one diff per interval, not one per newcomer.
func TestPresenceSubscribersJoiningABatch(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys, registry.WithPresenceInterval(2*time.Second))
	ctx := context.Background()
	first := newWatcher(t, sys)
	require.NoError(t, r.SubscribePresence(ctx, "room", first.pid))
	want := map[string][]string{}
	track := func(i int) {
		pid := idle(sys)
		require.NoError(t, r.Track(ctx, "room", "k"+strconv.Itoa(i), pid, []byte{byte(i)}))
		want["k"+strconv.Itoa(i)] = []string{entry(pid, string([]byte{byte(i)}))}
	}
	track(0) // sent at once: the interval before it was quiet
	first.expect(t, map[string][]string{"k0": want["k0"]}, "the first change")

	// Within the next interval: changes, and a subscriber after each.
	var late []*watcher
	var moved *protoactor.PID
	for i := 1; i <= 30; i++ {
		track(i)
		if i == 10 {
			// One entry changes before and after some subscribers came.
			moved = idle(sys)
			require.NoError(t, r.Track(ctx, "room", "moved", moved, []byte("1")))
		}
		if i == 20 {
			require.NoError(t, r.Track(ctx, "room", "moved", moved, []byte("2")))
			want["moved"] = []string{entry(moved, "2")}
		}
		w := newWatcher(t, sys)
		require.NoError(t, r.SubscribePresence(ctx, "room", w.pid))
		late = append(late, w)
	}
	first.expect(t, want, "the first subscriber")
	for i, w := range late {
		w.expect(t, want, "subscriber "+strconv.Itoa(i+1))
		w.mu.Lock()
		assert.LessOrEqual(t, w.diffs, 1, "subscriber %d", i+1)
		w.mu.Unlock()
	}
	first.mu.Lock()
	defer first.mu.Unlock()
	assert.Equal(t, 2, first.diffs, "the first subscriber's diffs: one per interval")
	assert.Equal(t, []string{"2"}, first.metas[pidString(moved)], "a diff holds the net change")
}

// Random Tracks (with key and meta changes), Leaves, Joins, actor stops,
// in two groups paced each on its own,
// subscribes and unsubscribes, with intervals short enough that diffs
// interleave with everything: every subscriber sees no gap, duplicate, or
// leave of what it does not hold, and ends with what Presence lists.
func TestPresenceRandom(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			sys := newSystem(t)
			interval := []time.Duration{time.Nanosecond, time.Millisecond, 5 * time.Millisecond}[seed%3]
			r := newLocal(t, sys, registry.WithPresenceInterval(interval))
			ctx := context.Background()
			pids := make([]*protoactor.PID, 12)
			for i := range pids {
				pids[i] = idle(sys)
			}
			var ws []*watcher
			var wgroup []string
			live := map[int]bool{}
			groups := []string{"room", "hall"} // paced each on its own
			for range 600 {
				i := rng.IntN(len(pids))
				group := groups[rng.IntN(len(groups))]
				switch op := rng.IntN(19); {
				case op < 9:
					key := "k" + strconv.Itoa(rng.IntN(4))
					require.NoError(t, r.Track(ctx, group, key, pids[i], []byte(strconv.Itoa(rng.IntN(3)))))
				case op < 12:
					require.NoError(t, r.Leave(ctx, group, pids[i]))
				case op < 13:
					require.NoError(t, r.Join(ctx, group, pids[i]))
				case op < 14:
					require.NoError(t, sys.Root.StopFuture(pids[i]).Wait())
					pids[i] = idle(sys)
				case op < 17:
					w := newWatcher(t, sys)
					require.NoError(t, r.SubscribePresence(ctx, group, w.pid))
					ws = append(ws, w)
					wgroup = append(wgroup, group)
					live[len(ws)-1] = true
				case len(ws) > 0:
					if j := rng.IntN(len(ws)); live[j] {
						require.NoError(t, r.UnsubscribePresence(ctx, wgroup[j], ws[j].pid))
						live[j] = false
					}
				}
			}
			// (The stop of an actor reaches the registry a moment after
			// StopFuture returns: compare with the listing as it is then.)
			for j, w := range ws {
				if live[j] {
					require.Eventually(t, func() bool { return maps.EqualFunc(w.view(), listing(t, r, wgroup[j]), slices.Equal) }, wait, time.Millisecond,
						"subscriber %d holds %v, the registry lists %v", j, w.view(), listing(t, r, wgroup[j]))
				}
				w.check(t)
			}
		})
	}
}

// Diffs are paced per group: a diff of one group does not hold back the
// first change of another, quiet, group.
func TestPresencePacedPerGroup(t *testing.T) {
	sys := newSystem(t)
	const interval = 2 * time.Second
	r := newLocal(t, sys, registry.WithPresenceInterval(interval))
	ctx := context.Background()
	wa, wb := newWatcher(t, sys), newWatcher(t, sys)
	require.NoError(t, r.SubscribePresence(ctx, "a", wa.pid))
	require.NoError(t, r.SubscribePresence(ctx, "b", wb.pid))
	x, y := idle(sys), idle(sys)
	first := time.Now() // before group a's first diff
	require.NoError(t, r.Track(ctx, "a", "x", x, nil))
	wa.expect(t, map[string][]string{"x": {entry(x, "")}}, "a")
	start := time.Now()
	require.NoError(t, r.Track(ctx, "b", "y", y, nil))
	wb.expect(t, map[string][]string{"y": {entry(y, "")}}, "b")
	assert.Less(t, time.Since(start), interval/2, "group b's first change waited for group a's interval")
	// Group a's next change waits for its own interval.
	z := idle(sys)
	require.NoError(t, r.Track(ctx, "a", "z", z, nil))
	wa.expect(t, map[string][]string{"x": {entry(x, "")}, "z": {entry(z, "")}}, "a again")
	assert.GreaterOrEqual(t, time.Since(first), interval, "group a's second diff came within its interval")
}
