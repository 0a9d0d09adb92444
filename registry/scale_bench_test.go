// Benchmarks of the cluster registry at scale: what a copy of 100,000
// entries costs in memory, how long a member takes to copy them when it
// joins, and how fast a change reaches the other members while changes
// keep coming. All members run in this process on loopback, with the
// in-memory cluster provider. Each benchmark's unit is one whole run on a
// fresh cluster: run them with -benchtime 1x (a larger -benchtime repeats
// the run and reports the medians). proto.actor's StartMember (about 1 s)
// and graceful Shutdown (about 2 s) are outside every measurement.
package registry_test

import (
	"context"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/internal/racedetect"
	"github.com/protows/protows/registry"
)

// scaleNode is a cluster member without a websocket server: an actor
// system, its cluster membership and its registry.
type scaleNode struct {
	sys  *protoactor.ActorSystem
	c    *cluster.Cluster
	reg  *registry.Cluster
	stop func()
}

// joinScaleNode starts a member on agent's cluster and returns it before
// its registry exists: the registry's start is what some benchmarks time.
func joinScaleNode(b *testing.B, agent *test.InMemAgent) *scaleNode {
	b.Helper()
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	c := cluster.New(sys, cluster.Configure("protows-scale", test.NewTestProvider(agent), disthash.New(),
		remote.Configure("127.0.0.1", 0)))
	c.StartMember()
	membersStarted++
	n := &scaleNode{sys: sys, c: c}
	n.stop = sync.OnceFunc(func() {
		if n.reg != nil {
			n.reg.Stop()
		}
		c.Shutdown(true) // also shuts the actor system down
	})
	b.Cleanup(n.stop)
	return n
}

// startRegistry starts n's registry and waits until it is synced.
func (n *scaleNode) startRegistry(b *testing.B) {
	b.Helper()
	reg, err := registry.NewCluster(n.c)
	require.NoError(b, err)
	n.reg = reg
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(b, reg.WaitSynced(ctx))
}

func startScaleNode(b *testing.B, agent *test.InMemAgent) *scaleNode {
	n := joinScaleNode(b, agent)
	n.startRegistry(b)
	return n
}

// spawnIdle spawns n actors that ignore their messages.
func spawnIdle(sys *protoactor.ActorSystem, n int) []*protoactor.PID {
	props := protoactor.PropsFromFunc(func(protoactor.Context) {})
	pids := make([]*protoactor.PID, n)
	for i := range pids {
		pids[i] = sys.Root.Spawn(props)
	}
	return pids
}

// parallel runs f(i) for i in [0, n) on 4 goroutines: each registry write
// waits for the registry actor's answer, and several callers keep it busy.
func parallel(b *testing.B, n int, f func(i int) error) {
	b.Helper()
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// liveHeap returns the bytes of live heap objects after full collections
// (two: the second frees what the first moved to sync.Pool victim caches).
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// settledHeap is liveHeap once two readings 250 ms apart agree within
// 0.2% (at most 5 s): what the cluster's background work (gossip, the
// registry's digests, a snapshot's messages still in the remote's queues)
// holds for a moment is not counted. This is a measurement, not a wait for
// an event: nothing signals that the heap has settled.
func settledHeap() int64 {
	prev := liveHeap()
	for range 20 {
		time.Sleep(250 * time.Millisecond)
		h := liveHeap()
		if d := h - prev; d < prev/500 && -d < prev/500 {
			return h
		}
		prev = h
	}
	return prev
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// scaleEntries is a set of entries of one member: names, or group
// memberships, held by a number of actors.
type scaleEntries struct {
	name     string
	groups   bool
	keys     int // distinct names, or distinct groups
	perGroup int // members per group (groups only)
	actors   int
}

func (l scaleEntries) count() int {
	if l.groups {
		return l.keys * l.perGroup
	}
	return l.keys
}

// add gives the entries to pids on r. Name i is held by actor i % actors;
// membership i is slot s = i / groups of group g = i % groups, taken by
// actor (g*perGroup + s) % actors, so that no actor joins a group twice
// when perGroup ≤ actors.
func (l scaleEntries) add(b *testing.B, r *registry.Cluster, pids []*protoactor.PID) {
	ctx := context.Background()
	parallel(b, l.count(), func(i int) error {
		if l.groups {
			g, s := i%l.keys, i/l.keys
			return r.Join(ctx, "group-"+strconv.Itoa(g), pids[(g*l.perGroup+s)%len(pids)])
		}
		return r.Register(ctx, "name-"+strconv.Itoa(i), pids[i%len(pids)])
	})
}

// requireAll fails unless r holds all the entries.
func (l scaleEntries) requireAll(b *testing.B, r *registry.Cluster) {
	b.Helper()
	ctx := context.Background()
	for i := range l.keys {
		if l.groups {
			m, _ := r.Members(ctx, "group-"+strconv.Itoa(i))
			require.Len(b, m, l.perGroup, "group-%d", i)
		} else {
			_, err := r.Lookup(ctx, "name-"+strconv.Itoa(i))
			require.NoError(b, err, "name-%d", i)
		}
	}
}

// BenchmarkClusterReplicaMemory: the heap 100,000 entries of member A take
// on A, which holds them (its directory, and the ledger and watch of each
// of its actors that holds an entry), and on a member that only holds the
// copy. Names report B/name-*, group memberships B/member-*.
//
// A run: A starts alone with its registry and spawns its actors; A's heap
// growth while it gives them the entries is *-owner (the actors themselves
// are not counted). Member C then joins the cluster: its growth, join-MiB,
// is proto.actor's cost of a second member in this process (mostly the
// buffers of the remote links between C and A) and has nothing of the
// registry. C then starts its registry, which copies A's entries: that
// growth is *-replica (it includes C's empty registry, a few KiB). Heap is
// live heap (HeapAlloc after two full collections), read once it has
// settled.
func BenchmarkClusterReplicaMemory(b *testing.B) {
	if racedetect.Enabled {
		b.Skip("cluster benchmarks run without -race")
	}
	for _, l := range []scaleEntries{
		{name: "names=100000/actors=100000", keys: 100_000, actors: 100_000},
		{name: "names=100000/actors=100", keys: 100_000, actors: 100},
		{name: "members=1000x100/actors=100000", groups: true, keys: 1_000, perGroup: 100, actors: 100_000},
		{name: "members=1000x100/actors=100", groups: true, keys: 1_000, perGroup: 100, actors: 100},
		{name: "members=100000x1/actors=100000", groups: true, keys: 100_000, perGroup: 1, actors: 100_000},
	} {
		b.Run(l.name, func(b *testing.B) {
			var owner, replica, join []float64
			for range b.N {
				o, r, j := replicaMemory(b, l)
				owner, replica, join = append(owner, o), append(replica, r), append(join, j)
			}
			unit := "B/name-"
			if l.groups {
				unit = "B/member-"
			}
			b.ReportMetric(median(owner), unit+"owner")
			b.ReportMetric(median(replica), unit+"replica")
			b.ReportMetric(median(join)/(1<<20), "join-MiB")
		})
	}
}

func replicaMemory(b *testing.B, l scaleEntries) (owner, replica, join float64) {
	agent := test.NewInMemAgent()
	a := startScaleNode(b, agent)
	pids := spawnIdle(a.sys, l.actors)
	h0 := settledHeap()
	l.add(b, a.reg, pids)
	h1 := settledHeap()

	c := joinScaleNode(b, agent)
	h2 := settledHeap()
	c.startRegistry(b)
	l.requireAll(b, c.reg) // synced: A's snapshot is applied
	h3 := settledHeap()
	runtime.KeepAlive(pids)
	c.stop()
	a.stop()

	n := float64(l.count())
	return float64(h1-h0) / n, float64(h3-h2) / n, float64(h2 - h1)
}

// BenchmarkClusterJoinSync: member A holds 100,000 names and 100,000
// group memberships (100,000 actors, each with a name and one of 1,000
// groups); member B joins. Timed (sync-ms, and ns/op) from B's NewCluster,
// after B's StartMember, until B's WaitSynced returns; B's copy must then
// hold all of A's entries.
func BenchmarkClusterJoinSync(b *testing.B) {
	if racedetect.Enabled {
		b.Skip("cluster benchmarks run without -race")
	}
	const actors = 100_000
	names := scaleEntries{keys: actors, actors: actors}
	groups := scaleEntries{groups: true, keys: 1_000, perGroup: actors / 1_000, actors: actors}
	var synced []float64
	for range b.N {
		b.StopTimer()
		agent := test.NewInMemAgent()
		a := startScaleNode(b, agent)
		pids := spawnIdle(a.sys, actors)
		names.add(b, a.reg, pids)
		groups.add(b, a.reg, pids)
		m := joinScaleNode(b, agent)
		b.StartTimer()

		t0 := time.Now()
		m.startRegistry(b)
		t1 := time.Now()

		b.StopTimer()
		names.requireAll(b, m.reg)
		groups.requireAll(b, m.reg)
		synced = append(synced, float64(t1.Sub(t0).Microseconds())/1e3)
		m.stop()
		a.stop()
	}
	b.ReportMetric(median(synced), "sync-ms")
}
