package wsactor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

const wait = 5 * time.Second

func newSystem(t testing.TB) *protoactor.ActorSystem {
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	t.Cleanup(sys.Shutdown)
	return sys
}

// env is a protows server behind a real httptest listener.
type env struct {
	sys *protoactor.ActorSystem
	srv *wsactor.Server
	hs  *httptest.Server
	url string
}

func newEnv(t testing.TB, newHandler func() actor.Handler, opts ...wsactor.ServerOption) *env {
	t.Helper()
	sys := newSystem(t)
	srv, err := wsactor.NewServer(sys, newHandler, opts...)
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		err := srv.Shutdown(ctx)
		if !errors.Is(err, wsactor.ErrServerClosed) {
			assert.NoError(t, err, "shutdown at cleanup")
		}
		hs.Close()
	})
	return &env{sys: sys, srv: srv, hs: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http")}
}

func (e *env) dial(t testing.TB, header http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(e.url, header)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return c
}

// dialStatus dials and returns the HTTP status of a refused handshake.
func (e *env) dialStatus(t testing.TB, d *websocket.Dialer, header http.Header) (int, string) {
	t.Helper()
	c, resp, err := d.Dial(e.url, header)
	if err == nil {
		c.Close()
		t.Fatalf("handshake succeeded, expected a refusal")
	}
	require.NotNil(t, resp, "no HTTP response: %v", err)
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode, strings.TrimSpace(body.String())
}

// probe is a handler whose behaviour is set per test and which reports its
// lifecycle on channels shared by all its connections.
type probe struct {
	actor.BaseHandler
	connect func(h *actor.Handshake) error
	init    func(c *actor.Context) error
	in      func(c *actor.Context, f actor.Frame) error
	info    func(c *actor.Context, msg any) error
	control func(c *actor.Context, f actor.Frame) error // nil: report f on ev.controls
	ev      *events
}

type events struct {
	inits    atomic.Int32
	pids     chan *protoactor.PID
	reasons  chan actor.Reason
	controls chan actor.Frame
}

func newEvents() *events {
	return &events{pids: make(chan *protoactor.PID, 2000), reasons: make(chan actor.Reason, 2000), controls: make(chan actor.Frame, 100)}
}

func (p *probe) Connect(h *actor.Handshake) error {
	if p.connect != nil {
		return p.connect(h)
	}
	return nil
}

func (p *probe) Init(c *actor.Context) error {
	p.ev.inits.Add(1)
	p.ev.pids <- c.Self()
	if p.init != nil {
		return p.init(c)
	}
	return nil
}

func (p *probe) HandleIn(c *actor.Context, f actor.Frame) error {
	if p.in != nil {
		return p.in(c, f)
	}
	return c.Push(f)
}

func (p *probe) HandleInfo(c *actor.Context, msg any) error {
	if p.info != nil {
		return p.info(c, msg)
	}
	return nil
}

func (p *probe) HandleControl(c *actor.Context, f actor.Frame) error {
	if p.control != nil {
		return p.control(c, f)
	}
	p.ev.controls <- f
	return nil
}

func (p *probe) Terminate(_ *actor.Context, r actor.Reason) { p.ev.reasons <- r }

func (ev *events) reason(t testing.TB) actor.Reason {
	t.Helper()
	select {
	case r := <-ev.reasons:
		return r
	case <-time.After(wait):
		t.Fatal("no connection terminated")
	}
	return actor.Reason{}
}

func (ev *events) pid(t testing.TB) *protoactor.PID {
	t.Helper()
	select {
	case p := <-ev.pids:
		return p
	case <-time.After(wait):
		t.Fatal("no connection started")
	}
	return nil
}

func echoEnv(t testing.TB, ev *events, opts ...wsactor.ServerOption) *env {
	return newEnv(t, func() actor.Handler { return &probe{ev: ev} }, opts...)
}

func read(t testing.TB, c *websocket.Conn) (int, string) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	mt, data, err := c.ReadMessage()
	require.NoError(t, err)
	return mt, string(data)
}

// readClose reads until the server's close frame and returns it.
func readClose(t testing.TB, c *websocket.Conn) *websocket.CloseError {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		return ce
	}
}

func TestEchoTextAndBinary(t *testing.T) {
	ev := newEvents()
	e := echoEnv(t, ev)
	c := e.dial(t, nil)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("héllo")))
	mt, s := read(t, c)
	assert.Equal(t, websocket.TextMessage, mt)
	assert.Equal(t, "héllo", s)
	require.NoError(t, c.WriteMessage(websocket.BinaryMessage, []byte{0, 0xff}))
	mt, s = read(t, c)
	assert.Equal(t, websocket.BinaryMessage, mt)
	assert.Equal(t, "\x00\xff", s)
}

func TestHandshakeRejections(t *testing.T) {
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, connect: func(h *actor.Handshake) error {
			switch h.Request.URL.Query().Get("token") {
			case "good":
				return nil
			case "":
				return actor.Reject(http.StatusUnauthorized, "missing token")
			case "taken":
				return actor.Reject(http.StatusConflict, "name taken")
			case "broken":
				return errors.New("database down")
			}
			return actor.Reject(http.StatusForbidden, "bad token")
		}}
	})
	base := e.url
	for _, tc := range []struct {
		query  string
		status int
		body   string
	}{
		{"", 401, "missing token"},
		{"?token=bad", 403, "bad token"},
		{"?token=taken", 409, "name taken"},
		{"?token=broken", 500, "Internal Server Error"},
	} {
		e.url = base + tc.query
		status, body := e.dialStatus(t, websocket.DefaultDialer, nil)
		assert.Equal(t, tc.status, status, tc.query)
		assert.Equal(t, tc.body, body, tc.query)
	}
	assert.Equal(t, int32(0), ev.inits.Load(), "a rejected handshake spawned an actor")
	n, err := e.srv.Connections(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 0, n)

	e.url = base + "?token=good"
	e.dial(t, nil)
	ev.pid(t)
}

func TestNotAWebsocketRequest(t *testing.T) {
	e := echoEnv(t, newEvents())
	resp, err := http.Get(e.hs.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUpgradeRequired, resp.StatusCode)
	assert.Equal(t, "websocket", resp.Header.Get("Upgrade"))

	resp, err = http.Post(e.hs.URL, "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestOrigins(t *testing.T) {
	e := echoEnv(t, newEvents(), wsactor.WithAllowedOrigins("*.example.com", "localhost:*"))
	host := strings.TrimPrefix(e.hs.URL, "http://")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + host, true},
		{"https://app.example.com", true},
		{"https://APP.Example.COM", true},
		{"http://localhost:3000", true},
		{"https://evil.com", false},
		{"https://example.com", false},
		{"https://app.example.com:8443", false},
		{"http://localhost", false},
		{"https://example.com.evil.com", false},
		{"null", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		if tc.ok {
			c, resp, err := websocket.DefaultDialer.Dial(e.url, h)
			require.NoError(t, err, tc.origin)
			resp.Body.Close()
			c.Close()
			continue
		}
		status, _ := e.dialStatus(t, websocket.DefaultDialer, h)
		assert.Equal(t, http.StatusForbidden, status, tc.origin)
	}
}

func TestDefaultOriginIsSameHost(t *testing.T) {
	e := echoEnv(t, newEvents())
	h := http.Header{"Origin": {"https://other.example"}}
	status, _ := e.dialStatus(t, websocket.DefaultDialer, h)
	assert.Equal(t, http.StatusForbidden, status)
}

func TestSubprotocols(t *testing.T) {
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev,
			connect: func(h *actor.Handshake) error {
				h.Header.Set("X-Session", "s1")
				if h.Request.URL.Query().Has("pick") {
					return h.SelectSubprotocol(h.Request.URL.Query().Get("pick"))
				}
				return nil
			},
			init: func(c *actor.Context) error { return c.Push(actor.Text("proto=" + c.Subprotocol())) },
		}
	}, wsactor.WithSubprotocols("v2", "v1"))
	base := e.url
	for _, tc := range []struct {
		query, want string
	}{
		{"", "v2"},
		{"?pick=v1", "v1"},
	} {
		e.url = base + tc.query
		d := websocket.Dialer{Subprotocols: []string{"v1", "v2"}}
		c, resp, err := d.Dial(e.url, nil)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tc.want, c.Subprotocol())
		assert.Equal(t, "s1", resp.Header.Get("X-Session"))
		_, s := read(t, c)
		assert.Equal(t, "proto="+tc.want, s)
		c.Close()
	}
	e.url = base + "?pick=v9"
	status, _ := e.dialStatus(t, &websocket.Dialer{Subprotocols: []string{"v1"}}, nil)
	assert.Equal(t, http.StatusInternalServerError, status)
}

func TestServerCloseWithCode(t *testing.T) {
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, in: func(c *actor.Context, f actor.Frame) error {
			if err := c.Push(actor.Text("last words")); err != nil {
				return err
			}
			return actor.Stop(actor.ClosePolicyViolation, "not allowed")
		}}
	})
	c := e.dial(t, nil)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("x")))
	_, s := read(t, c)
	assert.Equal(t, "last words", s)
	ce := readClose(t, c) // gorilla's client answers the close frame
	assert.Equal(t, 1008, ce.Code)
	assert.Equal(t, "not allowed", ce.Text)
	r := ev.reason(t)
	assert.Equal(t, actor.ReasonNormal, r.Kind)
	assert.Equal(t, actor.ClosePolicyViolation, r.Code)
}

func TestClientCloseReachesTerminate(t *testing.T) {
	ev := newEvents()
	e := echoEnv(t, ev)
	c := e.dial(t, nil)
	ev.pid(t)
	require.NoError(t, c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye now")))
	ce := readClose(t, c)
	assert.Equal(t, 4001, ce.Code, "the server echoes the code")
	r := ev.reason(t)
	assert.Equal(t, actor.ReasonRemote, r.Kind)
	assert.Equal(t, actor.CloseCode(4001), r.Code)
	assert.Equal(t, "bye now", r.Text)
	// The server closes TCP after the handshake.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	_, err := c.NetConn().Read(make([]byte, 1))
	assert.Error(t, err)
}

func TestNetworkDropIsAbnormal(t *testing.T) {
	ev := newEvents()
	e := echoEnv(t, ev)
	c := e.dial(t, nil)
	ev.pid(t)
	require.NoError(t, c.NetConn().Close())
	r := ev.reason(t)
	assert.Equal(t, actor.ReasonError, r.Kind)
	assert.Equal(t, actor.CloseAbnormal, r.Code)
}

func TestInvalidUTF8Closes1007(t *testing.T) {
	ev := newEvents()
	e := echoEnv(t, ev)
	c := e.dial(t, nil)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte{'a', 0xc3}))
	assert.Equal(t, websocket.CloseInvalidFramePayloadData, readClose(t, c).Code)
	r := ev.reason(t)
	assert.Equal(t, actor.CloseInvalidPayload, r.Code)
	assert.ErrorIs(t, r.Err, actor.ErrInvalidUTF8)
}

func TestReadLimitCloses1009(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compression=%v", compress), func(t *testing.T) {
			ev := newEvents()
			e := echoEnv(t, ev, wsactor.WithReadLimit(1000), wsactor.WithCompression(true))
			d := websocket.Dialer{EnableCompression: compress}
			c, resp, err := d.Dial(e.url, nil)
			require.NoError(t, err)
			resp.Body.Close()
			defer c.Close()
			require.NoError(t, c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("a"), 1000)))
			_, s := read(t, c)
			assert.Len(t, s, 1000, "a message at the limit passes")
			// Compressed, 100 KB of one letter is a few hundred bytes on the wire.
			require.NoError(t, c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("a"), 100_000)))
			assert.Equal(t, websocket.CloseMessageTooBig, readClose(t, c).Code)
			r := ev.reason(t)
			assert.Equal(t, actor.CloseMessageTooBig, r.Code)
			assert.ErrorIs(t, r.Err, actor.ErrMessageTooBig)
		})
	}
}

func TestPingIsAnsweredAndSeen(t *testing.T) {
	ev := newEvents()
	e := echoEnv(t, ev)
	c := e.dial(t, nil)
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	require.NoError(t, c.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(wait)))
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("x")))
	read(t, c) // runs the pong handler on the way
	select {
	case s := <-pong:
		assert.Equal(t, "hi", s)
	default:
		t.Fatal("no pong before the echo")
	}
	f := recv(t, ev.controls, "ping in HandleControl")
	assert.Equal(t, actor.PingMessage, f.Type)
	assert.Equal(t, "hi", string(f.Data))
}

// A peer that answers pings stays connected through several keepalive
// rounds; one that never answers is dropped with a timeout, and told why.
// The pong timeout, longer than the interval, sets the pace: a ping every
// 250 ms, each with 250 ms to be answered, which a loaded machine does not
// miss.
func TestKeepalive(t *testing.T) {
	const interval, pongTimeout = 50 * time.Millisecond, 250 * time.Millisecond
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, info: func(c *actor.Context, msg any) error { return c.Push(actor.Text(msg.(string))) }}
	}, wsactor.WithKeepalive(interval, pongTimeout), wsactor.WithCloseTimeout(100*time.Millisecond))

	// A client that reads answers pings and stays.
	alive := e.dial(t, nil)
	alivePID := ev.pid(t)
	pings := make(chan struct{}, 100)
	alive.SetPingHandler(func(s string) error {
		pings <- struct{}{}
		return alive.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(wait))
	})
	texts := make(chan string, 10)
	go func() {
		for {
			_, data, err := alive.ReadMessage()
			if err != nil {
				return
			}
			texts <- string(data)
		}
	}()

	// A client that never reads never pongs: it is dropped, not before its
	// pong was due, and its close frame says why.
	start := time.Now()
	dead := e.dial(t, nil)
	ev.pid(t)
	r := ev.reason(t)
	assert.Equal(t, actor.ReasonTimeout, r.Kind)
	assert.ErrorIs(t, r.Err, actor.ErrKeepaliveTimeout)
	assert.GreaterOrEqual(t, time.Since(start), interval+pongTimeout, "dropped before its pong was due")
	dead.SetPingHandler(func(string) error { return nil }) // reading now must not answer the old ping
	ce := readClose(t, dead)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	assert.Equal(t, "keepalive timeout", ce.Text)

	// A ping after the first goes out only once the one before it was
	// answered in time: three pings are two rounds passed.
	for i := range 3 {
		recv(t, pings, fmt.Sprint("ping ", i+1, " to the answering client"))
	}
	e.sys.Root.Send(alivePID, "still connected")
	assert.Equal(t, "still connected", recv(t, texts, "message to the answering client"))
	select {
	case r := <-ev.reasons:
		t.Fatalf("the answering client was dropped too: %v", r)
	default:
	}
	require.Eventually(t, func() bool {
		n, err := e.srv.Connections(context.Background())
		return err == nil && n == 1
	}, wait, time.Millisecond, "only the answering client is left")
}

func TestHandleInfoFromAnotherActor(t *testing.T) {
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, info: func(c *actor.Context, msg any) error {
			if s, ok := msg.(string); ok {
				return c.Push(actor.Text("news: " + s))
			}
			return nil
		}}
	})
	c := e.dial(t, nil)
	e.sys.Root.Send(ev.pid(t), "rain")
	_, s := read(t, c)
	assert.Equal(t, "news: rain", s)
}

func TestPanickingHandlerBesideHealthyOnes(t *testing.T) {
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, in: func(c *actor.Context, f actor.Frame) error {
			if string(f.Data) == "panic" {
				panic("handler bug")
			}
			return c.Push(f)
		}}
	})
	healthy := make([]*websocket.Conn, 5)
	for i := range healthy {
		healthy[i] = e.dial(t, nil)
	}
	bad := e.dial(t, nil)
	require.NoError(t, bad.WriteMessage(websocket.TextMessage, []byte("panic")))
	ce := readClose(t, bad)
	assert.Equal(t, websocket.CloseInternalServerErr, ce.Code)
	r := ev.reason(t)
	assert.Equal(t, actor.ReasonError, r.Kind)
	var pe *actor.PanicError
	assert.ErrorAs(t, r.Err, &pe)

	for i, c := range healthy {
		msg := fmt.Sprint("still here ", i)
		require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(msg)))
		_, s := read(t, c)
		assert.Equal(t, msg, s)
	}
}

func TestSlowReaderIsClosedWith1013(t *testing.T) {
	ev := newEvents()
	var pushed atomic.Int64
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, info: func(c *actor.Context, msg any) error {
			if err := c.Push(msg.(actor.Frame)); err != nil {
				return err
			}
			pushed.Add(1)
			return nil
		}}
	}, wsactor.WithOutboundLimit(64, 1<<20), wsactor.WithWriteTimeout(time.Second), wsactor.WithCloseTimeout(200*time.Millisecond))
	c := e.dial(t, nil) // and never read
	pid := ev.pid(t)
	payload := actor.Binary(bytes.Repeat([]byte("x"), 16<<10))
	// 8,000 x 16 KiB is far more than socket buffers hold. The sender is
	// never blocked: every Send returns at once.
	for range 8000 {
		e.sys.Root.Send(pid, payload)
	}
	r := ev.reason(t)
	assert.Equal(t, actor.ReasonError, r.Kind)
	assert.Equal(t, actor.CloseTryAgainLater, r.Code)
	assert.ErrorIs(t, r.Err, actor.ErrOutboxFull)
	assert.Less(t, pushed.Load(), int64(8000), "the queue did not stop growing")
	_ = c
}

func TestPeerThatIgnoresTheCloseHandshake(t *testing.T) {
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, init: func(*actor.Context) error { return actor.Stop(actor.CloseNormal, "bye") }}
	}, wsactor.WithCloseTimeout(100*time.Millisecond))
	c := e.dial(t, nil) // never reads, never answers
	r := ev.reason(t)
	assert.Equal(t, actor.ReasonNormal, r.Kind)
	// The server dropped TCP after the close timeout: reading finds the close
	// frame, then EOF.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	buf := make([]byte, 64)
	var err error
	for err == nil {
		_, err = c.NetConn().Read(buf)
	}
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the server kept the connection open")
}

func TestShutdown(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			ev := newEvents()
			e := echoEnv(t, ev)
			conns := make([]*websocket.Conn, 10)
			for i := range conns {
				conns[i] = e.dial(t, nil)
				ev.pid(t)
			}
			// Clients read, so they answer the close handshake.
			codes := make(chan int, len(conns))
			for _, c := range conns {
				go func() {
					for {
						_, _, err := c.ReadMessage()
						var ce *websocket.CloseError
						if errors.As(err, &ce) {
							codes <- ce.Code
							return
						}
						if err != nil {
							codes <- -1
							return
						}
					}
				}()
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			want, kind := websocket.CloseGoingAway, actor.ReasonShutdown
			if restart {
				require.NoError(t, e.srv.ShutdownForRestart(ctx))
				want = websocket.CloseServiceRestart
			} else {
				require.NoError(t, e.srv.Shutdown(ctx))
			}
			for range conns {
				assert.Equal(t, want, recv(t, codes, "close frame at a client"))
				r := ev.reason(t)
				assert.Equal(t, kind, r.Kind)
				assert.Equal(t, actor.CloseCode(want), r.Code)
			}
			status, _ := e.dialStatus(t, websocket.DefaultDialer, nil)
			assert.Equal(t, http.StatusServiceUnavailable, status)
			assert.ErrorIs(t, e.srv.Shutdown(ctx), wsactor.ErrServerClosed)
		})
	}
}

func TestShutdownDeadlineWithUnresponsivePeers(t *testing.T) {
	ev := newEvents()
	e := echoEnv(t, ev, wsactor.WithCloseTimeout(time.Minute))
	for range 3 {
		e.dial(t, nil) // never answer the close frame
		ev.pid(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, e.srv.Shutdown(ctx), context.DeadlineExceeded)
	// What was left is stopped anyway, without waiting for the peers.
	for range 3 {
		assert.Equal(t, actor.ReasonShutdown, ev.reason(t).Kind)
	}
}

func TestThousandConcurrentEchoConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 sockets")
	}
	const n = 1000
	ev := newEvents()
	e := echoEnv(t, ev)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, resp, err := websocket.DefaultDialer.Dial(e.url, nil)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			defer c.Close()
			for j := range 10 {
				msg := fmt.Sprintf("%d/%d", i, j)
				if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					errs <- err
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, got, err := c.ReadMessage()
				if err != nil {
					errs <- err
					return
				}
				if string(got) != msg {
					errs <- fmt.Errorf("got %q, want %q", got, msg)
					return
				}
			}
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for range n {
		assert.Equal(t, actor.ReasonRemote, ev.reason(t).Kind)
	}
	t.Logf("%d connections x 10 echoes, connected and closed in %v", n, time.Since(start))
}

// Messages of every size come through whole: empty, around the 4 KiB
// read buffer, large, fragmented and compressed, and exactly at a read
// limit larger than the buffer; one byte more closes with 1009.
func TestMessageSizes(t *testing.T) {
	const limit = 100_000
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compression=%v", compress), func(t *testing.T) {
			ev := newEvents()
			e := echoEnv(t, ev, wsactor.WithReadLimit(limit), wsactor.WithCompression(true))
			d := websocket.Dialer{EnableCompression: compress, WriteBufferSize: 1000}
			c, resp, err := d.Dial(e.url, nil)
			require.NoError(t, err)
			resp.Body.Close()
			defer c.Close()
			for _, n := range []int{0, 1, 4095, 4096, 4097, 8192, 70_000, limit} {
				msg := make([]byte, n)
				for i := range msg {
					msg[i] = byte(i*7 + n)
				}
				// WriteBufferSize 1000 makes the larger messages fragments.
				require.NoError(t, c.WriteMessage(websocket.BinaryMessage, msg))
				mt, got := read(t, c)
				assert.Equal(t, websocket.BinaryMessage, mt)
				assert.True(t, bytes.Equal(msg, []byte(got)), "a %d-byte message came back changed", n)
			}
			require.NoError(t, c.WriteMessage(websocket.BinaryMessage, make([]byte, limit+1)))
			assert.Equal(t, websocket.CloseMessageTooBig, readClose(t, c).Code)
			assert.Equal(t, actor.CloseMessageTooBig, ev.reason(t).Code)
		})
	}
}

// A peer that stops reading makes a write block; the write timeout ends it
// and the connection: Terminate sees the timeout. Writes before the stall
// went through, so the deadline must still hold for a write that starts
// later.
func TestWriteTimeoutEndsAStalledWrite(t *testing.T) {
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, info: func(c *actor.Context, msg any) error {
			return c.Push(msg.(actor.Frame))
		}}
	}, wsactor.WithOutboundLimit(1<<20, 1<<30), wsactor.WithWriteTimeout(300*time.Millisecond), wsactor.WithKeepalive(0, 0))
	c := e.dial(t, nil)
	pid := ev.pid(t)
	e.sys.Root.Send(pid, actor.Text("first"))
	_, s := read(t, c)
	require.Equal(t, "first", s)
	// Now the client reads nothing more: 256 MiB do not fit in socket buffers.
	big := actor.Binary(make([]byte, 1<<20))
	for range 256 {
		e.sys.Root.Send(pid, big)
	}
	r := ev.reason(t)
	assert.Equal(t, actor.ReasonError, r.Kind)
	var ne net.Error
	require.ErrorAs(t, r.Err, &ne)
	assert.True(t, ne.Timeout(), "ended by %v", r.Err)
}
