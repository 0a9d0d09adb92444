// Package leaktest holds the goroutine-leak check every test package of
// protows runs in its TestMain.
package leaktest

import (
	"testing"

	"go.uber.org/goleak"
)

// ignored are proto.actor goroutines that outlive a test by design:
//
//   - the dead-letter throttle: the first dead letter of each period (1 s by
//     default) starts a goroutine that sleeps out the period to count what
//     it throttled. A message to a stopped actor, or a Watch of one, is
//     enough to start it.
var ignored = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
}

// VerifyTestMain runs the package's tests, then fails if goroutines other
// than the documented proto.actor ones are left.
func VerifyTestMain(m *testing.M) { goleak.VerifyTestMain(m, ignored...) }
