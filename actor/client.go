package actor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	protoactor "github.com/asynkron/protoactor-go/actor"
)

// ClientHandler is the behaviour of a dialled (client) connection. It is a
// [Handler] plus two callbacks around each socket; the connection's PID and
// the handler value stay the same across reconnects, so its state survives
// them. Init runs once, before the first dial; if it fails, the client
// stops (Terminate with ReasonError) without dialling.
type ClientHandler interface {
	Handler
	// HandleConnect runs after every successful handshake (the first and each
	// reconnect), before any frame is read and before frames held while
	// disconnected are sent. Frames it pushes go first.
	HandleConnect(c *Context, r *ConnectResponse) error
	// HandleDisconnect runs when a socket ended (or a dial failed) other than
	// by the handler's own close, and decides what comes next. For a failed
	// dial r.Err is a *[DialError] (errors.As finds it), with the server's
	// status, header and the start of its body when it refused the
	// handshake. The default policy ends the client after a 4xx other than
	// 408 and 429; to retry one anyway (a 401 the server will soon accept),
	// return [ReconnectNow] or [ReconnectAfter], which come before that
	// classification, and count the attempts yourself or set a budget
	// (supervision.Policy.MaxAttempts), since nothing else stops the retries.
	HandleDisconnect(c *Context, r Reason) Decision
}

// ConnectResponse is the server's answer to a client's handshake.
type ConnectResponse struct {
	StatusCode  int
	Header      http.Header
	Subprotocol string
}

// HandleConnect does nothing.
func (BaseHandler) HandleConnect(*Context, *ConnectResponse) error { return nil }

// HandleDisconnect leaves the decision to the reconnect policy.
func (BaseHandler) HandleDisconnect(*Context, Reason) Decision { return ReconnectByPolicy }

// Decision is what a client does after a disconnect.
type Decision struct {
	kind  decisionKind
	delay time.Duration
}

type decisionKind uint8

const (
	byPolicy decisionKind = iota
	reconnectAfter
	stopReconnecting
)

// Decisions for [ClientHandler.HandleDisconnect].
var (
	// ReconnectByPolicy lets the supervisor's policy decide: by default
	// reconnect with backoff unless the close code is terminal or the dial
	// was refused with a 4xx other than 408 and 429.
	ReconnectByPolicy = Decision{}
	// ReconnectNow reconnects at once, even after a close code or HTTP
	// status the policy holds terminal; only a budget or a close of the
	// client stops it.
	ReconnectNow = Decision{kind: reconnectAfter}
	// StopReconnecting ends the client: Terminate follows.
	StopReconnecting = Decision{kind: stopReconnecting}
)

// ReconnectAfter reconnects after d, even after a close code or HTTP
// status the policy holds terminal (as [ReconnectNow]).
func ReconnectAfter(d time.Duration) Decision {
	return Decision{kind: reconnectAfter, delay: max(d, 0)}
}

// Stops reports whether the decision ends the client.
func (d Decision) Stops() bool { return d.kind == stopReconnecting }

// Delay returns the delay the handler asked for, or -1 when the policy
// decides.
func (d Decision) Delay() time.Duration {
	if d.kind == reconnectAfter {
		return d.delay
	}
	return -1
}

// String describes the decision.
func (d Decision) String() string {
	switch d.kind {
	case reconnectAfter:
		return "reconnect after " + d.delay.String()
	case stopReconnecting:
		return "stop"
	}
	return "reconnect by policy"
}

// Disconnect is the failure a client connection escalates to its
// supervisor when its socket has ended and its handler did not decide to
// stop. The supervisor's strategy (see package supervision) restarts the
// actor, which dials again, or stops it.
type Disconnect struct {
	Reason   Reason
	Decision Decision
	// Uptime is how long the socket was open; 0 when the dial failed.
	Uptime time.Duration
	// RestartDelay is set by the supervisor's strategy before it restarts
	// the actor: how long to wait before dialling again.
	RestartDelay time.Duration
}

// Error describes the disconnect.
func (d *Disconnect) Error() string {
	return fmt.Sprintf("protows: disconnected (%v) after %v; handler decision: %v", d.Reason, d.Uptime.Round(time.Millisecond), d.Decision)
}

// GetUptime returns Uptime, or 0 for a nil Disconnect.
func (d *Disconnect) GetUptime() time.Duration {
	if d == nil {
		return 0
	}
	return d.Uptime
}

// Unwrap returns the error behind the disconnect, if any.
func (d *Disconnect) Unwrap() error { return d.Reason.Err }

// DialError is why a dial failed. When the server answered the handshake
// with an HTTP status other than 101, StatusCode, Header and Body hold its
// answer: Body is the first [DialErrorBodyLimit] bytes of the response body,
// where a protows server puts the message of its [Reject]. Err is the
// underlying error (for a refused handshake, gorilla/websocket's
// ErrBadHandshake); errors.As and errors.Is reach it through Unwrap.
//
// A client's Reason carries it as Err when a dial failed; by default a 4xx
// other than 408 and 429 ends the client (see supervision.RetryableStatus).
type DialError struct {
	StatusCode int         // 0 when there was no HTTP answer (network, TLS, proxy)
	Header     http.Header // the answer's header, nil without one
	Body       []byte      // at most DialErrorBodyLimit bytes of the answer's body
	Err        error
}

// DialErrorBodyLimit is how much of a refused handshake's response body a
// [DialError] keeps.
const DialErrorBodyLimit = 512

// dialErrorExcerpt is how much of the body Error shows, in bytes.
const dialErrorExcerpt = 120

// Error describes the failed dial: the status and a short excerpt of the
// body, stripped of control characters and invalid UTF-8, so that it is
// safe to log.
func (e *DialError) Error() string {
	if e.StatusCode != 0 {
		s := fmt.Sprintf("protows: dial refused with HTTP %d", e.StatusCode)
		if text := http.StatusText(e.StatusCode); text != "" {
			s += " " + text
		}
		if b := excerpt(e.Body, dialErrorExcerpt); b != "" {
			return s + ": " + strconv.Quote(b)
		}
		if e.Err != nil {
			return s + ": " + e.Err.Error()
		}
		return s
	}
	if e.Err == nil {
		return "protows: dial failed"
	}
	return "protows: dial failed: " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *DialError) Unwrap() error { return e.Err }

// excerpt returns the start of b as one line of printable text: runs of
// white space become one space, control characters, invalid UTF-8 and
// other unprintable runes are dropped, and the text is cut at a rune
// boundary to at most limit bytes, "..." marking the cut.
func excerpt(b []byte, limit int) string {
	var sb strings.Builder
	space := false
	for len(b) > 0 && sb.Len() < limit+1 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		switch {
		case r == utf8.RuneError && n <= 1:
			continue
		case unicode.IsSpace(r):
			space = sb.Len() > 0
			continue
		case !unicode.IsPrint(r):
			continue
		}
		if space {
			sb.WriteByte(' ')
			space = false
		}
		sb.WriteRune(r)
	}
	s := sb.String()
	if len(s) <= limit && len(b) == 0 {
		return s
	}
	s = s[:min(len(s), limit)]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1] // a rune cut in two
	}
	return s + "..."
}

// ErrDisconnected is returned when a frame is sent to a client that is not
// connected and cannot hold it.
var ErrDisconnected = errors.New("protows: client disconnected")

// Dialer opens a client connection's socket. It is called from a goroutine
// of its own; ctx is cancelled when the client stops.
type Dialer func(ctx context.Context) (Transport, *ConnectResponse, error)

// ClientLink is shared between a client connection actor and the handle its
// creator keeps: whether it is connected, how many frames it holds, and how
// it ended.
type ClientLink struct {
	connected atomic.Bool
	held      atomic.Int64
	holdMax   int64
	closeReq  atomic.Bool
	done      chan struct{}
	reason    Reason // written before done is closed

	upMu sync.Mutex
	up   chan struct{} // closed while connected; replaced by an open one at each disconnect
}

func newClientLink(holdMax int) *ClientLink {
	return &ClientLink{holdMax: int64(holdMax), done: make(chan struct{}), up: make(chan struct{})}
}

// Connected reports whether the client has an open socket now.
func (l *ClientLink) Connected() bool { return l.connected.Load() }

// setConnected records that the client's socket is open or not; the actor
// calls it, WaitConnected waits on it.
func (l *ClientLink) setConnected(up bool) {
	l.upMu.Lock()
	defer l.upMu.Unlock()
	l.connected.Store(up)
	select {
	case <-l.up: // connected until now
		if !up {
			l.up = make(chan struct{})
		}
	default:
		if up {
			close(l.up)
		}
	}
}

// WaitConnected returns nil once the client is connected: at once if it is
// now, or at its next successful handshake. It returns ctx.Err() if ctx
// ends first, and an error matching [ErrClosed] if the client has ended
// (closed, stopped, or given up by its handler or reconnect policy); that
// error also wraps the error of the client's last Reason, so errors.As
// finds a [*DialError] when the last dial was refused.
func (l *ClientLink) WaitConnected(ctx context.Context) error {
	l.upMu.Lock()
	up := l.up
	l.upMu.Unlock()
	// An ended client is never connected (its channel was replaced before
	// done was closed), so up wins over done only when it really connected.
	select {
	case <-up:
		return nil
	default:
	}
	select {
	case <-l.done:
		return endedError(l.reason)
	default:
	}
	select {
	case <-up:
		return nil
	case <-l.done:
		return endedError(l.reason)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// endedError says that a client has ended, and why.
func endedError(r Reason) error {
	if r.Err != nil {
		return fmt.Errorf("%w: the client ended (%s %s): %w", ErrClosed, r.Kind, r.Code, r.Err)
	}
	return fmt.Errorf("%w: the client ended (%s)", ErrClosed, r)
}

// Done is closed once the client actor has terminated.
func (l *ClientLink) Done() <-chan struct{} { return l.done }

// Reason returns why the client ended; valid once Done is closed.
func (l *ClientLink) Reason() Reason {
	<-l.done
	return l.reason
}

// reserveHold takes a place for a frame held while disconnected.
func (l *ClientLink) reserveHold() bool {
	for {
		n := l.held.Load()
		if n >= l.holdMax {
			return false
		}
		if l.held.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// pushMsg carries a frame from Send to the actor.
type pushMsg struct {
	f        Frame
	reserved bool // a hold place was taken for it
}

// clientClose asks a connected client to close gracefully.
type clientClose struct {
	code   CloseCode
	reason string
}

// Send queues f for the peer of a client connection from outside the
// actor. While the client is disconnected the frame is held, in order, if
// fewer than the hold limit ([WithHoldWhileDisconnected]) are held already,
// and sent after the next connect; otherwise Send returns ErrDisconnected.
func (l *ClientLink) Send(sys *protoactor.ActorSystem, pid *protoactor.PID, f Frame) error {
	if !f.IsData() {
		return fmt.Errorf("protows: Send takes text or binary frames, not %s", f.Type)
	}
	select {
	case <-l.done:
		return ErrClosed
	default:
	}
	if l.connected.Load() {
		sys.Root.Send(pid, &pushMsg{f: f})
		return nil
	}
	if l.reserveHold() {
		sys.Root.Send(pid, &pushMsg{f: f, reserved: true})
		return nil
	}
	return ErrDisconnected
}

// SendControl queues a ping or an unsolicited pong (at most 125 bytes of
// payload) for the peer of a client connection from outside the actor, in
// order with the frames sent before it. It is not held while the client
// is disconnected: it returns ErrDisconnected then.
func (l *ClientLink) SendControl(sys *protoactor.ActorSystem, pid *protoactor.PID, f Frame) error {
	if f.Type != PingMessage && f.Type != PongMessage {
		return fmt.Errorf("protows: a control frame is a ping or a pong, not %s", f.Type)
	}
	if len(f.Data) > maxControlPayload {
		return fmt.Errorf("protows: %s payload of %d bytes is over the %d a control frame holds", f.Type, len(f.Data), maxControlPayload)
	}
	select {
	case <-l.done:
		return ErrClosed
	default:
	}
	if !l.connected.Load() {
		return ErrDisconnected
	}
	sys.Root.Send(pid, &pushMsg{f: f})
	return nil
}

// Close closes the client with code: gracefully (close handshake) when it
// is connected, at once otherwise. Terminate sees ReasonNormal. It does not
// wait; see Done.
func (l *ClientLink) Close(sys *protoactor.ActorSystem, pid *protoactor.PID, code CloseCode, reason string) {
	select {
	case <-l.done:
		return // ended already
	default:
	}
	l.closeReq.Store(true)
	if l.connected.Load() {
		sys.Root.Send(pid, &clientClose{code: code, reason: reason})
		return
	}
	// Disconnected: its mailbox may be suspended until the next reconnect;
	// a system message gets through.
	sys.Root.Stop(pid)
}
