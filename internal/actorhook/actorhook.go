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
	"sync"
	"sync/atomic"

	protoactor "github.com/asynkron/protoactor-go/actor"
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

// StopNotice lets a connection actor tell the registries that hold its
// names and memberships that it has stopped, in place of their watching
// it: proto.actor's watch costs the watched actor about 700 bytes (its
// context extras and a watcher set), a notice a few dozen. The connection
// passes its notice in the context of its registry calls (WithStopNotice)
// and fires it when it stops.
type StopNotice struct {
	owner *protoactor.PID
	mu    sync.Mutex
	fired bool
	fns   []noticeFn
}

// NewStopNotice returns the notice of the actor owner.
func NewStopNotice(owner *protoactor.PID) *StopNotice { return &StopNotice{owner: owner} }

// For reports whether n is pid's notice (by address and id).
func (n *StopNotice) For(pid *protoactor.PID) bool {
	return pid != nil && n.owner.Address == pid.Address && n.owner.Id == pid.Id
}

type noticeFn struct {
	key any
	fn  func()
}

// Add has fn run when the actor stops, once per key (a registry), and
// reports true; or reports false when the actor has stopped already, and
// the caller must watch it instead.
func (n *StopNotice) Add(key any, fn func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fired {
		return false
	}
	for _, f := range n.fns {
		if f.key == key {
			return true
		}
	}
	n.fns = append(n.fns, noticeFn{key: key, fn: fn})
	return true
}

// Fire runs the functions added, once; later Adds report false.
func (n *StopNotice) Fire() {
	n.mu.Lock()
	fns := n.fns
	n.fired, n.fns = true, nil
	n.mu.Unlock()
	for _, f := range fns {
		f.fn()
	}
}

type stopNoticeKey struct{}

// WithStopNotice returns ctx carrying n, for the registry calls of the
// actor n belongs to.
func WithStopNotice(ctx context.Context, n *StopNotice) context.Context {
	return context.WithValue(ctx, stopNoticeKey{}, n)
}

// StopNoticeOf returns the notice ctx carries, or nil.
func StopNoticeOf(ctx context.Context) *StopNotice {
	n, _ := ctx.Value(stopNoticeKey{}).(*StopNotice)
	return n
}
