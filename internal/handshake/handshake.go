// Package handshake decides a server's answer to a websocket opening
// handshake from its handler's Connect. wsactor's server and actortest's
// Connect both use it, so what a handler test sees is what a server does.
package handshake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"runtime/debug"
	"slices"

	"github.com/gorilla/websocket"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/actorhook"
)

// New returns the handshake for r, bounded by ctx, with the first of
// protocols (the server's, in its order) that the client offers already
// selected; Connect may choose another.
func New(ctx context.Context, r *http.Request, protocols []string) *actor.Handshake {
	offered := websocket.Subprotocols(r)
	hs := actorhook.NewHandshake(ctx, r, offered).(*actor.Handshake)
	for _, p := range protocols {
		if slices.Contains(offered, p) {
			_ = hs.SelectSubprotocol(p)
			break
		}
	}
	return hs
}

// Connect runs h's Connect, when h is an [actor.Connector], and returns
// the error to answer with: nil to upgrade, a rejection otherwise (a
// Connect that returns nil after ctx ended is answered 503). answered is
// false when ctx ended before Connect returned: the handshake is then
// answered 503 without waiting, and err means nothing.
//
// Connect runs on a goroutine started here, one per handshake, which ends
// when Connect returns. It touches the handler and hs, which the caller
// reads only after taking the result; a panic in Connect becomes a
// *actor.PanicError, as net/http no longer stands between it and the
// process. The result is handed over on an unbuffered channel, so exactly
// one side knows it was not taken: the caller leaves without it only once
// ctx has ended, and the goroutine then calls late (if not nil) with
// Connect's error.
func Connect(ctx context.Context, h actor.Handler, hs *actor.Handshake, late func(error)) (answered bool, err error) {
	c, ok := h.(actor.Connector)
	if !ok {
		return true, nil
	}
	res := make(chan error)
	go func() {
		err := call(c, hs)
		select {
		case res <- err:
		case <-ctx.Done():
			if late != nil {
				late(err)
			}
		}
	}()
	select {
	case err := <-res:
		if err == nil && ctx.Err() != nil {
			err = actor.Reject(http.StatusServiceUnavailable, TimedOut)
		}
		return true, err
	case <-ctx.Done():
		return false, nil
	}
}

// TimedOut is the body of the 503 answered when Connect outlives the
// handshake timeout.
const TimedOut = "handshake timed out"

func call(c actor.Connector, hs *actor.Handshake) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &actor.PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return c.Connect(hs)
}

// CheckHandler reports a handler a server cannot run: nil, or a nil
// pointer (a factory's bug, answered 500).
func CheckHandler(h actor.Handler) error {
	if h == nil {
		return errors.New("the handler factory returned nil")
	}
	if v := reflect.ValueOf(h); v.Kind() == reflect.Pointer && v.IsNil() {
		return fmt.Errorf("the handler factory returned a nil %T", h)
	}
	return nil
}

// AcceptHeader returns the headers of the 101 response besides those the
// websocket upgrade itself sets: Connect's, and the chosen subprotocol. A
// Sec-WebSocket-Extensions header set by Connect is an error (the upgrader
// refuses it; compression is negotiated by wsactor.WithCompression), to
// be answered 500.
func AcceptHeader(hs *actor.Handshake) (http.Header, error) {
	header := hs.Header
	if header.Get("Sec-WebSocket-Extensions") != "" {
		return nil, errors.New("Connect set Sec-WebSocket-Extensions, which the upgrader refuses; use wsactor.WithCompression")
	}
	if p := hs.Subprotocol(); p != "" {
		header.Set("Sec-WebSocket-Protocol", p)
	}
	return header, nil
}

// Reject answers the rejection err on w: a *actor.RejectError with a
// status from 300 to 599 with its status, headers and message, anything
// else with 500. It returns the RejectError, or nil for a 500 (a failure of
// Connect, which the server logs as an error).
func Reject(w http.ResponseWriter, err error) *actor.RejectError {
	var re *actor.RejectError
	if errors.As(err, &re) && re.Status >= 300 && re.Status <= 599 {
		for k, v := range re.Header {
			w.Header()[k] = v
		}
		http.Error(w, re.Message, re.Status)
		return re
	}
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	return nil
}
