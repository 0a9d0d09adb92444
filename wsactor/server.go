package wsactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/conn"
	"github.com/protows/protows/internal/handshake"
)

// ErrServerClosed is returned by Shutdown when called again.
var ErrServerClosed = errors.New("protows: server closed")

// Server is an http.Handler that accepts websocket connections and runs
// each as a connection actor, a child of a per-server supervisor in the
// given actor system. Create it with [NewServer]; mount it on any mux.
type Server struct {
	sys        *protoactor.ActorSystem
	newHandler func() actor.Handler
	cfg        *config
	conn       *conn.Config
	up         websocket.Upgrader
	sup        *conn.Supervisor
	log        *slog.Logger
	open       atomic.Int64 // connections and handshakes under WithMaxConnections

	mu     sync.Mutex
	closed bool
}

// NewServer returns a server whose connections run the handler newHandler
// makes, one value per connection. If the handler implements
// [actor.Connector], its Connect runs before the upgrade and may reject the
// request with an HTTP status. Connect is given the handshake timeout
// ([WithHandshakeTimeout]) and no more: it runs on a goroutine of its own,
// and when the timeout passes or the client goes away the server answers
// 503 without waiting for it. A Connect that ignores its context can thus
// delay no client, but its goroutine lives until it returns.
func NewServer(sys *protoactor.ActorSystem, newHandler func() actor.Handler, opts ...ServerOption) (*Server, error) {
	if sys == nil || newHandler == nil {
		return nil, errors.New("protows: NewServer needs an actor system and a handler constructor")
	}
	cfg, err := newServerConfig(opts)
	if err != nil {
		return nil, err
	}
	log := cfg.logger
	if log == nil {
		log = sys.Logger()
	}
	connCfg, err := cfg.connConfig(sys)
	if err != nil {
		return nil, err
	}
	s := &Server{
		sys:        sys,
		newHandler: newHandler,
		cfg:        cfg,
		conn:       connCfg,
		log:        log,
		sup:        conn.NewSupervisor(sys, nil),
	}
	s.up = websocket.Upgrader{
		HandshakeTimeout:  cfg.handshakeTimeout,
		ReadBufferSize:    minGorillaReadBuffer, // see readbuf.go
		WriteBufferSize:   cfg.writeBufferSize,
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: cfg.compression,
		// Origin and subprotocol are decided before Upgrade is called.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			http.Error(w, reason.Error(), status)
		},
	}
	return s, nil
}

// PID returns the PID of the supervisor whose children the connections are.
func (s *Server) PID() *protoactor.PID { return s.sup.PID() }

// Connections returns how many connection actors are alive.
func (s *Server) Connections(ctx context.Context) (int, error) { return s.sup.Children(ctx) }

// ServeHTTP runs the opening handshake: it checks the request is a
// websocket upgrade (405, 400 or 426 if not), checks the origin (403) and
// the connection limit (503), runs the handler's Connect (its chosen status
// on rejection, 503 past the handshake timeout), upgrades and spawns the
// connection actor. It returns as soon as the actor is spawned,
// so net/http releases the request's memory; the connection lives on in
// its actor.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.isClosed() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "websocket handshake must be a GET request", http.StatusMethodNotAllowed)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "expected a websocket upgrade request", http.StatusUpgradeRequired)
		return
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "unsupported websocket version", http.StatusUpgradeRequired)
		return
	}
	if origin, ok := s.originAllowed(r); !ok {
		s.log.Debug("websocket origin refused", slog.String("origin", origin), slog.String("host", r.Host))
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}

	if !s.reserve() {
		s.log.Debug("websocket connection limit reached", slog.Int("limit", s.cfg.maxConnections), slog.String("remote", r.RemoteAddr))
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	h, err := s.handler()
	if err != nil {
		s.release()
		s.log.Error("protows: no handler for a websocket connection; answered 500", slog.Any("error", err), slog.String("remote", r.RemoteAddr))
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.handshakeTimeout)
	defer cancel()
	hs := handshake.New(ctx, r, s.cfg.subprotocols)
	answered, err := handshake.Connect(ctx, h, hs, func(err error) {
		// Connect outlived the handshake: its place is given back here.
		s.release()
		var pe *actor.PanicError
		if errors.As(err, &pe) {
			s.log.Error("websocket Connect failed after the handshake ended", slog.Any("error", err), slog.String("remote", r.RemoteAddr))
		}
	})
	if !answered {
		s.log.Debug("websocket Connect outlived the handshake", slog.Any("error", ctx.Err()), slog.String("remote", r.RemoteAddr))
		http.Error(w, handshake.TimedOut, http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		s.release()
		s.reject(w, r, err)
		return
	}
	header, err := handshake.AcceptHeader(hs)
	if err != nil {
		s.release()
		s.reject(w, r, err)
		return
	}
	scan := newFrameScan()
	var pool *readPool
	if r.TLS == nil {
		// Plain TCP: the connection reads through a pooled buffer, taken
		// only while bytes wait (readbuf.go). Over TLS, gorilla's smallest
		// buffer reads from crypto/tls's.
		pool = readPoolFor(s.cfg.readBufferSize)
	}
	wc, err := s.up.Upgrade(scanningWriter{ResponseWriter: w, scan: scan, pool: pool}, r, header)
	if err != nil {
		s.release()
		s.log.Debug("websocket upgrade failed", slog.Any("error", err), slog.String("remote", r.RemoteAddr))
		return
	}
	wt := newTransport(wc, true, s.cfg.writeTimeout, s.cfg.readLimit, s.cfg.closeTimeout, scan)
	var t conn.Transport = wt
	if s.cfg.maxConnections > 0 {
		t = &countedTransport{transport: wt, s: s}
	}
	if _, err := s.sup.Spawn(s.conn.Props(h, t)); err != nil {
		_ = t.WriteClose(actor.CloseGoingAway, "server shutting down")
		_ = t.Close()
	}
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request, err error) {
	if re := handshake.Reject(w, err); re != nil {
		s.log.Debug("websocket handshake rejected", slog.Int("status", re.Status), slog.String("message", re.Message), slog.String("remote", r.RemoteAddr))
		return
	}
	s.log.Error("websocket Connect failed", slog.Any("error", err), slog.String("remote", r.RemoteAddr))
}

// handler makes the handler of a new connection, with the factory given
// to NewServer: a nil handler or a panic is an error.
func (s *Server) handler() (h actor.Handler, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the handler factory panicked: %v", p)
		}
	}()
	h = s.newHandler()
	return h, handshake.CheckHandler(h)
}

// reserve takes a place under the connection limit, if there is one free.
func (s *Server) reserve() bool {
	limit := int64(s.cfg.maxConnections)
	if limit == 0 {
		return true
	}
	for {
		n := s.open.Load()
		if n >= limit {
			return false
		}
		if s.open.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release gives back a place reserve took.
func (s *Server) release() {
	if s.cfg.maxConnections > 0 {
		s.open.Add(-1)
	}
}

// countedTransport is the transport of a connection that holds a place
// under the connection limit; its first Close gives the place back. The
// connection actor closes its transport when the connection ends, maybe
// more than once and from more than one goroutine.
type countedTransport struct {
	*transport
	s        *Server
	released atomic.Bool
}

func (t *countedTransport) Close() error {
	err := t.transport.Close()
	if t.released.CompareAndSwap(false, true) {
		t.s.release()
	}
	return err
}

// originAllowed applies the origin policy: no Origin header, the same host,
// or a host matching an allowed pattern.
func (s *Server) originAllowed(r *http.Request) (string, bool) {
	origins := r.Header["Origin"]
	if len(origins) == 0 {
		return "", true
	}
	u, err := url.Parse(origins[0])
	if err != nil || u.Host == "" {
		return origins[0], false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return origins[0], true
	}
	host := strings.ToLower(u.Host)
	for _, p := range s.cfg.originPatterns {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return origins[0], true
		}
	}
	return origins[0], false
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Shutdown stops accepting connections (new handshakes get 503), closes
// every connection with 1001 (going away), and waits until every connection
// actor has terminated or ctx expires; then it stops whatever is left,
// without waiting for peers, and returns ctx's error.
//
// net/http's Server.Shutdown does not know about upgraded connections, so
// call both, this one first:
//
//	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
//	defer cancel()
//	_ = wsServer.Shutdown(ctx)   // websocket connections
//	_ = httpServer.Shutdown(ctx) // listeners and plain HTTP requests
func (s *Server) Shutdown(ctx context.Context) error {
	return s.shutdown(ctx, actor.CloseGoingAway, "server shutting down")
}

// ShutdownForRestart is Shutdown with close code 1012 (service restart),
// which tells clients to reconnect soon.
func (s *Server) ShutdownForRestart(ctx context.Context) error {
	return s.shutdown(ctx, actor.CloseServiceRestart, "server restarting")
}

func (s *Server) shutdown(ctx context.Context, code actor.CloseCode, reason string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closed = true
	s.mu.Unlock()
	err := s.sup.Drain(ctx, &actor.Shutdown{Code: code, Reason: reason})
	if stopErr := s.sup.Stop(ctx); err == nil {
		err = stopErr
	}
	return err
}
