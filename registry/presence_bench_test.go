package registry_test

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/racedetect"
)

// BenchmarkClusterPresence: three members, each with three actors
// subscribed to the presence of one group; the three members together
// make 1,000 presence changes a second for 5 s (change i on member i % 3,
// 5,000 changes, paced by a ticker). Each change is timed from just before
// its call until every one of the nine subscribers has received the diff
// that holds it (p50-ms, p99-ms, max-ms; track-, leave- and stop-p99-ms by
// kind of change); call-p50-ms is the call itself, changes/s the rate
// achieved, diffs/s the diffs a subscriber received per second (the mean
// over subscribers). ns/op is the 5 s of changes. The presence interval is
// the default, 50 ms.
//
// The changes cycle through four kinds: Track a new entry (an actor of its
// own, key "c-<i>", a 32-byte meta); Leave an entry tracked before the
// run; Track a new entry; stop the actor of an entry tracked before the
// run. Every change is one entry under a key of its own: subscribers see
// it as exactly one join or one leave, and find its change by the key. A
// subscriber notes the time it receives the diff, in its actor's turn.
func BenchmarkClusterPresence(b *testing.B) {
	if racedetect.Enabled {
		b.Skip("cluster benchmarks run without -race")
	}
	const (
		rate = 1_000 // changes per second, on the three members together
		run  = 5 * time.Second
	)
	var p50, p99, pmax, call, achieved, diffs []float64
	var kind [3][]float64 // p99 of tracks, leaves, stops
	ms := func(v []time.Duration, q float64) float64 {
		slices.Sort(v)
		return float64(v[int(q*float64(len(v)-1))].Microseconds()) / 1e3
	}
	for range b.N {
		b.StopTimer()
		r := presenceRun(b, rate, run)
		byKind := [3][]time.Duration{}
		for i, l := range r.lat {
			k := [4]int{0, 1, 0, 2}[i%4]
			byKind[k] = append(byKind[k], l)
		}
		for k := range kind {
			kind[k] = append(kind[k], ms(byKind[k], 0.99))
		}
		p50, p99, pmax = append(p50, ms(r.lat, 0.5)), append(p99, ms(r.lat, 0.99)), append(pmax, ms(r.lat, 1))
		call, achieved, diffs = append(call, ms(r.calls, 0.5)), append(achieved, r.perSec), append(diffs, r.diffsPerSec)
	}
	b.ReportMetric(median(p50), "p50-ms")
	b.ReportMetric(median(p99), "p99-ms")
	b.ReportMetric(median(pmax), "max-ms")
	b.ReportMetric(median(kind[0]), "track-p99-ms")
	b.ReportMetric(median(kind[1]), "leave-p99-ms")
	b.ReportMetric(median(kind[2]), "stop-p99-ms")
	b.ReportMetric(median(call), "call-p50-ms")
	b.ReportMetric(median(achieved), "changes/s")
	b.ReportMetric(median(diffs), "diffs/s")
}

// presenceSub is a subscriber's record: when it received each change.
// Only its actor writes seen, dups and last; got counts the changes seen,
// and the run reads the rest once got says all are there.
type presenceSub struct {
	seen  []time.Time
	last  time.Time // the last diff received
	dups  int       // changes received twice
	diffs atomic.Int64
	got   atomic.Int64
}

func (s *presenceSub) receive(ctx protoactor.Context) {
	d, ok := ctx.Message().(*actor.PresenceDiff)
	if !ok {
		return // the state: it holds only entries tracked before the run
	}
	now := time.Now()
	mark := func(m map[string][]actor.Presence, odd int) {
		for key := range m {
			i, err := strconv.Atoi(key[len("c-"):])
			if err != nil || i%2 != odd || i >= len(s.seen) {
				continue
			}
			if !s.seen[i].IsZero() {
				s.dups++
				continue
			}
			s.seen[i] = now
			s.got.Add(1)
		}
	}
	mark(d.Joins, 0)  // even changes track
	mark(d.Leaves, 1) // odd ones leave or stop
	s.last = now
	s.diffs.Add(1)
}

type presenceResult struct {
	lat, calls          []time.Duration
	perSec, diffsPerSec float64
}

func presenceRun(b *testing.B, rate int, run time.Duration) presenceResult {
	nodes, stop := threeScaleNodes(b)
	defer stop()
	ctx := context.Background()
	const group = "room"
	meta := make([]byte, 32)
	key := func(i int) string { return "c-" + strconv.Itoa(i) }

	// Change i is made on member i % 3 by pids[i], an actor of that member:
	// odd changes remove an entry tracked here, before the run.
	n := rate * int(run/time.Second)
	pids := make([]*protoactor.PID, n)
	props := protoactor.PropsFromFunc(func(protoactor.Context) {})
	for i := range pids {
		pids[i] = nodes[i%3].sys.Root.Spawn(props)
	}
	parallel(b, n/2, func(j int) error {
		i := 2*j + 1
		return nodes[i%3].reg.Track(ctx, group, key(i), pids[i], meta)
	})
	for _, m := range nodes {
		require.Eventually(b, func() bool {
			p, _ := m.reg.Presence(ctx, group)
			return len(p) == n/2
		}, 30*time.Second, time.Millisecond)
	}

	var subs []*presenceSub
	for _, m := range nodes {
		for range 3 {
			s := &presenceSub{seen: make([]time.Time, n)}
			pid := m.sys.Root.Spawn(protoactor.PropsFromFunc(s.receive))
			require.NoError(b, m.reg.SubscribePresence(ctx, group, pid))
			subs = append(subs, s)
		}
	}

	change := func(i int) error {
		r := nodes[i%3].reg
		switch i % 4 {
		case 1:
			return r.Leave(ctx, group, pids[i])
		case 3:
			nodes[i%3].sys.Root.Stop(pids[i])
			return nil
		}
		return r.Track(ctx, group, key(i), pids[i], meta)
	}

	// Paced by a ticker; a tick that comes late (the ticker then drops
	// ticks) makes every change due by then, to keep the rate.
	start := make([]time.Time, n)
	calls := make([]time.Duration, n)
	b.StartTimer()
	interval := time.Second / time.Duration(rate)
	ticker := time.NewTicker(interval)
	t0 := time.Now()
	for i := 0; i < n; {
		for due := min(n, int(time.Since(t0)/interval)+1); i < due; i++ {
			start[i] = time.Now()
			if err := change(i); err != nil {
				b.Fatal(err)
			}
			calls[i] = time.Since(start[i])
		}
		if i < n {
			<-ticker.C
		}
	}
	perSec := float64(n) / time.Since(t0).Seconds()
	b.StopTimer()
	ticker.Stop()

	deadline := time.Now().Add(30 * time.Second)
	for _, s := range subs {
		for s.got.Load() < int64(n) {
			if time.Now().After(deadline) {
				b.Fatalf("a subscriber received %d of %d changes", s.got.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Diffs that would follow would be duplicates: give them a moment.
	time.Sleep(200 * time.Millisecond)

	r := presenceResult{lat: make([]time.Duration, n), calls: calls, perSec: perSec}
	for _, s := range subs {
		if s.dups > 0 || s.got.Load() != int64(n) {
			b.Fatalf("a subscriber received %d changes twice, %d in all", s.dups, s.got.Load())
		}
		r.diffsPerSec += float64(s.diffs.Load()) / s.last.Sub(t0).Seconds() / float64(len(subs))
		for i, t := range s.seen {
			r.lat[i] = max(r.lat[i], t.Sub(start[i]))
		}
	}
	return r
}

// BenchmarkPresenceMemory: the heap 30,000 entries of one group take on
// every member of a three-member cluster, each member holding a third of
// them (one entry per actor, a key per entry) and a copy of the rest.
// track-meta=32: Track with a 32-byte meta; join: plain Join. B/entry is the growth
// of the process's live heap while the members make the entries, until
// every member lists all of them, divided by the entries and by the three
// members: what a member pays per entry of the group, a third of them its
// own (with what the member keeps for its actors: its watch of each, as
// these are plain proto.actor actors, not connections) and two thirds
// copies. The actors themselves are not counted.
//
// The live heap of an idle three-member cluster moves within about 5 MB
// from one collection to the next (the members' gossip and the buffers of
// their remote links): heap is the median of 15 readings (see medianHeap),
// and the run makes 30,000 entries for the growth to stand well above it.
// It runs only as the first cluster of its process, and skips otherwise:
// one variant, -count 1, -benchtime 1x (.ci/bench runs each so). A stopped cluster of the same process keeps
// most of its heap (about 170 MB after a tracked run), and gives some of it
// back while a later run measures: later runs read low, even below zero.
func BenchmarkPresenceMemory(b *testing.B) {
	if racedetect.Enabled {
		b.Skip("cluster benchmarks run without -race")
	}
	const entries = 30_000
	for _, tracked := range []bool{true, false} {
		name := "entries=30000/join"
		if tracked {
			name = "entries=30000/track-meta=32"
		}
		b.Run(name, func(b *testing.B) {
			var per []float64
			for range b.N {
				per = append(per, presenceMemory(b, entries, tracked))
			}
			b.ReportMetric(median(per), "B/entry")
		})
	}
}

func presenceMemory(b *testing.B, entries int, tracked bool) float64 {
	if membersStarted > 0 {
		b.Skip("presence memory runs as the first cluster of its process: one variant, -count 1, -benchtime 1x (see .ci/bench); " +
			"an earlier cluster, though stopped, gives heap back while a later run measures")
	}
	nodes, stop := threeScaleNodes(b)
	defer stop()
	ctx := context.Background()
	const group = "room"
	meta := make([]byte, 32)
	pids := make([]*protoactor.PID, entries) // entry i on member i % 3
	props := protoactor.PropsFromFunc(func(protoactor.Context) {})
	for i := range pids {
		pids[i] = nodes[i%3].sys.Root.Spawn(props)
	}

	h0 := medianHeap()
	parallel(b, entries, func(i int) error {
		r := nodes[i%3].reg
		if tracked {
			return r.Track(ctx, group, "user-"+strconv.Itoa(i), pids[i], meta)
		}
		return r.Join(ctx, group, pids[i])
	})
	for _, m := range nodes {
		require.Eventually(b, func() bool {
			if tracked {
				p, _ := m.reg.Presence(ctx, group)
				return len(p) == entries
			}
			l, _ := m.reg.Members(ctx, group)
			return len(l) == entries
		}, 60*time.Second, 10*time.Millisecond)
	}
	h1 := medianHeap()
	for _, m := range nodes {
		if tracked {
			l, _ := m.reg.Members(ctx, group)
			require.Len(b, l, entries)
		} else {
			p, _ := m.reg.Presence(ctx, group)
			require.Empty(b, p)
		}
	}
	return float64(h1-h0) / float64(entries) / float64(len(nodes))
}

// membersStarted counts the cluster members this process has started
// (joinScaleNode).
var membersStarted int

// medianHeap is the median of 15 readings of the live heap (liveHeap),
// 200 ms apart.
func medianHeap() int64 {
	var v []float64
	for range 15 {
		v = append(v, float64(liveHeap()))
		time.Sleep(200 * time.Millisecond)
	}
	return int64(median(v))
}

// threeScaleNodes starts three members of one in-memory cluster, and
// returns them and what stops them.
func threeScaleNodes(b *testing.B) ([]*scaleNode, func()) {
	agent := test.NewInMemAgent()
	nodes := []*scaleNode{startScaleNode(b, agent), startScaleNode(b, agent), startScaleNode(b, agent)}
	return nodes, func() {
		for _, m := range slices.Backward(nodes) {
			m.stop()
		}
	}
}
