package actor

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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
