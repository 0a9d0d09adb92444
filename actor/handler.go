package actor

import (
	"context"
	"fmt"
	"net/http"
	"slices"
)

// Handler is the behaviour of one websocket connection. A connection actor
// calls it from its Receive, one callback at a time, so the handler value
// holds per-connection state without locks. Embed [BaseHandler] to get
// no-op defaults and write only the callbacks you need.
//
// A callback returns nil to go on, a [CloseError] (see [Stop]) to close the
// connection with that code, or any other error to fail: the failure goes to
// the actor's supervisor and the connection closes with 1011. A panic is a
// failure too; other connections are not affected. [ErrClosed] and
// [ErrOutboxFull] returned from a callback (typically passed on from
// [Context.Push]) are not failures: the connection is already closing or
// the overflow policy has acted.
type Handler interface {
	// Init runs once when the actor starts with a live socket, before any
	// message from the peer. It may push frames, schedule messages and talk
	// to other actors.
	Init(c *Context) error
	// HandleIn receives one whole data message from the peer. Text frames
	// are valid UTF-8.
	HandleIn(c *Context, f Frame) error
	// HandleInfo receives every message another actor (or a timer set with
	// [Context.SendAfter]) sends to the connection's PID, including
	// *protoactor.Terminated for actors the handler watches.
	HandleInfo(c *Context, msg any) error
	// HandleControl sees pings and pongs from the peer. A pong answering a
	// ping has already been sent when it runs.
	HandleControl(c *Context, f Frame) error
	// Terminate runs exactly once when the connection ends, after the
	// socket is closed (or while its last close frame is being written).
	// Pushing frames from it has no effect.
	Terminate(c *Context, r Reason)
}

// Connector is implemented by server handlers that inspect the opening
// handshake before the upgrade: authenticate the request, choose a
// subprotocol, set response headers. Returning an error rejects the
// connection with an HTTP response and no actor is spawned: a [RejectError]
// (see [Reject]) chooses the status, any other error is answered with 500.
type Connector interface {
	Connect(h *Handshake) error
}

// BaseHandler gives every [Handler] and [Connector] method a default:
// accept the handshake, ignore data, control frames and messages, do nothing
// on terminate. Embed it in a handler struct.
type BaseHandler struct{}

// Connect accepts every handshake.
func (BaseHandler) Connect(*Handshake) error { return nil }

// Init does nothing.
func (BaseHandler) Init(*Context) error { return nil }

// HandleIn ignores the message.
func (BaseHandler) HandleIn(*Context, Frame) error { return nil }

// HandleInfo ignores the message.
func (BaseHandler) HandleInfo(*Context, any) error { return nil }

// HandleControl ignores the control frame.
func (BaseHandler) HandleControl(*Context, Frame) error { return nil }

// Terminate does nothing.
func (BaseHandler) Terminate(*Context, Reason) {}

// Handshake is the opening handshake as a [Connector] sees it.
type Handshake struct {
	// Request is the client's upgrade request.
	Request *http.Request
	// Header holds extra headers for the 101 response (e.g. Set-Cookie).
	Header http.Header

	ctx         context.Context
	offered     []string
	subprotocol string
}

// Context is cancelled when the handshake times out or the client goes away.
func (h *Handshake) Context() context.Context { return h.ctx }

// Offered returns the subprotocols the client offered, in its order of
// preference.
func (h *Handshake) Offered() []string { return h.offered }

// SelectSubprotocol picks the subprotocol sent back to the client. It must
// be one the client offered.
func (h *Handshake) SelectSubprotocol(p string) error {
	if !slices.Contains(h.offered, p) {
		return fmt.Errorf("protows: subprotocol %q was not offered by the client", p)
	}
	h.subprotocol = p
	return nil
}

// Subprotocol returns the subprotocol chosen with SelectSubprotocol, or "".
func (h *Handshake) Subprotocol() string { return h.subprotocol }

// RejectError refuses a handshake with an HTTP status.
type RejectError struct {
	Status  int
	Message string
	Header  http.Header
}

// Error formats the rejection.
func (e *RejectError) Error() string {
	return fmt.Sprintf("protows: handshake rejected with %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Reject returns the error a [Connector] returns to refuse the connection
// with an HTTP status (e.g. 401, 403, 409) and a message for the body.
func Reject(status int, message string) error {
	return &RejectError{Status: status, Message: message}
}
