// Package actorhook lets the connection runtime (internal/conn) and the
// server build values of package actor whose fields are not exported: a
// handler's Context over a running connection, and a Handshake. Package
// actor sets the functions in its init; they are never nil once package
// actor is linked in, which every caller of this package imports.
//
// The values are typed any because this package cannot import actor (actor
// imports it). Callers assert the result: conn.Context(rt) and
// handshake.New do, in one place each.
package actorhook

import (
	"context"
	"net/http"
	"sync/atomic"
)

// NewContext returns an *actor.Context over rt, which must implement the
// runtime interface of package actor.
var NewContext func(rt any) any

// FrameEncoding returns the slot where a prepared *actor.Frame (see
// actor.Prepare) keeps its wire encoding, or nil when the frame is not
// prepared. f is an *actor.Frame.
var FrameEncoding func(f any) *atomic.Value

// NewHandshake returns an *actor.Handshake for r, whose client offered the
// subprotocols in offered; ctx bounds the handshake.
var NewHandshake func(ctx context.Context, r *http.Request, offered []string) any
