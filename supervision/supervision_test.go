package supervision_test

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/protows/protows/internal/conn"
	"github.com/protows/protows/internal/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/supervision"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func TestBackoffCeilingGrowsToCap(t *testing.T) {
	b := supervision.Backoff{Min: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		assert.Equal(t, w*time.Millisecond, b.Ceiling(i+1), "attempt %d", i+1)
	}
	assert.Equal(t, time.Second, b.Ceiling(10_000), "no overflow")
	assert.Equal(t, 100*time.Millisecond, b.Ceiling(0))
}

func TestBackoffDefaults(t *testing.T) {
	var b supervision.Backoff
	assert.Equal(t, supervision.DefaultMin, b.Ceiling(1))
	assert.Equal(t, 2*supervision.DefaultMin, b.Ceiling(2))
	assert.Equal(t, supervision.DefaultMax, b.Ceiling(100))
}

func TestBackoffFullJitter(t *testing.T) {
	for _, r := range []float64{0, 0.25, 0.999} {
		b := supervision.Backoff{Min: time.Second, Max: 8 * time.Second, Rand: func() float64 { return r }}
		for attempt := 1; attempt <= 6; attempt++ {
			assert.Equal(t, time.Duration(r*float64(b.Ceiling(attempt))), b.Delay(attempt))
		}
	}
	b := supervision.Backoff{Min: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 100 {
		d := b.Delay(3)
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.LessOrEqual(t, d, 4*time.Second)
		seen[d] = true
	}
	assert.Greater(t, len(seen), 50, "random delays")
}

// Values that are neither zero (the default) nor usable are errors, each
// named; zero values and sensible ones are not.
func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		p    supervision.Policy
		want string // "" when valid
	}{
		{supervision.Policy{}, ""},
		{supervision.Policy{Backoff: supervision.Backoff{Min: time.Second, Max: time.Minute, Multiplier: 1.5}, MaxAttempts: 5, Window: time.Minute}, ""},
		{supervision.Policy{Backoff: supervision.Backoff{Min: time.Second}}, ""},      // Max defaults to 30 s
		{supervision.Policy{Backoff: supervision.Backoff{Max: time.Millisecond}}, ""}, // ... and Min is capped by it
		{supervision.Policy{StablePeriod: -1}, ""},                                    // negative: never reset, documented
		{supervision.Policy{Backoff: supervision.Backoff{Min: time.Second, Max: time.Millisecond}}, "Min 1s is above Max 1ms"},
		{supervision.Policy{Backoff: supervision.Backoff{Min: time.Minute}}, "Min 1m0s is above Max 30s"},
		{supervision.Policy{Backoff: supervision.Backoff{Min: -time.Second}}, "Min is negative"},
		{supervision.Policy{Backoff: supervision.Backoff{Max: -time.Second}}, "Max is negative"},
		{supervision.Policy{Backoff: supervision.Backoff{Multiplier: 0.5}}, "Multiplier must be at least 1"},
		{supervision.Policy{MaxAttempts: -1}, "MaxAttempts is negative"},
		{supervision.Policy{Window: -time.Second}, "Window is negative"},
	} {
		err := tc.p.Validate()
		if tc.want == "" {
			assert.NoError(t, err, "%+v", tc.p)
			continue
		}
		assert.ErrorContains(t, err, tc.want, "%+v", tc.p)
	}
}

func TestRetryableCode(t *testing.T) {
	for code, want := range map[actor.CloseCode]bool{
		1000: true, 1001: true, 1005: true, 1006: true, 1011: true, 1012: true, 1013: true, 1014: true, 3000: true,
		1002: false, 1003: false, 1007: false, 1008: false, 1009: false, 1010: false, 4000: false, 4500: false, 4999: false,
	} {
		assert.Equal(t, want, supervision.RetryableCode(code), "%d", code)
	}
	assert.True(t, supervision.Retryable(errors.New("any failure")))
	assert.False(t, supervision.Retryable(&supervision.Disconnect{Reason: actor.Reason{Code: actor.ClosePolicyViolation}}))
}

func TestRetryableStatus(t *testing.T) {
	for status, want := range map[int]bool{
		101: true, 301: true, 500: true, 502: true, 503: true, 504: true, 408: true, 429: true,
		400: false, 401: false, 403: false, 404: false, 409: false, 426: false, 499: false,
	} {
		assert.Equal(t, want, supervision.RetryableStatus(status), "%d", status)
	}
	refused := func(status int) *supervision.Disconnect {
		return &supervision.Disconnect{Reason: actor.Reason{Kind: actor.ReasonError, Code: actor.CloseAbnormal,
			Err: &actor.DialError{StatusCode: status, Err: errors.New("bad handshake")}}}
	}
	assert.False(t, supervision.Retryable(refused(401)))
	assert.False(t, supervision.Retryable(fmt.Errorf("wrapped: %w", refused(404))))
	assert.True(t, supervision.Retryable(refused(429)))
	assert.True(t, supervision.Retryable(refused(503)))
	assert.True(t, supervision.Retryable(refused(0)), "no HTTP answer: a network error")
}

// newSystemWithEvents returns an actor system, shut down with the test, and
// the supervision events published in it.
func newSystemWithEvents(t *testing.T) (*protoactor.ActorSystem, <-chan *supervision.Event) {
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	events := make(chan *supervision.Event, 10)
	sub := sys.EventStream.Subscribe(func(e any) {
		if ev, ok := e.(*supervision.Event); ok {
			events <- ev
		}
	})
	t.Cleanup(func() {
		sys.EventStream.Unsubscribe(sub)
		sys.Shutdown()
	})
	return sys, events
}

// worker is any proto.actor actor: it counts its starts and fails on "fail".
type worker struct{ starts chan struct{} }

func (w *worker) Receive(ctx protoactor.Context) {
	switch ctx.Message().(type) {
	case *protoactor.Started:
		w.starts <- struct{}{}
	case string:
		panic(errors.New("worker failed"))
	}
}

func TestPolicyForAnyActor(t *testing.T) {
	sys, events := newSystemWithEvents(t)

	policy := supervision.Policy{
		Backoff:     supervision.Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond, Rand: func() float64 { return 1 }},
		MaxAttempts: 2, Window: time.Minute,
	}
	w := &worker{starts: make(chan struct{}, 10)}
	parent := conn.NewSupervisor(sys, policy.Strategy())
	pid, err := parent.Spawn(protoactor.PropsFromProducer(func() protoactor.Actor { return w }))
	require.NoError(t, err)
	defer sys.Root.Stop(parent.PID())
	recv(t, w.starts, "start")

	for attempt, delay := range []time.Duration{10 * time.Millisecond, 20 * time.Millisecond} {
		start := time.Now()
		sys.Root.Send(pid, "fail")
		ev := recv(t, events, "decision")
		assert.Equal(t, supervision.Restart, ev.Directive)
		assert.Equal(t, attempt+1, ev.Attempt)
		assert.Equal(t, delay, ev.Delay)
		select {
		case <-w.starts:
			assert.GreaterOrEqual(t, time.Since(start), delay, "restarted before its delay")
		case <-time.After(5 * time.Second):
			t.Fatal("not restarted")
		}
	}
	sys.Root.Send(pid, "fail")
	ev := recv(t, events, "decision")
	assert.Equal(t, supervision.Stop, ev.Directive)
	assert.Equal(t, "budget", ev.Why)
	select {
	case <-watch(sys, pid):
	case <-time.After(5 * time.Second):
		t.Fatal("the worker was not stopped")
	}
}

// watch returns a channel closed when pid stops.
func watch(sys *protoactor.ActorSystem, pid *protoactor.PID) <-chan struct{} {
	gone := make(chan struct{})
	sys.Root.Spawn(protoactor.PropsFromFunc(func(ctx protoactor.Context) {
		switch ctx.Message().(type) {
		case *protoactor.Started:
			ctx.Watch(pid)
		case *protoactor.Terminated:
			close(gone)
			ctx.Stop(ctx.Self())
		}
	}))
	return gone
}

// Any actor that stayed up for the stable period starts counting again.
// The period is long enough that a failure sent right after a restart
// falls inside it on a loaded machine too.
func TestStablePeriodForAnyActor(t *testing.T) {
	sys, events := newSystemWithEvents(t)
	policy := supervision.Policy{
		Backoff:      supervision.Backoff{Min: time.Millisecond, Max: time.Millisecond},
		StablePeriod: 300 * time.Millisecond,
	}
	w := &worker{starts: make(chan struct{}, 10)}
	parent := conn.NewSupervisor(sys, policy.Strategy())
	defer sys.Root.Stop(parent.PID())
	pid, err := parent.Spawn(protoactor.PropsFromProducer(func() protoactor.Actor { return w }))
	require.NoError(t, err)
	recv(t, w.starts, "start")
	sys.Root.Send(pid, "fail")
	assert.Equal(t, 1, recv(t, events, "decision").Attempt)
	recv(t, w.starts, "restart")
	sys.Root.Send(pid, "fail") // right away: not stable
	assert.Equal(t, 2, recv(t, events, "decision").Attempt)
	recv(t, w.starts, "restart")
	// Restarts are counted from before Started, so this is past the period.
	stable := time.NewTimer(policy.StablePeriod + 10*time.Millisecond)
	<-stable.C
	sys.Root.Send(pid, "fail")
	assert.Equal(t, 1, recv(t, events, "decision").Attempt, "counting starts again after a stable period")
	recv(t, w.starts, "restart")
}

// recv waits for a value from ch, and fails t if none comes in time.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s", what)
	}
	var zero T
	return zero
}
