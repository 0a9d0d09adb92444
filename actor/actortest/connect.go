package actortest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/handshake"
)

// DefaultHandshakeTimeout is how long [Connect] gives a handler's Connect,
// as a wsactor server does by default.
const DefaultHandshakeTimeout = 10 * time.Second

// ConnectOption configures [Connect] as the matching wsactor server option
// configures a server.
type ConnectOption func(*connectSettings)

type connectSettings struct {
	subprotocols []string
	timeout      time.Duration
}

// WithServerSubprotocols plays a server made with
// wsactor.WithSubprotocols(list...): the first of list the request offers
// is chosen before Connect runs, and Connect may choose another.
func WithServerSubprotocols(list ...string) ConnectOption {
	return func(s *connectSettings) { s.subprotocols = list }
}

// WithHandshakeTimeout plays a server made with
// wsactor.WithHandshakeTimeout(d): Connect's context ends after d, and a
// Connect still running then is answered 503 (default
// DefaultHandshakeTimeout).
func WithHandshakeTimeout(d time.Duration) ConnectOption {
	return func(s *connectSettings) { s.timeout = d }
}

// Connect runs h's Connect (see [actor.Connector]) on the opening
// handshake r, the way a wsactor server runs it, and returns the server's
// answer with the error Connect returned.
//
// r is any request, e.g. httptest.NewRequest("GET", "/ws?user=bob", nil);
// the subprotocols the client offers are read from its
// Sec-WebSocket-Protocol header. The checks a server makes before Connect
// (method, upgrade headers, origin, connection limit) are not made.
//
//   - Accepted: err is nil and the response has StatusCode 101, the
//     headers Connect set in Handshake.Header, the chosen subprotocol in
//     Subprotocol and in the Sec-WebSocket-Protocol header. The headers
//     the upgrade itself adds (Upgrade, Sec-WebSocket-Accept, ...) are not
//     included.
//   - Rejected: err is what Connect returned: a *actor.RejectError (see
//     [actor.Reject]) gives the status and its headers; any other error,
//     or a panic (a *actor.PanicError), gives 500. The response holds the
//     status and the headers the server would send with the error body.
//   - Connect still running after the handshake timeout: 503, and err is a
//     *actor.RejectError with that status. As on a server, Connect's
//     goroutine is not waited for; it lives until Connect returns.
//
// A handler without Connect (one that does not embed actor.BaseHandler)
// is accepted.
func Connect(h actor.Handler, r *http.Request, opts ...ConnectOption) (*actor.ConnectResponse, error) {
	s := connectSettings{timeout: DefaultHandshakeTimeout}
	for _, o := range opts {
		o(&s)
	}
	if s.timeout <= 0 {
		return nil, errors.New("actortest: the handshake timeout must be positive, as wsactor.NewServer requires")
	}
	if err := handshake.CheckHandler(h); err != nil {
		return &actor.ConnectResponse{StatusCode: http.StatusInternalServerError, Header: http.Header{}}, fmt.Errorf("actortest: %w (a server answers 500)", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	hs := handshake.New(ctx, r, s.subprotocols)
	answered, err := handshake.Connect(ctx, h, hs, nil)
	if !answered {
		err = actor.Reject(http.StatusServiceUnavailable, handshake.TimedOut)
	}
	var header http.Header
	if err == nil {
		header, err = handshake.AcceptHeader(hs)
	}
	if err != nil {
		w := httptest.NewRecorder()
		handshake.Reject(w, err)
		return &actor.ConnectResponse{StatusCode: w.Code, Header: w.Header()}, err
	}
	return &actor.ConnectResponse{
		StatusCode:  http.StatusSwitchingProtocols,
		Header:      header,
		Subprotocol: hs.Subprotocol(),
	}, nil
}
