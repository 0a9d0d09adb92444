package registry_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/internal/racedetect"
	"github.com/protows/protows/registry"
)

// BenchmarkClusterPropagation: three members; A makes 1,000 changes a
// second for 5 s, and each change is timed from A's call returning until
// both B and C have it (p50-ms, p99-ms, max-ms); call-p50-ms is the call
// itself. ns/op is the 5 s of changes.
//
// The changes alternate: register a new name, unregister a name
// registered before the run; each name by an actor of its own, so that
// every name changes once and "B has change i" stays true once it holds.
// An observer goroutine per member (B, C) takes all the changes in order,
// polling its member's copy (Lookup, a map read under a read lock) every
// 100 µs until the change is there: a change is seen up to about 0.1-0.2
// ms late. A member applies A's changes in order, so one seen means all
// before it are there too.
func BenchmarkClusterPropagation(b *testing.B) {
	if racedetect.Enabled {
		b.Skip("cluster benchmarks run without -race")
	}
	const (
		rate = 1_000 // changes per second
		run  = 5 * time.Second
	)
	var p50, p99, pmax, call, achieved []float64
	for range b.N {
		b.StopTimer()
		lat, calls, perSec := propagation(b, rate, run)
		ms := func(v []time.Duration, q float64) float64 {
			slices.Sort(v)
			return float64(v[int(q*float64(len(v)-1))].Microseconds()) / 1e3
		}
		p50, p99, pmax = append(p50, ms(lat, 0.5)), append(p99, ms(lat, 0.99)), append(pmax, ms(lat, 1))
		call, achieved = append(call, ms(calls, 0.5)), append(achieved, perSec)
	}
	b.ReportMetric(median(p50), "p50-ms")
	b.ReportMetric(median(p99), "p99-ms")
	b.ReportMetric(median(pmax), "max-ms")
	b.ReportMetric(median(call), "call-p50-ms")
	b.ReportMetric(median(achieved), "changes/s")
}

// propagation runs the changes and returns, per change, the time until B
// and C both had it and the time A's call took, and the rate achieved.
func propagation(b *testing.B, rate int, run time.Duration) (lat, calls []time.Duration, perSec float64) {
	agent := test.NewInMemAgent()
	a := startScaleNode(b, agent)
	nb := startScaleNode(b, agent)
	nc := startScaleNode(b, agent)
	defer func() { nc.stop(); nb.stop(); a.stop() }()
	ctx := context.Background()

	n := rate * int(run/time.Second)
	half := (n + 1) / 2
	name := func(kind string, k int) string { return kind + "-" + strconv.Itoa(k) }
	olds := spawnIdle(a.sys, half) // the names the run unregisters
	parallel(b, half, func(k int) error { return a.reg.Register(ctx, name("old", k), olds[k]) })
	for _, m := range []*scaleNode{nb, nc} {
		require.Eventually(b, func() bool {
			_, err := m.reg.Lookup(ctx, name("old", half-1))
			return err == nil
		}, 30*time.Second, time.Millisecond)
	}
	news := spawnIdle(a.sys, half)

	change := func(i int) error {
		if i%2 == 0 {
			return a.reg.Register(ctx, name("new", i/2), news[i/2])
		}
		return a.reg.Unregister(ctx, name("old", i/2), olds[i/2])
	}
	has := func(r *registry.Cluster, i int) bool {
		if i%2 == 0 {
			_, err := r.Lookup(ctx, name("new", i/2))
			return err == nil
		}
		_, err := r.Lookup(ctx, name("old", i/2))
		return err != nil
	}

	done := make([]time.Time, n)
	calls = make([]time.Duration, n)
	var issued atomic.Int64 // changes whose call has returned
	seen := [2][]time.Time{make([]time.Time, n), make([]time.Time, n)}
	var wg sync.WaitGroup
	for o, m := range []*scaleNode{nb, nc} {
		// Observer: ends when it has seen all n changes or at a deadline;
		// touches only seen[o] and m's copy, and done[i] once issued > i.
		wg.Go(func() {
			deadline := time.Now().Add(run + 30*time.Second)
			for i := range n {
				for int(issued.Load()) <= i || !has(m.reg, i) {
					if time.Now().After(deadline) {
						return
					}
					time.Sleep(100 * time.Microsecond)
				}
				seen[o][i] = time.Now()
			}
		})
	}

	// Paced by a ticker; a tick that comes late (the ticker then drops
	// ticks) makes every change due by then, to keep the rate.
	b.StartTimer()
	interval := time.Second / time.Duration(rate)
	ticker := time.NewTicker(interval)
	t0 := time.Now()
	for i := 0; i < n; {
		for due := min(n, int(time.Since(t0)/interval)+1); i < due; i++ {
			start := time.Now()
			if err := change(i); err != nil {
				b.Fatal(err)
			}
			done[i] = time.Now()
			calls[i] = done[i].Sub(start)
			issued.Store(int64(i + 1))
		}
		if i < n {
			<-ticker.C
		}
	}
	perSec = float64(n) / time.Since(t0).Seconds()
	b.StopTimer()
	ticker.Stop()
	wg.Wait()

	lat = make([]time.Duration, n)
	for i := range n {
		if seen[0][i].IsZero() || seen[1][i].IsZero() {
			b.Fatalf("change %d of %d never reached B or C", i, n)
		}
		last := seen[0][i]
		if seen[1][i].After(last) {
			last = seen[1][i]
		}
		lat[i] = last.Sub(done[i])
	}
	return lat, calls, perSec
}
