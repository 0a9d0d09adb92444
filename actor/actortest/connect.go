package actortest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/protows/protows/internal/conn"
	"github.com/protows/protows/wsactor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/handshake"
)

// Connect runs h's Connect (see [actor.Connector]) on the opening
// handshake r, the way a wsactor server given opts runs it, and returns
// the server's answer with the error Connect returned. Of the options,
// wsactor.WithSubprotocols (the first the request offers is chosen before
// Connect runs; Connect may choose another) and wsactor.WithHandshakeTimeout
// (Connect's context ends after it; default 10 s) apply; invalid options
// are refused as NewServer refuses them.
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
func Connect(h actor.Handler, r *http.Request, opts ...wsactor.Option) (*actor.ConnectResponse, error) {
	s, err := conn.FromOptions(nil, opts)
	if err != nil {
		return nil, fmt.Errorf("actortest: %w", err)
	}
	if err := handshake.CheckHandler(h); err != nil {
		return &actor.ConnectResponse{StatusCode: http.StatusInternalServerError, Header: http.Header{}}, fmt.Errorf("actortest: %w (a server answers 500)", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.HandshakeTimeout)
	defer cancel()
	hs := handshake.New(ctx, r, s.Subprotocols)
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
