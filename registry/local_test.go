package registry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/actorhook"
	"github.com/protows/protows/internal/leaktest"
	"github.com/protows/protows/registry"
)

func TestMain(m *testing.M) { leaktest.VerifyClusterTestMain(m) }

const wait = 5 * time.Second

func newSystem(t testing.TB) *protoactor.ActorSystem {
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	t.Cleanup(sys.Shutdown)
	return sys
}

func newLocal(t testing.TB, sys *protoactor.ActorSystem, opts ...registry.Option) *registry.Local {
	r, err := registry.NewLocal(sys, opts...)
	require.NoError(t, err)
	t.Cleanup(r.Stop)
	return r
}

// inbox is an actor that records what it receives.
type inbox struct {
	pid  *protoactor.PID
	msgs chan any
}

func newInbox(t testing.TB, sys *protoactor.ActorSystem) *inbox { return newInboxNamed(t, sys, "") }

// newInboxNamed spawns an inbox with the id name ("": one made up).
func newInboxNamed(t testing.TB, sys *protoactor.ActorSystem, name string) *inbox {
	in := &inbox{msgs: make(chan any, 10000)}
	props := protoactor.PropsFromFunc(func(ctx protoactor.Context) {
		switch ctx.Message().(type) {
		case *protoactor.Started, *protoactor.Stopping, *protoactor.Stopped:
		default:
			in.msgs <- ctx.Message()
		}
	})
	if name == "" {
		in.pid = sys.Root.Spawn(props)
	} else {
		var err error
		in.pid, err = sys.Root.SpawnNamed(props, name)
		require.NoError(t, err)
	}
	t.Cleanup(func() { _ = sys.Root.StopFuture(in.pid).Wait() })
	return in
}

func (in *inbox) next(t testing.TB) any {
	t.Helper()
	select {
	case m := <-in.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("nothing received")
	}
	return nil
}

func (in *inbox) stop(t testing.TB, sys *protoactor.ActorSystem) {
	require.NoError(t, sys.Root.StopFuture(in.pid).Wait())
}

func TestNames(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys)
	ctx := context.Background()
	alice, bob := newInbox(t, sys), newInbox(t, sys)

	require.NoError(t, r.Register(ctx, "alice", alice.pid))
	require.NoError(t, r.Register(ctx, "alice", alice.pid), "registering again is a no-op")
	assert.ErrorIs(t, r.Register(ctx, "alice", bob.pid), registry.ErrNameTaken)
	got, err := r.Lookup(ctx, "alice")
	require.NoError(t, err)
	assert.True(t, got.Equal(alice.pid))

	require.NoError(t, r.SendTo(ctx, "alice", "hi"))
	assert.Equal(t, "hi", alice.next(t))
	err = r.SendTo(ctx, "carol", "hi")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	assert.EqualError(t, err, `protows: no such name "carol"`, "the error names the name")
	_, err = r.Lookup(ctx, "carol")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	assert.Error(t, r.Register(ctx, "", alice.pid))
	assert.Error(t, r.Register(ctx, "nil", nil), "a nil PID is refused, not a crash of the registry")
	assert.Error(t, r.Join(ctx, "g", nil))

	assert.ErrorIs(t, r.Unregister(ctx, "alice", bob.pid), registry.ErrNotOwner)
	require.NoError(t, r.Unregister(ctx, "alice", alice.pid))
	require.NoError(t, r.Register(ctx, "alice", bob.pid))
}

func TestNameReleasedWhenOwnerStops(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys)
	ctx := context.Background()
	alice, bob := newInbox(t, sys), newInbox(t, sys)
	require.NoError(t, r.Register(ctx, "alice", alice.pid))
	require.NoError(t, r.Join(ctx, "lobby", alice.pid))
	alice.stop(t, sys)
	// The registry learns of the stop through its watch; a Register racing
	// it may still see the name taken, so wait for the release.
	require.Eventually(t, func() bool {
		_, err := r.Lookup(ctx, "alice")
		return err != nil
	}, wait, time.Millisecond)
	require.NoError(t, r.Register(ctx, "alice", bob.pid))
	members, err := r.Members(ctx, "lobby")
	require.NoError(t, err)
	assert.Empty(t, members)
}

func TestReplacePolicyClosesThePreviousConnection(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys, registry.WithConflict(registry.Replace(4001, "signed in elsewhere")))
	ctx := context.Background()
	old, newer := newInbox(t, sys), newInbox(t, sys)
	require.NoError(t, r.Register(ctx, "alice", old.pid))
	require.NoError(t, r.Register(ctx, "alice", newer.pid))
	assert.Equal(t, &actor.CloseRequest{Code: 4001, Reason: "signed in elsewhere"}, old.next(t))
	got, err := r.Lookup(ctx, "alice")
	require.NoError(t, err)
	assert.True(t, got.Equal(newer.pid))
	// The old owner stopping later does not release the new owner's name.
	old.stop(t, sys)
	require.NoError(t, r.SendTo(ctx, "alice", "still yours"))
	assert.Equal(t, "still yours", newer.next(t))
}

func TestBadConflictCode(t *testing.T) {
	_, err := registry.NewLocal(newSystem(t), registry.WithConflict(registry.Replace(actor.CloseAbnormal, "")))
	assert.Error(t, err)
}

func TestGroupsWithManyMembers(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys)
	ctx := context.Background()
	const n = 1000
	members := make([]*inbox, n)
	for i := range members {
		members[i] = newInbox(t, sys)
		require.NoError(t, r.Join(ctx, "all", members[i].pid))
		if i%2 == 0 {
			require.NoError(t, r.Join(ctx, "even", members[i].pid))
		}
	}
	require.NoError(t, r.Join(ctx, "all", members[0].pid), "joining twice is a no-op")
	got, err := r.Members(ctx, "all")
	require.NoError(t, err)
	assert.Len(t, got, n)
	got, err = r.Members(ctx, "even")
	require.NoError(t, err)
	assert.Len(t, got, n/2)

	require.NoError(t, r.Publish(ctx, "even", "to the even ones"))
	for i, m := range members {
		if i%2 == 0 {
			assert.Equal(t, "to the even ones", m.next(t))
		}
	}
	require.NoError(t, r.Leave(ctx, "all", members[0].pid))
	members[1].stop(t, sys)
	require.Eventually(t, func() bool {
		got, err := r.Members(ctx, "all")
		return err == nil && len(got) == n-2
	}, wait, time.Millisecond)
	got, err = r.Members(ctx, "even")
	require.NoError(t, err)
	assert.Len(t, got, n/2, "leaving one group keeps the others")
	require.NoError(t, r.Publish(ctx, "nobody", "x"), "publishing to an empty group is fine")
}

// Messages from one publisher reach each member in publishing order, also
// when several publishers publish at once.
func TestPublishOrderPerPublisher(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys)
	ctx := context.Background()
	const members, publishers, each = 20, 4, 200
	inboxes := make([]*inbox, members)
	for i := range inboxes {
		inboxes[i] = newInbox(t, sys)
		require.NoError(t, r.Join(ctx, "room", inboxes[i].pid))
	}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				assert.NoError(t, r.Publish(ctx, "room", fmt.Sprintf("%d/%d", p, i)))
			}
		}()
	}
	wg.Wait()
	for _, in := range inboxes {
		last := map[int]int{0: -1, 1: -1, 2: -1, 3: -1}
		for range publishers * each {
			var p, i int
			_, err := fmt.Sscanf(in.next(t).(string), "%d/%d", &p, &i)
			require.NoError(t, err)
			require.Equal(t, last[p]+1, i, "publisher %d out of order", p)
			last[p] = i
		}
	}
}

func TestActorInManyGroups(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys)
	ctx := context.Background()
	in := newInbox(t, sys)
	groups := []string{"a", "b", "c"}
	for _, g := range groups {
		require.NoError(t, r.Join(ctx, g, in.pid))
	}
	for _, g := range groups {
		require.NoError(t, r.Publish(ctx, g, g))
	}
	var got []string
	for range groups {
		got = append(got, in.next(t).(string))
	}
	sort.Strings(got)
	assert.Equal(t, groups, got)
}

func TestStoppedRegistry(t *testing.T) {
	sys := newSystem(t)
	r, err := registry.NewLocal(sys)
	require.NoError(t, err)
	r.Stop()
	assert.ErrorIs(t, r.Register(context.Background(), "x", newInbox(t, sys).pid), registry.ErrStopped)
}

// An actor with many names and groups (more than a few, which the
// registry keeps differently) loses all it still holds when it stops,
// and only that: what it gave up before, and what another actor holds,
// are as they were.
func TestManyHoldingsReleasedWhenOwnerStops(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys)
	ctx := context.Background()
	a, b := newInbox(t, sys), newInbox(t, sys)
	const n = 20
	for i := range n {
		require.NoError(t, r.Register(ctx, fmt.Sprintf("a%d", i), a.pid))
		require.NoError(t, r.Join(ctx, fmt.Sprintf("g%d", i), a.pid))
		require.NoError(t, r.Join(ctx, fmt.Sprintf("g%d", i), b.pid))
		if i == 3 || i == 15 { // given up while few, and while many
			require.NoError(t, r.Unregister(ctx, fmt.Sprintf("a%d", i), a.pid))
			require.NoError(t, r.Leave(ctx, fmt.Sprintf("g%d", i), a.pid))
			require.NoError(t, r.Register(ctx, fmt.Sprintf("a%d", i), b.pid))
		}
	}
	require.NoError(t, r.Join(ctx, "g0", a.pid)) // twice: still one membership
	a.stop(t, sys)
	require.Eventually(t, func() bool {
		_, err := r.Lookup(ctx, "a0")
		return err != nil
	}, wait, time.Millisecond)
	for i := range n {
		owner, err := r.Lookup(ctx, fmt.Sprintf("a%d", i))
		if i == 3 || i == 15 {
			require.NoError(t, err)
			assert.True(t, owner.Equal(b.pid), "a%d belongs to b", i)
		} else {
			assert.ErrorIs(t, err, registry.ErrNotFound, "a%d", i)
		}
		members, err := r.Members(ctx, fmt.Sprintf("g%d", i))
		require.NoError(t, err)
		require.Len(t, members, 1, "g%d", i)
		assert.True(t, members[0].Equal(b.pid), "g%d", i)
	}
}

// A protows connection tells the registry it stopped through its stop
// notice instead of being watched. The entries go when the notice fires;
// a notice that fired before the registry took the entry (a call the
// caller gave up on, handled after the actor stopped), or one that is not
// the actor's own, falls back to watching, so the entries still go when
// the actor stops.
func TestStopNoticeReleasesEntries(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys)
	ctx := context.Background()
	gone := func(name, group string) func() bool {
		return func() bool {
			_, err := r.Lookup(ctx, name)
			members, merr := r.Members(ctx, group)
			return errors.Is(err, registry.ErrNotFound) && merr == nil && len(members) == 0
		}
	}

	a := newInbox(t, sys)
	na := actorhook.NewStopNotice(a.pid)
	actx := actorhook.WithStopNotice(ctx, na)
	require.NoError(t, r.Register(actx, "a", a.pid))
	require.NoError(t, r.Join(actx, "ga", a.pid))
	na.Fire() // the actor stopping
	require.Eventually(t, gone("a", "ga"), wait, time.Millisecond)

	b := newInbox(t, sys)
	nb := actorhook.NewStopNotice(b.pid)
	nb.Fire()
	require.NoError(t, r.Register(actorhook.WithStopNotice(ctx, nb), "b", b.pid))
	require.NoError(t, r.Join(actorhook.WithStopNotice(ctx, nb), "gb", b.pid))
	b.stop(t, sys)
	require.Eventually(t, gone("b", "gb"), wait, time.Millisecond)

	c, other := newInbox(t, sys), newInbox(t, sys)
	nOther := actorhook.NewStopNotice(other.pid)
	require.NoError(t, r.Register(actorhook.WithStopNotice(ctx, nOther), "c", c.pid))
	require.NoError(t, r.Join(actorhook.WithStopNotice(ctx, nOther), "gc", c.pid))
	nOther.Fire() // not c's: nothing of c's goes
	_, err := r.Lookup(ctx, "c")
	require.NoError(t, err)
	c.stop(t, sys)
	require.Eventually(t, gone("c", "gc"), wait, time.Millisecond)
}
