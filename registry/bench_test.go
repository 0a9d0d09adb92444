package registry_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/racedetect"
)

// BenchmarkClusterSend: a send by name from member B to a connection on
// member A (two cluster members in this process), timed until A's
// websocket client has the frame.
func BenchmarkClusterSend(b *testing.B) {
	if racedetect.Enabled {
		b.Skip("cluster benchmarks run without -race")
	}
	agent := test.NewInMemAgent()
	a := startMember(b, test.NewTestProvider(agent))
	m := startMember(b, test.NewTestProvider(agent))
	alice := dialMember(b, a, "alice", "lobby")
	ctx := context.Background()
	// alice's name reaches B's copy of the directory a moment after A has it.
	require.Eventually(b, func() bool {
		_, err := m.reg.Lookup(ctx, "alice")
		return err == nil
	}, wait, time.Millisecond)
	frame := actor.Text("ping")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		if err := m.reg.SendTo(ctx, "alice", frame); err != nil {
			b.Fatal(err)
		}
		if _, _, err := alice.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
