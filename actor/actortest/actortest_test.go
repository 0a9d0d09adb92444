package actortest_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/actor/actortest"
	"github.com/protows/protows/internal/leaktest"
	"github.com/protows/protows/registry"
	"github.com/protows/protows/wsactor"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// Greeter greets whoever names themselves.
type Greeter struct{ actor.BaseHandler }

func (Greeter) HandleIn(c *actor.Context, f actor.Frame) error {
	return c.Push(actor.Text("hello, " + string(f.Data)))
}

func TestGreeter(t *testing.T) {
	c := actortest.New(t, &Greeter{})
	c.InText("bob")
	c.ExpectText("hello, bob")
	c.PeerClose(actor.CloseNormal, "")
	c.ExpectClose(actor.CloseNormal)
	if r := c.Terminated(); r.Kind != actor.ReasonRemote {
		t.Fatalf("terminated with %v", r)
	}
}

func TestSubprotocolAndAddress(t *testing.T) {
	var proto, addr string
	c := actortest.New(t, &initProbe{fn: func(c *actor.Context) error {
		proto, addr = c.Subprotocol(), c.RemoteAddr().String()
		return c.Push(actor.Text("ready"))
	}}, actortest.WithSubprotocol("chat.v1"))
	c.ExpectText("ready")
	assert.Equal(t, "chat.v1", proto)
	assert.Equal(t, "actortest", addr)
}

func TestNextDataSkipsControlFrames(t *testing.T) {
	c := actortest.New(t, &Greeter{})
	c.Ping("x")
	c.InText("ann")
	c.ExpectText("hello, ann") // the pong before it is skipped
}

// While writes are stalled the peer gets nothing; once resumed it gets
// what was held, in order, and the connection goes on.
func TestStalledWritesHoldFramesInOrder(t *testing.T) {
	c := actortest.New(t, &Greeter{})
	c.StallWrites()
	c.InText("a")
	c.InText("b")
	c.Timeout = 100 * time.Millisecond
	_, err := c.Next()
	assert.Error(t, err, "a frame reached the peer while writes were stalled")
	c.Timeout = actortest.DefaultTimeout
	c.ResumeWrites()
	c.ExpectText("hello, a")
	c.ExpectText("hello, b")
	c.InText("c")
	c.ExpectText("hello, c")
}

type initProbe struct {
	actor.BaseHandler
	fn func(*actor.Context) error
}

func (p *initProbe) Init(c *actor.Context) error { return p.fn(c) }

// quietSystem returns an actor system that logs nothing, shut down when
// the test ends.
func quietSystem(t testing.TB) *protoactor.ActorSystem {
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	t.Cleanup(sys.Shutdown)
	return sys
}

// Whichever way the connection closes first, ExpectClose answers its close
// frame, so Terminate follows at once instead of after the 5 s close
// timeout.
func TestExpectCloseCompletesTheCloseHandshake(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(c *actortest.Conn)
		code  actor.CloseCode
		kind  actor.ReasonKind
	}{
		{"Stop", func(c *actortest.Conn) { c.InText("stop") }, actor.ClosePolicyViolation, actor.ReasonNormal},
		{"Context.Close", func(c *actortest.Conn) { c.InText("close") }, 4000, actor.ReasonNormal},
		{"failure", func(c *actortest.Conn) { c.InText("fail") }, actor.CloseInternalError, actor.ReasonError},
		{"Shutdown", func(c *actortest.Conn) {
			c.Send(&actor.Shutdown{Code: actor.CloseServiceRestart, Reason: "restarting"})
		}, actor.CloseServiceRestart, actor.ReasonShutdown},
		{"stopped from outside", func(c *actortest.Conn) { c.System().Root.Stop(c.PID()) }, actor.CloseGoingAway, actor.ReasonShutdown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := actortest.New(t, &closer{})
			// Well under the close timeout (wsactor.DefaultCloseTimeout), so
			// an unanswered close would fail Terminated.
			c.Timeout = wsactor.DefaultCloseTimeout / 2
			tc.close(c)
			c.ExpectClose(tc.code)
			r := c.Terminated()
			assert.Equal(t, tc.kind, r.Kind)
			assert.Equal(t, tc.code, r.Code)
			// After a failure or a stop the actor may run Terminate while
			// it is still closing the socket.
			c.WaitSocketClosed()
			assert.Equal(t, 1, c.TerminateCalls())
			c.PeerClose(actor.CloseNormal, "") // the peer has answered already: no effect
		})
	}
}

// With WithManualCloseAnswer the connection waits for the test to answer.
func TestManualCloseAnswer(t *testing.T) {
	c := actortest.New(t, &closer{}, actortest.WithManualCloseAnswer())
	c.InText("stop")
	assert.Equal(t, "bye", c.ExpectClose(actor.ClosePolicyViolation))
	assert.Equal(t, 0, c.TerminateCalls(), "terminated before the peer answered")
	assert.False(t, c.SocketClosed())
	c.PeerClose(actor.ClosePolicyViolation, "")
	r := c.Terminated()
	assert.Equal(t, actor.ReasonNormal, r.Kind)
	assert.Equal(t, actor.ClosePolicyViolation, r.Code)
}

// closer closes in the way each message asks.
type closer struct{ actor.BaseHandler }

func (closer) HandleIn(c *actor.Context, f actor.Frame) error {
	switch string(f.Data) {
	case "stop":
		return actor.Stop(actor.ClosePolicyViolation, "bye")
	case "close":
		return c.Close(4000, "done")
	case "fail":
		return errors.New("boom")
	}
	return nil
}

// A connection that pings the peer more often than Timeout does not keep
// NextData waiting: Timeout bounds the whole call.
func TestNextDataDeadlineSpansSkippedPings(t *testing.T) {
	c := actortest.New(t, &pinger{every: 5 * time.Millisecond})
	c.Timeout = 100 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := c.NextData()
		done <- err
	}()
	select {
	case err := <-done:
		assert.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("NextData still waiting after 5 s with a Timeout of 100 ms")
	}
	got, err := c.Next()
	require.NoError(t, err)
	assert.Equal(t, actor.PingMessage, got.Frame.Type, "the connection did not ping")
}

// pinger pings the peer every interval.
type pinger struct {
	actor.BaseHandler
	every time.Duration
}

func (p *pinger) Init(c *actor.Context) error {
	c.SendAfter(p.every, "tick")
	return nil
}

func (p *pinger) HandleInfo(c *actor.Context, msg any) error {
	c.SendAfter(p.every, "tick")
	return c.Ping([]byte("x"))
}

// Two connections with one registry: one registers a name, the other sends
// to it.
func TestWithRegistry(t *testing.T) {
	sys := quietSystem(t)
	reg, err := registry.NewLocal(sys)
	require.NoError(t, err)
	t.Cleanup(reg.Stop)

	alice := actortest.New(t, &member{name: "alice"}, actortest.WithSystem(sys), actortest.WithRegistry(reg))
	alice.ExpectText("registered as alice")
	bob := actortest.New(t, &member{name: "bob"}, actortest.WithSystem(sys), actortest.WithRegistry(reg))
	bob.ExpectText("registered as bob")

	bob.InText("alice:hi")
	alice.ExpectText("hi")
	bob.InText("carol:hi")
	bob.ExpectText("error: no such user: carol")

	// A second connection may not take a name in use (registry.Reject).
	dup := actortest.New(t, &member{name: "alice"}, actortest.WithSystem(sys), actortest.WithRegistry(reg))
	assert.Equal(t, "name taken", dup.ExpectClose(4009))
	assert.Equal(t, actor.ReasonNormal, dup.Terminated().Kind)
}

// member registers its name and sends "to:text" messages to the holder of
// name to.
type member struct {
	actor.BaseHandler
	name string
}

func (m *member) Init(c *actor.Context) error {
	if err := c.Register(m.name); err != nil {
		return actor.Stop(4009, "name taken")
	}
	return c.Push(actor.Text("registered as " + m.name))
}

func (m *member) HandleIn(c *actor.Context, f actor.Frame) error {
	to, text, _ := strings.Cut(string(f.Data), ":")
	if err := c.SendTo(to, actor.Text(text)); errors.Is(err, registry.ErrNotFound) {
		return c.Push(actor.Text("error: no such user: " + to))
	} else if err != nil {
		return err
	}
	return nil
}

func (m *member) HandleInfo(c *actor.Context, msg any) error {
	if f, ok := msg.(actor.Frame); ok {
		return c.Push(f)
	}
	return nil
}

// WithRegistry without WithSystem would leave the registry watching PIDs
// of another system: New refuses it.
func TestWithRegistryNeedsWithSystem(t *testing.T) {
	sys := quietSystem(t)
	reg, err := registry.NewLocal(sys)
	require.NoError(t, err)
	t.Cleanup(reg.Stop)
	tb := runTB(func(tb testing.TB) { actortest.New(tb, &member{name: "a"}, actortest.WithRegistry(reg)) })
	require.Len(t, tb.failures, 1)
	assert.Contains(t, tb.failures[0], "WithSystem")
}

// gate is a handler whose Connect does what the request's query asks.
type gate struct{ actor.BaseHandler }

func (gate) Connect(h *actor.Handshake) error {
	q := h.Request.URL.Query()
	switch q.Get("do") {
	case "reject":
		return actor.Reject(http.StatusUnauthorized, "user required")
	case "reject-with-header":
		return &actor.RejectError{Status: http.StatusUnauthorized, Message: "token required",
			Header: http.Header{"Www-Authenticate": {"Bearer"}}}
	case "fail":
		return errors.New("database down")
	case "panic":
		panic("boom")
	case "wait":
		<-h.Context().Done()
		return nil
	}
	if p := q.Get("proto"); p != "" {
		if err := h.SelectSubprotocol(p); err != nil {
			return err
		}
	}
	h.Header.Set("X-User", q.Get("user"))
	return nil
}

// Connect answers as a wsactor server does: each case is run through
// actortest.Connect and through a real server with the same options.
func TestConnect(t *testing.T) {
	for _, tc := range []struct {
		name      string
		query     string
		offered   []string
		server    []string // the server's subprotocols
		status    int
		header    http.Header // among the response headers
		proto     string
		errTarget any // what the error must match with errors.As
	}{
		{name: "accept", query: "user=bob", status: 101, header: http.Header{"X-User": {"bob"}}},
		{name: "server's subprotocol", query: "user=bob", offered: []string{"chat.v1", "chat.v2"}, server: []string{"chat.v2", "chat.v1"},
			status: 101, proto: "chat.v2", header: http.Header{"Sec-Websocket-Protocol": {"chat.v2"}}},
		{name: "Connect's subprotocol", query: "user=bob&proto=chat.v1", offered: []string{"chat.v1", "chat.v2"}, server: []string{"chat.v2"},
			status: 101, proto: "chat.v1", header: http.Header{"Sec-Websocket-Protocol": {"chat.v1"}}},
		{name: "no subprotocol in common", query: "user=bob", offered: []string{"chat.v1"}, server: []string{"chat.v3"}, status: 101},
		{name: "reject", query: "do=reject", status: 401, errTarget: new(*actor.RejectError)},
		{name: "reject with header", query: "do=reject-with-header", status: 401,
			header: http.Header{"Www-Authenticate": {"Bearer"}}, errTarget: new(*actor.RejectError)},
		{name: "unoffered subprotocol", query: "proto=chat.v9", offered: []string{"chat.v1"}, status: 500},
		{name: "error", query: "do=fail", status: 500},
		{name: "panic", query: "do=panic", status: 500, errTarget: new(*actor.PanicError)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/ws?"+tc.query, nil)
			if tc.offered != nil {
				r.Header.Set("Sec-WebSocket-Protocol", strings.Join(tc.offered, ", "))
			}
			got, err := actortest.Connect(gate{}, r, wsactor.WithSubprotocols(tc.server...))
			require.NotNil(t, got)
			assert.Equal(t, tc.status, got.StatusCode)
			assert.Equal(t, tc.proto, got.Subprotocol)
			for k, v := range tc.header {
				assert.Equal(t, v, got.Header[k], "header %s", k)
			}
			if tc.status == 101 {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
			if tc.errTarget != nil {
				assert.ErrorAs(t, err, tc.errTarget)
			}

			// The same handshake against a real server.
			srv := serve(t, gate{}, wsactor.WithSubprotocols(tc.server...))
			dialer := websocket.Dialer{Subprotocols: tc.offered, HandshakeTimeout: 5 * time.Second}
			ws, resp, err := dialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?"+tc.query, nil)
			require.NotNil(t, resp, "dial: %v", err)
			defer resp.Body.Close()
			if ws != nil {
				defer ws.Close()
			}
			assert.Equal(t, resp.StatusCode, got.StatusCode, "the server answered otherwise")
			assert.Equal(t, resp.Header.Get("Sec-WebSocket-Protocol"), got.Subprotocol)
			for k, v := range got.Header {
				assert.Equal(t, v, resp.Header[k], "the server's header %s differs", k)
			}
		})
	}
}

// serve runs h on a real wsactor server until the test ends.
func serve(t *testing.T, h actor.Handler, opts ...wsactor.ServerOption) *httptest.Server {
	sys := quietSystem(t)
	ws, err := wsactor.NewServer(sys, func() actor.Handler { return h }, opts...)
	require.NoError(t, err)
	srv := httptest.NewServer(ws)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, ws.Shutdown(ctx))
		srv.Close()
	})
	return srv
}

// A Connect that outlives the handshake timeout is answered 503.
func TestConnectTimeout(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/ws?do=wait", nil)
	got, err := actortest.Connect(gate{}, r, wsactor.WithHandshakeTimeout(10*time.Millisecond))
	assert.Equal(t, http.StatusServiceUnavailable, got.StatusCode)
	var re *actor.RejectError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusServiceUnavailable, re.Status)
}

// A handler without Connect is accepted.
func TestConnectWithoutConnector(t *testing.T) {
	got, err := actortest.Connect(bare{}, httptest.NewRequest(http.MethodGet, "/ws", nil))
	require.NoError(t, err)
	assert.Equal(t, http.StatusSwitchingProtocols, got.StatusCode)
}

// bare implements actor.Handler and nothing else.
type bare struct{}

func (bare) Init(*actor.Context) error                       { return nil }
func (bare) HandleIn(*actor.Context, actor.Frame) error      { return nil }
func (bare) HandleInfo(*actor.Context, any) error            { return nil }
func (bare) HandleControl(*actor.Context, actor.Frame) error { return nil }
func (bare) Terminate(*actor.Context, actor.Reason)          {}

// Options a server would refuse are refused by Connect and New alike.
func TestInvalidOptionsRefused(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	_, err := actortest.Connect(gate{}, r, wsactor.WithHandshakeTimeout(0))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "timeouts must be positive")

	tb := runTB(func(tb testing.TB) {
		actortest.New(tb, actor.BaseHandler{}, actortest.WithConnOptions(wsactor.WithOutboundLimit(-1, 0)))
	})
	require.Len(t, tb.failures, 1)
	assert.Contains(t, tb.failures[0], "outbound limit")
}

// Connect refuses every option NewServer refuses, connection settings
// included, though it runs no connection.
func TestConnectRefusesWhatNewServerRefuses(t *testing.T) {
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer sys.Shutdown()
	for name, o := range map[string]wsactor.Option{
		"close timeout 0":    wsactor.WithCloseTimeout(0),
		"negative keepalive": wsactor.WithKeepalive(-time.Second, 0),
		"outbound limit -1":  wsactor.WithOutboundLimit(-1, 0),
		"unknown overflow":   wsactor.WithOverflowPolicy(wsactor.OverflowPolicy(9)),
		"handshake timeout":  wsactor.WithHandshakeTimeout(0),
	} {
		t.Run(name, func(t *testing.T) {
			_, serr := wsactor.NewServer(sys, func() actor.Handler { return actor.BaseHandler{} }, o)
			require.Error(t, serr)
			_, cerr := actortest.Connect(actor.BaseHandler{}, httptest.NewRequest(http.MethodGet, "/ws", nil), o)
			assert.Error(t, cerr)
		})
	}
}
