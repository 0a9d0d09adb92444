package actortest_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// fakeTB stands in for a *testing.T where there is none (Examples) or where
// a test checks that the kit fails its test. The kit uses only Helper,
// Fatalf, Errorf and Cleanup.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	failures []string
	cleanups []func()
}

func (t *fakeTB) Helper() {}

func (t *fakeTB) Errorf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failures = append(t.failures, fmt.Sprintf(format, args...))
}

func (t *fakeTB) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	runtime.Goexit()
}

func (t *fakeTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// runTB runs fn as a test body on a goroutine of its own, as the testing
// package does (so Fatalf ends it), then its cleanups, last first.
func runTB(fn func(testing.TB)) *fakeTB {
	tb := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
	return tb
}
