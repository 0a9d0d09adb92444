package supervision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
)

// Policy is a restart policy for any proto.actor actor, and the reconnect
// policy of client connections: restart a failed actor after a backoff
// delay, start counting again once it has stayed up for a stable period,
// stop it when the failures within a window exceed a budget or when the
// failure is one a retry cannot fix.
type Policy struct {
	// Backoff spaces the restarts.
	Backoff Backoff
	// StablePeriod: a failure after the actor stayed up this long since its
	// last restart (for a client: its socket stayed open this long) starts
	// again at attempt 1. Default 10 s; negative never resets.
	StablePeriod time.Duration
	// MaxAttempts is the budget: when more than MaxAttempts failures happen
	// within Window the actor is stopped, whatever the handler decided.
	// 0 means no budget.
	MaxAttempts int
	// Window is the budget's window (default 1 minute).
	Window time.Duration
	// Retryable decides whether a failure may be retried at all; nil means
	// [Retryable]. A function of your own replaces it whole: call
	// [Retryable] from it to keep the default classification of close codes
	// and refused dials.
	Retryable func(reason any) bool
	// Logger gets one line per decision (default: the actor system's).
	Logger *slog.Logger
}

// Validate reports values that are neither zero (the default) nor usable:
// a bad Backoff, a negative MaxAttempts or Window.
func (p Policy) Validate() error {
	var errs []error
	if err := p.Backoff.Validate(); err != nil {
		errs = append(errs, err)
	}
	if p.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("protows: bad supervision.Policy: MaxAttempts is negative (%d); 0 means no budget", p.MaxAttempts))
	}
	if p.Window < 0 {
		errs = append(errs, fmt.Errorf("protows: bad supervision.Policy: Window is negative (%v)", p.Window))
	}
	return errors.Join(errs...)
}

// Defaults of a zero [Policy].
const (
	DefaultStablePeriod = 10 * time.Second
	DefaultWindow       = time.Minute
)

// Directive is what the strategy did with a failure.
type Directive uint8

// Directives.
const (
	Restart Directive = iota + 1
	Stop
)

// String returns "restart" or "stop".
func (d Directive) String() string {
	switch d {
	case Restart:
		return "restart"
	case Stop:
		return "stop"
	}
	return fmt.Sprintf("Directive(%d)", uint8(d))
}

// Event records one decision. The strategy publishes it on the actor
// system's event stream (subscribe to *Event) and logs it.
type Event struct {
	Child     *protoactor.PID
	Directive Directive
	// Attempt counts the failures since the last stable period, this one
	// included.
	Attempt int
	// Delay is how long the restart waits.
	Delay time.Duration
	// Why says what decided: "backoff", "handler", "terminal", "budget".
	Why    string
	Reason any
}

// Retryable is the default classification: a failure is retried unless it
// is a disconnect whose handler said stop, whose close code says a retry
// cannot help: 1002 (protocol error), 1003 (unsupported data), 1007
// (invalid payload), 1008 (policy violation), 1009 (message too big), 1010
// (mandatory extension), and the application codes 4000-4999, or whose
// dial the server refused with an HTTP status a retry cannot fix (see
// [RetryableStatus]: a 4xx other than 408 and 429). 1000, 1001, 1006,
// 1011-1014, network errors, 5xx answers, and every other failure are
// retried.
//
// A handler's ReconnectNow or ReconnectAfter comes before this
// classification: a client that refreshes its credentials can retry a 401.
func Retryable(reason any) bool {
	var d *Disconnect
	if !asDisconnect(reason, &d) {
		return true
	}
	var de *actor.DialError
	if errors.As(d.Reason.Err, &de) && de.StatusCode != 0 && !RetryableStatus(de.StatusCode) {
		return false
	}
	return RetryableCode(d.Reason.Code)
}

// RetryableStatus reports whether a dial refused with HTTP status should be
// retried by default (see [Retryable]). A 4xx says the request itself is
// wrong (401 unauthenticated, 403 forbidden, 404 no such endpoint, 409 a
// name taken, ...): sending it again unchanged cannot help, so it is
// terminal; except 408 (Request Timeout) and 429 (Too Many Requests), which
// ask to come back later. Every other status (5xx, and the odd 3xx or 101
// with a bad handshake) is retried.
func RetryableStatus(status int) bool {
	if status < 400 || status > 499 {
		return true
	}
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
}

// RetryableCode reports whether a connection closed with code should be
// reconnected by default (see [Retryable]).
func RetryableCode(code actor.CloseCode) bool {
	switch code {
	case actor.CloseProtocolError, actor.CloseUnsupportedData, actor.CloseInvalidPayload,
		actor.ClosePolicyViolation, actor.CloseMessageTooBig, actor.CloseMandatoryExtension:
		return false
	}
	return code < 4000 || code > 4999
}

func asDisconnect(reason any, d **Disconnect) bool {
	err, ok := reason.(error)
	return ok && errors.As(err, d)
}

// Strategy returns p as a proto.actor supervisor strategy. Give it to the
// parent of the actors it governs (protoactor.WithSupervisor); a client
// connection gets it through wsactor.WithReconnect.
func (p Policy) Strategy() protoactor.SupervisorStrategy {
	if p.StablePeriod == 0 {
		p.StablePeriod = DefaultStablePeriod
	}
	if p.Window <= 0 {
		p.Window = DefaultWindow
	}
	if p.Retryable == nil {
		p.Retryable = Retryable
	}
	p.Backoff = p.Backoff.withDefaults()
	return &strategy{p: p, restarted: map[string]time.Time{}}
}

type strategy struct {
	p Policy
	// When each child was last restarted (by id), to tell how long it stayed
	// up before it failed again. HandleFailure runs on the parent's
	// goroutine; the timers that restart later touch it too, hence the lock.
	mu        sync.Mutex
	restarted map[string]time.Time
}

// uptime returns how long child has run since this strategy last restarted
// it, and false if it never did.
func (s *strategy) uptime(child *protoactor.PID) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.restarted[child.Id]
	return time.Since(t), ok
}

func (s *strategy) markRestart(child *protoactor.PID) {
	s.mu.Lock()
	s.restarted[child.Id] = time.Now()
	s.mu.Unlock()
}

func (s *strategy) forget(child *protoactor.PID) {
	s.mu.Lock()
	delete(s.restarted, child.Id)
	s.mu.Unlock()
}

func (s *strategy) HandleFailure(sys *protoactor.ActorSystem, sup protoactor.Supervisor, child *protoactor.PID, rs *protoactor.RestartStatistics, reason, _ any) {
	var d *Disconnect
	isDisconnect := asDisconnect(reason, &d)
	if s.p.StablePeriod > 0 {
		// A client reports how long its socket was up; for other actors,
		// the time since their last restart counts.
		up, known := d.uptime(), isDisconnect
		if !isDisconnect {
			up, known = s.uptime(child)
		}
		if known && up >= s.p.StablePeriod {
			rs.Reset()
		}
	}
	rs.Fail()
	ev := &Event{Child: child, Attempt: rs.FailureCount(), Reason: reason, Directive: Restart}
	switch {
	case isDisconnect && d.Decision.Stops():
		ev.Directive, ev.Why = Stop, "handler"
	case s.p.MaxAttempts > 0 && rs.NumberOfFailures(s.p.Window) > s.p.MaxAttempts:
		ev.Directive, ev.Why = Stop, "budget"
	case isDisconnect && d.Decision.Delay() >= 0:
		ev.Why, ev.Delay = "handler", d.Decision.Delay()
	case !s.p.Retryable(reason):
		ev.Directive, ev.Why = Stop, "terminal"
	default:
		ev.Why, ev.Delay = "backoff", s.p.Backoff.Delay(ev.Attempt)
	}

	log := s.p.Logger
	if log == nil {
		log = sys.Logger()
	}
	level := slog.LevelInfo
	if ev.Directive == Stop {
		level = slog.LevelWarn // given up: the actor (a client: its connection) is gone for good
	}
	log.Log(context.Background(), level, "supervision decision", slog.String("actor", child.Id), slog.String("directive", ev.Directive.String()),
		slog.Int("attempt", ev.Attempt), slog.Duration("delay", ev.Delay), slog.String("why", ev.Why), slog.Any("reason", reason))
	sys.EventStream.Publish(ev)

	if ev.Directive == Stop {
		s.forget(child)
		sup.StopChildren(child)
		return
	}
	if ev.Delay <= 0 {
		s.markRestart(child)
		sup.RestartChildren(child)
		return
	}
	if isDisconnect {
		// A client connection waits out the delay itself, after the restart,
		// so that it can be stopped or closed while it waits.
		d.RestartDelay = ev.Delay
		sup.RestartChildren(child)
		return
	}
	// Any other actor stays suspended (its messages wait in its mailbox)
	// until the timer restarts it, unless it was stopped meanwhile. (An
	// actor that is still stopping when the timer fires, because it waits
	// for its children, is restarted; proto.actor offers no way to tell.)
	time.AfterFunc(ev.Delay, func() {
		if _, alive := sys.ProcessRegistry.GetLocal(child.Id); alive {
			s.markRestart(child)
			sup.RestartChildren(child)
		} else {
			s.forget(child)
		}
	})
}
