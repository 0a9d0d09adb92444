package supervision

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Backoff is capped exponential backoff with full jitter: the delay before
// retry n (n >= 1) is drawn uniformly from [0, min(Max, Min × Multiplier^(n-1))].
// Full jitter spreads the retries of many clients that lost the same server
// instead of bringing them back in waves. The zero value means the defaults
// below; [Backoff.Validate] rejects values that are not zero and make no
// sense (a negative delay, a Max below Min, a Multiplier below 1), and
// wsactor.WithReconnect reports its error.
type Backoff struct {
	// Min is the ceiling of the first delay (default 100 ms, or Max if
	// that is less).
	Min time.Duration
	// Max caps every delay (default 30 s).
	Max time.Duration
	// Multiplier grows the ceiling per attempt (default 2).
	Multiplier float64
	// Rand returns a number in [0, 1) for the jitter (default
	// math/rand/v2.Float64). Tests inject their own.
	Rand func() float64
}

// Defaults of a zero [Backoff].
const (
	DefaultMin        = 100 * time.Millisecond
	DefaultMax        = 30 * time.Second
	DefaultMultiplier = 2.0
)

// Validate reports values that are neither zero (the default) nor usable.
func (b Backoff) Validate() error {
	var errs []error
	if b.Min < 0 {
		errs = append(errs, fmt.Errorf("Min is negative (%v)", b.Min))
	}
	if b.Max < 0 {
		errs = append(errs, fmt.Errorf("Max is negative (%v)", b.Max))
	}
	if b.Multiplier != 0 && (b.Multiplier < 1 || math.IsNaN(b.Multiplier) || math.IsInf(b.Multiplier, 0)) {
		errs = append(errs, fmt.Errorf("Multiplier must be at least 1, got %v", b.Multiplier))
	}
	if maxDelay := cmp.Or(b.Max, DefaultMax); b.Min > 0 && b.Max >= 0 && b.Min > maxDelay {
		errs = append(errs, fmt.Errorf("Min %v is above Max %v", b.Min, maxDelay))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("protows: bad supervision.Backoff: %w", err)
	}
	return nil
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = DefaultMin
		if b.Max > 0 && b.Max < b.Min {
			b.Min = b.Max // a Max below the default Min caps it
		}
	}
	if b.Max <= 0 {
		b.Max = DefaultMax
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	if b.Multiplier < 1 {
		b.Multiplier = DefaultMultiplier
	}
	if b.Rand == nil {
		b.Rand = rand.Float64
	}
	return b
}

// Ceiling returns the largest delay retry attempt may get:
// min(Max, Min × Multiplier^(attempt-1)).
func (b Backoff) Ceiling(attempt int) time.Duration {
	b = b.withDefaults()
	if attempt < 1 {
		attempt = 1
	}
	c := float64(b.Min) * math.Pow(b.Multiplier, float64(attempt-1))
	if c >= float64(b.Max) || math.IsInf(c, 0) || math.IsNaN(c) {
		return b.Max
	}
	return time.Duration(c)
}

// Delay returns the jittered delay before retry attempt (1 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.withDefaults()
	return time.Duration(b.Rand() * float64(b.Ceiling(attempt)))
}
