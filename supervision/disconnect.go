package supervision

import (
	"fmt"
	"time"

	"github.com/protows/protows/actor"
)

// Disconnect is the failure a client connection (wsactor.SpawnClient)
// reports to its supervisor when its socket has ended, or a dial failed,
// and its handler did not decide to stop. It is the reason a
// [Policy.Retryable] function and an [Event] see for a client: the close
// code, the *actor.DialError of a refused dial, the handler's decision.
// The policy restarts the actor, which dials again, or stops it.
type Disconnect struct {
	Reason   actor.Reason
	Decision actor.Decision
	// Uptime is how long the socket was open; 0 when the dial failed.
	Uptime time.Duration
	// RestartDelay is set by the policy before it restarts the actor: how
	// long the client waits before dialling again.
	RestartDelay time.Duration
}

// Error describes the disconnect.
func (d *Disconnect) Error() string {
	return fmt.Sprintf("protows: disconnected (%v) after %v; handler decision: %v", d.Reason, d.Uptime.Round(time.Millisecond), d.Decision)
}

// uptime returns Uptime, or 0 for a nil Disconnect.
func (d *Disconnect) uptime() time.Duration {
	if d == nil {
		return 0
	}
	return d.Uptime
}

// Unwrap returns the error behind the disconnect, if any.
func (d *Disconnect) Unwrap() error { return d.Reason.Err }
