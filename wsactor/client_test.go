package wsactor_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/supervision"
	"github.com/protows/protows/wsactor"
)

// peerServer is a hand-written gorilla server the tests drive: it can
// refuse handshakes, and hands each accepted connection to the test.
type peerServer struct {
	hs       *httptest.Server
	url      string
	attempts atomic.Int32
	refuse   func(attempt int) int // HTTP status to refuse with, 0 to accept
	conns    chan *websocket.Conn
	headers  chan http.Header
}

func newPeerServer(t *testing.T, refuse func(int) int) *peerServer {
	p := &peerServer{refuse: refuse, conns: make(chan *websocket.Conn, 100), headers: make(chan http.Header, 100)}
	up := websocket.Upgrader{Subprotocols: []string{"feed.v1"}}
	p.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(p.attempts.Add(1))
		if p.refuse != nil {
			if status := p.refuse(n); status != 0 {
				http.Error(w, "not now", status)
				return
			}
		}
		c, err := up.Upgrade(w, r, http.Header{"X-Attempt": {fmt.Sprint(n)}})
		if err != nil {
			return
		}
		p.headers <- r.Header
		p.conns <- c
	}))
	t.Cleanup(p.hs.Close)
	p.url = "ws" + strings.TrimPrefix(p.hs.URL, "http")
	return p
}

func (p *peerServer) accept(t *testing.T) *websocket.Conn {
	t.Helper()
	select {
	case c := <-p.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(wait):
		t.Fatal("the client did not connect")
	}
	return nil
}

// feed is a client handler that subscribes after every connect and
// records what happens.
type feed struct {
	actor.BaseHandler
	connects   int // handler state: survives reconnects
	got        chan string
	connected  chan *actor.ConnectResponse
	disconnect chan actor.Reason
	terminated chan actor.Reason
	decide     func(actor.Reason) actor.Decision
	info       func(*actor.Context, any) error
	pids       chan *protoactor.PID
}

func newFeed() *feed {
	return &feed{got: make(chan string, 100), connected: make(chan *actor.ConnectResponse, 100),
		disconnect: make(chan actor.Reason, 100), terminated: make(chan actor.Reason, 1), pids: make(chan *protoactor.PID, 100)}
}

func (f *feed) HandleConnect(c *actor.Context, r *actor.ConnectResponse) error {
	f.connects++
	f.pids <- c.Self()
	f.connected <- r
	return c.Push(actor.Text(fmt.Sprint("subscribe ", f.connects)))
}

func (f *feed) HandleIn(_ *actor.Context, fr actor.Frame) error {
	f.got <- string(fr.Data)
	return nil
}

func (f *feed) HandleInfo(c *actor.Context, msg any) error {
	if f.info != nil {
		return f.info(c, msg)
	}
	if s, ok := msg.(string); ok {
		return c.Push(actor.Text("cast " + s))
	}
	return nil
}

func (f *feed) HandleDisconnect(_ *actor.Context, r actor.Reason) actor.Decision {
	f.disconnect <- r
	if f.decide != nil {
		return f.decide(r)
	}
	return actor.ReconnectByPolicy
}

func (f *feed) Terminate(_ *actor.Context, r actor.Reason) { f.terminated <- r }

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("no %s", what)
	}
	var zero T
	return zero
}

func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	_, data, err := c.ReadMessage()
	require.NoError(t, err)
	return string(data)
}

// fastPolicy retries within milliseconds.
func fastPolicy() supervision.Policy {
	return supervision.Policy{Backoff: supervision.Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond}}
}

// decisions subscribes to the supervision events of sys.
func decisions(t *testing.T, sys *protoactor.ActorSystem) <-chan *supervision.Event {
	ch := make(chan *supervision.Event, 100)
	sub := sys.EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*supervision.Event); ok {
			ch <- e
		}
	})
	t.Cleanup(func() { sys.EventStream.Unsubscribe(sub) })
	return ch
}

func spawnClient(t *testing.T, sys *protoactor.ActorSystem, url string, h actor.ClientHandler, opts ...wsactor.ClientOption) *wsactor.Client {
	t.Helper()
	c, err := wsactor.SpawnClient(sys, url, h, append([]wsactor.ClientOption{wsactor.WithKeepalive(0, 0)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func TestClientConnectsSendsAndReceives(t *testing.T) {
	sys := newSystem(t)
	p := newPeerServer(t, nil)
	f := newFeed()
	c := spawnClient(t, sys, p.url, f, wsactor.WithSubprotocols("feed.v1"), wsactor.WithHeader(http.Header{"Authorization": {"Bearer t"}}))
	srv := p.accept(t)
	resp := recv(t, f.connected, "connect")
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	assert.Equal(t, "feed.v1", resp.Subprotocol)
	assert.Equal(t, "1", resp.Header.Get("X-Attempt"))
	assert.Equal(t, "Bearer t", recv(t, p.headers, "headers").Get("Authorization"))
	// Connected once HandleConnect has returned, which may be just after
	// it reported the connect.
	require.NoError(t, c.WaitConnected(waitCtx(t)))
	assert.True(t, c.Connected())

	assert.Equal(t, "subscribe 1", readText(t, srv))
	require.NoError(t, c.Send(actor.Text("from outside")))
	assert.Equal(t, "from outside", readText(t, srv))
	c.Cast("ping me")
	assert.Equal(t, "cast ping me", readText(t, srv))
	require.NoError(t, srv.WriteMessage(websocket.TextMessage, []byte("tick")))
	assert.Equal(t, "tick", recv(t, f.got, "message"))

	// Close: a close handshake with 1000, no reconnect.
	go func() {
		for {
			if _, _, err := srv.ReadMessage(); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, c.Close(ctx))
	r := recv(t, f.terminated, "terminate")
	assert.Equal(t, actor.ReasonNormal, r.Kind)
	assert.Equal(t, actor.CloseNormal, r.Code)
	assert.Equal(t, int32(1), p.attempts.Load())
	assert.ErrorIs(t, c.Send(actor.Text("late")), actor.ErrClosed)
}

func TestClientReconnectsWithSamePIDAndState(t *testing.T) {
	sys := newSystem(t)
	p := newPeerServer(t, nil)
	f := newFeed()
	c := spawnClient(t, sys, p.url, f, wsactor.WithReconnect(fastPolicy()))
	for i := 1; i <= 3; i++ {
		srv := p.accept(t)
		assert.Equal(t, fmt.Sprint("subscribe ", i), readText(t, srv), "handler state survived %d reconnects", i-1)
		assert.Equal(t, c.PID().Id, recv(t, f.pids, "pid").Id)
		require.NoError(t, srv.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "restart"), time.Now().Add(wait)))
		r := recv(t, f.disconnect, "disconnect")
		assert.Equal(t, actor.ReasonRemote, r.Kind)
		assert.Equal(t, actor.CloseGoingAway, r.Code)
	}
	p.accept(t)
}

func TestClientReconnectsAfterNetworkDrop(t *testing.T) {
	sys := newSystem(t)
	p := newPeerServer(t, nil)
	f := newFeed()
	spawnClient(t, sys, p.url, f, wsactor.WithReconnect(fastPolicy()))
	srv := p.accept(t)
	require.NoError(t, srv.NetConn().Close())
	r := recv(t, f.disconnect, "disconnect")
	assert.Equal(t, actor.ReasonError, r.Kind)
	assert.Equal(t, actor.CloseAbnormal, r.Code)
	p.accept(t)
}

func TestClientBackoffGrowsToCapWithJitter(t *testing.T) {
	sys := newSystem(t)
	ev := decisions(t, sys)
	// The server refuses the first 6 handshakes.
	p := newPeerServer(t, func(n int) int {
		if n <= 6 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	f := newFeed()
	policy := supervision.Policy{Backoff: supervision.Backoff{
		Min: time.Millisecond, Max: 8 * time.Millisecond, Multiplier: 2,
		Rand: func() float64 { return 0.5 }, // half the ceiling: checks the jitter is applied
	}}
	spawnClient(t, sys, p.url, f, wsactor.WithReconnect(policy))
	want := []time.Duration{500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond}
	for i, w := range want {
		e := recv(t, ev, "decision")
		assert.Equal(t, supervision.Restart, e.Directive)
		assert.Equal(t, i+1, e.Attempt)
		assert.Equal(t, w, e.Delay, "attempt %d", i+1)
		assert.Equal(t, "backoff", e.Why)
		var dErr *actor.DialError
		require.ErrorAs(t, recv(t, f.disconnect, "disconnect").Err, &dErr)
		assert.Equal(t, http.StatusServiceUnavailable, dErr.StatusCode)
	}
	p.accept(t)
	recv(t, f.connected, "connect")
}

func TestClientBackoffJitterStaysUnderCeiling(t *testing.T) {
	sys := newSystem(t)
	ev := decisions(t, sys)
	p := newPeerServer(t, func(n int) int {
		if n <= 8 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	b := supervision.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}
	spawnClient(t, sys, p.url, newFeed(), wsactor.WithReconnect(supervision.Policy{Backoff: b}))
	distinct := map[time.Duration]bool{}
	for i := 1; i <= 8; i++ {
		e := recv(t, ev, "decision")
		assert.LessOrEqual(t, e.Delay, b.Ceiling(i))
		assert.GreaterOrEqual(t, e.Delay, time.Duration(0))
		distinct[e.Delay] = true
	}
	assert.Greater(t, len(distinct), 1, "delays are jittered")
	p.accept(t)
}

func TestClientBudgetStops(t *testing.T) {
	sys := newSystem(t)
	ev := decisions(t, sys)
	p := newPeerServer(t, func(int) int { return http.StatusServiceUnavailable })
	f := newFeed()
	policy := fastPolicy()
	policy.MaxAttempts, policy.Window = 3, time.Minute
	c := spawnClient(t, sys, p.url, f, wsactor.WithReconnect(policy))
	for range 3 {
		assert.Equal(t, supervision.Restart, recv(t, ev, "decision").Directive)
	}
	e := recv(t, ev, "decision")
	assert.Equal(t, supervision.Stop, e.Directive)
	assert.Equal(t, "budget", e.Why)
	r := recv(t, f.terminated, "terminate")
	assert.Equal(t, actor.ReasonError, r.Kind)
	recv(t, c.Done(), "end of the client actor")
	assert.Equal(t, int32(4), p.attempts.Load())
	assert.Equal(t, r, c.Reason())
}

func TestClientAttemptsResetAfterStablePeriod(t *testing.T) {
	sys := newSystem(t)
	ev := decisions(t, sys)
	var refusing atomic.Bool
	refusing.Store(true)
	p := newPeerServer(t, func(int) int {
		if refusing.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	policy := fastPolicy()
	policy.StablePeriod = 50 * time.Millisecond
	f := newFeed()
	spawnClient(t, sys, p.url, f, wsactor.WithReconnect(policy))
	assert.Equal(t, 1, recv(t, ev, "decision").Attempt)
	assert.Equal(t, 2, recv(t, ev, "decision").Attempt)
	refusing.Store(false)
	srv := p.accept(t)
	// Up for longer than the stable period, then dropped: counting starts
	// over. The client counts its uptime from before HandleConnect, so the
	// period is waited out from there, not from the server's accept.
	recv(t, f.connected, "connect")
	stable := time.After(policy.StablePeriod + 10*time.Millisecond)
	select {
	case e := <-ev:
		t.Fatalf("unexpected decision %+v", e)
	case <-stable:
	}
	require.NoError(t, srv.NetConn().Close())
	assert.Equal(t, 1, recv(t, ev, "decision").Attempt)
	p.accept(t)
}

func TestClientTerminalCloseCodes(t *testing.T) {
	for _, tc := range []struct {
		code      int
		reconnect bool
	}{
		{1000, true}, {1001, true}, {1011, true}, {1012, true}, {1013, true}, {1014, true},
		{1002, false}, {1003, false}, {1007, false}, {1008, false}, {1009, false}, {1010, false}, {4000, false}, {4999, false},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			sys := newSystem(t)
			p := newPeerServer(t, nil)
			f := newFeed()
			c := spawnClient(t, sys, p.url, f, wsactor.WithReconnect(fastPolicy()))
			srv := p.accept(t)
			require.NoError(t, srv.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(tc.code, "bye"), time.Now().Add(wait)))
			r := recv(t, f.disconnect, "disconnect")
			assert.Equal(t, actor.CloseCode(tc.code), r.Code)
			if tc.reconnect {
				p.accept(t)
				return
			}
			r = recv(t, f.terminated, "terminate")
			assert.Equal(t, actor.ReasonRemote, r.Kind)
			assert.Equal(t, actor.CloseCode(tc.code), r.Code)
			recv(t, c.Done(), "end of the client actor")
			assert.Equal(t, int32(1), p.attempts.Load(), "no reconnect after %d", tc.code)
		})
	}
}

func TestClientHandlerDecisions(t *testing.T) {
	t.Run("stop", func(t *testing.T) {
		sys := newSystem(t)
		p := newPeerServer(t, nil)
		f := newFeed()
		f.decide = func(actor.Reason) actor.Decision { return actor.StopReconnecting }
		c := spawnClient(t, sys, p.url, f, wsactor.WithReconnect(fastPolicy()))
		require.NoError(t, p.accept(t).NetConn().Close())
		recv(t, f.terminated, "terminate")
		recv(t, c.Done(), "end of the client actor")
		assert.Equal(t, int32(1), p.attempts.Load())
	})
	t.Run("after", func(t *testing.T) {
		sys := newSystem(t)
		ev := decisions(t, sys)
		p := newPeerServer(t, nil)
		f := newFeed()
		f.decide = func(actor.Reason) actor.Decision { return actor.ReconnectAfter(20 * time.Millisecond) }
		spawnClient(t, sys, p.url, f, wsactor.WithReconnect(fastPolicy()))
		require.NoError(t, p.accept(t).NetConn().Close())
		e := recv(t, ev, "decision")
		assert.Equal(t, "handler", e.Why)
		assert.Equal(t, 20*time.Millisecond, e.Delay)
		p.accept(t)
	})
	t.Run("reconnect now even after a terminal code", func(t *testing.T) {
		sys := newSystem(t)
		p := newPeerServer(t, nil)
		f := newFeed()
		f.decide = func(actor.Reason) actor.Decision { return actor.ReconnectNow }
		spawnClient(t, sys, p.url, f)
		srv := p.accept(t)
		require.NoError(t, srv.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, ""), time.Now().Add(wait)))
		p.accept(t)
	})
}

func TestClientHoldsFramesWhileDisconnected(t *testing.T) {
	sys := newSystem(t)
	var refusing atomic.Bool
	p := newPeerServer(t, func(int) int {
		if refusing.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	f := newFeed()
	c := spawnClient(t, sys, p.url, f, wsactor.WithReconnect(fastPolicy()), wsactor.WithHoldWhileDisconnected(5))
	srv := p.accept(t)
	assert.Equal(t, "subscribe 1", readText(t, srv))
	refusing.Store(true)
	require.NoError(t, srv.NetConn().Close())
	recv(t, f.disconnect, "disconnect")
	require.Eventually(t, func() bool { return !c.Connected() }, wait, time.Millisecond)

	var errs []error
	for i := range 7 {
		errs = append(errs, c.Send(actor.Text(fmt.Sprint("held ", i))))
	}
	for i, err := range errs {
		if i < 5 {
			assert.NoError(t, err, "frame %d", i)
		} else {
			assert.ErrorIs(t, err, actor.ErrDisconnected, "frame %d", i)
		}
	}
	refusing.Store(false)
	srv = p.accept(t)
	assert.Equal(t, "subscribe 2", readText(t, srv), "HandleConnect's frames go first")
	for i := range 5 {
		assert.Equal(t, fmt.Sprint("held ", i), readText(t, srv))
	}
	// The hold is free again.
	require.NoError(t, c.Send(actor.Text("after")))
	assert.Equal(t, "after", readText(t, srv))
}

func TestClientWithoutHoldReportsDisconnected(t *testing.T) {
	sys := newSystem(t)
	p := newPeerServer(t, func(int) int { return http.StatusServiceUnavailable })
	policy := fastPolicy()
	policy.Backoff.Min, policy.Backoff.Max = time.Hour, time.Hour
	c := spawnClient(t, sys, p.url, newFeed(), wsactor.WithReconnect(policy))
	assert.ErrorIs(t, c.Send(actor.Text("x")), actor.ErrDisconnected)
}

func TestClientCloseWhileWaitingToReconnect(t *testing.T) {
	sys := newSystem(t)
	p := newPeerServer(t, func(int) int { return http.StatusServiceUnavailable })
	policy := fastPolicy()
	policy.Backoff.Min, policy.Backoff.Max = time.Hour, time.Hour
	f := newFeed()
	c := spawnClient(t, sys, p.url, f, wsactor.WithReconnect(policy))
	recv(t, f.disconnect, "disconnect")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, c.Close(ctx))
	r := recv(t, f.terminated, "terminate")
	assert.Equal(t, actor.ReasonNormal, r.Kind)
}

func TestClientAgainstProtowsServer(t *testing.T) {
	ev := newEvents()
	e := echoEnv(t, ev)
	f := newFeed()
	c := spawnClient(t, e.sys, e.url, f)
	assert.Equal(t, "subscribe 1", recv(t, f.got, "echo"))
	require.NoError(t, c.Send(actor.Binary([]byte{1, 2})))
	assert.Equal(t, "\x01\x02", recv(t, f.got, "echo"))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, c.Close(ctx))
	r := ev.reason(t)
	assert.Equal(t, actor.ReasonRemote, r.Kind)
	assert.Equal(t, actor.CloseNormal, r.Code)
}

func TestSpawnClientValidates(t *testing.T) {
	sys := newSystem(t)
	_, err := wsactor.SpawnClient(sys, "http://example.com", newFeed())
	assert.Error(t, err)
	_, err = wsactor.SpawnClient(sys, "ws://x", newFeed(), wsactor.WithReadLimit(-1))
	assert.Error(t, err)
}

// A handler's ReconnectNow does not escape the policy's budget.
func TestClientBudgetAppliesToHandlerDecisions(t *testing.T) {
	sys := newSystem(t)
	ev := decisions(t, sys)
	p := newPeerServer(t, func(int) int { return http.StatusServiceUnavailable })
	f := newFeed()
	f.decide = func(actor.Reason) actor.Decision { return actor.ReconnectNow }
	policy := fastPolicy()
	policy.MaxAttempts, policy.Window = 3, time.Minute
	c := spawnClient(t, sys, p.url, f, wsactor.WithReconnect(policy))
	for range 3 {
		assert.Equal(t, "handler", recv(t, ev, "decision").Why)
	}
	e := recv(t, ev, "decision")
	assert.Equal(t, supervision.Stop, e.Directive)
	assert.Equal(t, "budget", e.Why)
	recv(t, c.Done(), "end of the client actor")
}

// A failed callback closes its socket with 1011 and the client reconnects;
// the failure does not follow it to the next socket.
func TestClientFailureBelongsToItsSocket(t *testing.T) {
	sys := newSystem(t)
	p := newPeerServer(t, nil)
	f := newFeed()
	failOnce := true
	f.info = func(c *actor.Context, msg any) error {
		if failOnce {
			failOnce = false
			return errors.New("boom")
		}
		return nil
	}
	c := spawnClient(t, sys, p.url, f, wsactor.WithReconnect(fastPolicy()))
	first := p.accept(t)
	readText(t, first) // subscribe
	c.Cast(42)         // fails
	// The peer reads the client's 1011 close frame (gorilla answers it).
	require.NoError(t, first.SetReadDeadline(time.Now().Add(wait)))
	_, _, err := first.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseInternalServerErr, ce.Code)
	assert.Equal(t, actor.CloseInternalError, recv(t, f.disconnect, "disconnect").Code)
	second := p.accept(t)
	readText(t, second)
	sys.Root.Stop(c.PID())
	r := recv(t, f.terminated, "terminate")
	assert.Equal(t, actor.ReasonShutdown, r.Kind, "not the first socket's failure: %v", r)
	assert.Equal(t, actor.CloseGoingAway, r.Code)
}
