// Package supervision holds restart policies for proto.actor actors, and
// the reconnect policy of protows client connections.
//
// A [Policy] restarts a failed actor after a capped exponential [Backoff]
// with full jitter, starts counting again once the actor stayed up for a
// stable period, stops it when a budget of failures within a window is
// spent, and stops it at once when the failure cannot be fixed by a retry.
// For client connections a failure is a *[Disconnect]: the handler's
// HandleDisconnect decision, the close code and, for a refused dial, the
// HTTP status steer the policy (see [Retryable]). Every decision is logged and published on the actor
// system's event stream as an *[Event].
//
//	policy := supervision.Policy{
//		Backoff:     supervision.Backoff{Min: 100 * time.Millisecond, Max: 30 * time.Second},
//		MaxAttempts: 20, Window: time.Minute,
//	}
//	props := protoactor.PropsFromProducer(newWorker, protoactor.WithSupervisor(policy.Strategy()))
//
// proto.actor's own NewExponentialBackoffStrategy grows linearly, jitters by
// nanoseconds and has no cap; this package replaces it.
package supervision
