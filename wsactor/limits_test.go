package wsactor_test

// Tests of the server's limits: the connection limit (WithMaxConnections)
// and the handshake timeout as a bound on Connect.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

func TestMaxConnectionsOption(t *testing.T) {
	sys := newSystem(t)
	newHandler := func() actor.Handler { return &probe{ev: newEvents()} }
	for _, tc := range []struct {
		n  int
		ok bool
	}{
		{-1, false},
		{0, true},
		{1, true},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			_, err := wsactor.NewServer(sys, newHandler, wsactor.WithMaxConnections(tc.n))
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, "max connections")
		})
	}
}

func TestMaxConnections(t *testing.T) {
	ev := newEvents()
	e := echoEnv(t, ev, wsactor.WithMaxConnections(3))
	conns := make([]*websocket.Conn, 3)
	for i := range conns {
		conns[i] = e.dial(t, nil)
		ev.pid(t)
	}
	status, body := e.dialStatus(t, websocket.DefaultDialer, nil)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "too many connections", body)
	assert.Equal(t, int32(3), ev.inits.Load(), "a refused handshake spawned an actor")

	// The socket is closed before Terminate runs, so once the server has
	// seen the connection end its place is free.
	require.NoError(t, conns[0].Close())
	ev.reason(t)
	c := e.dial(t, nil)
	ev.pid(t)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("in")))
	_, s := read(t, c)
	assert.Equal(t, "in", s)

	status, _ = e.dialStatus(t, websocket.DefaultDialer, nil)
	assert.Equal(t, http.StatusServiceUnavailable, status, "the limit holds after a place was reused")
}

// Handshakes racing for the last places: exactly the limit get through, in
// every round, and the others are refused with 503.
func TestMaxConnectionsUnderConcurrentDials(t *testing.T) {
	const limit, dialers = 5, 20
	ev := newEvents()
	e := echoEnv(t, ev, wsactor.WithMaxConnections(limit))
	for round := range 3 {
		start := make(chan struct{})
		type result struct {
			c      *websocket.Conn
			status int
			err    error
		}
		results := make(chan result, dialers)
		var wg sync.WaitGroup
		for range dialers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				d := websocket.Dialer{HandshakeTimeout: wait}
				c, resp, err := d.Dial(e.url, nil)
				r := result{c: c, err: err}
				if resp != nil {
					r.status = resp.StatusCode
					resp.Body.Close()
				}
				results <- r
			}()
		}
		close(start)
		wg.Wait()
		close(results)

		var open []*websocket.Conn
		refused := 0
		for r := range results {
			switch {
			case r.err == nil:
				open = append(open, r.c)
			case r.status == http.StatusServiceUnavailable:
				refused++
			default:
				t.Errorf("round %d: dial failed with status %d: %v", round, r.status, r.err)
			}
		}
		assert.Len(t, open, limit, "round %d: connections open at once", round)
		assert.Equal(t, dialers-limit, refused, "round %d: refused", round)
		n, err := e.srv.Connections(context.Background())
		require.NoError(t, err)
		assert.LessOrEqual(t, n, limit, "round %d: connection actors", round)

		// Close them all and wait until the server has seen each end.
		for _, c := range open {
			ev.pid(t)
			require.NoError(t, c.Close())
		}
		for range open {
			ev.reason(t)
		}
	}
}

// rawHandshake sends an upgrade request over a plain TCP connection and
// returns the server's response: it can send what a websocket client would
// not, here a Sec-WebSocket-Key that is not one.
func rawHandshake(t *testing.T, e *env, key string) *http.Response {
	t.Helper()
	nc, err := net.DialTimeout("tcp", e.hs.Listener.Addr().String(), wait)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(wait)))
	_, err = fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n",
		e.hs.Listener.Addr(), key)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

// A handshake refused by Connect or failing in the upgrade gives its place
// back: with a limit of one, a good handshake still gets through after them.
func TestMaxConnectionsFreedByRefusals(t *testing.T) {
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, connect: func(h *actor.Handshake) error {
			if h.Request.URL.Query().Get("token") == "bad" {
				return actor.Reject(http.StatusUnauthorized, "bad token")
			}
			return nil
		}}
	}, wsactor.WithMaxConnections(1))
	base := e.url
	for range 3 {
		e.url = base + "?token=bad"
		status, _ := e.dialStatus(t, websocket.DefaultDialer, nil)
		assert.Equal(t, http.StatusUnauthorized, status)
		// Connect accepts, then gorilla refuses the key.
		resp := rawHandshake(t, e, "not-a-key")
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}
	assert.Equal(t, int32(0), ev.inits.Load())

	e.url = base
	e.dial(t, nil)
	ev.pid(t)
	status, body := e.dialStatus(t, websocket.DefaultDialer, nil)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "too many connections", body)
}

// blockingConnect is a Connect that waits, ignoring its context, until the
// test closes release.
type blockingConnect struct {
	entered  chan struct{} // one value per Connect that started
	release  chan struct{}
	returned chan struct{} // one value per Connect that returned
}

func newBlockingConnect() *blockingConnect {
	return &blockingConnect{entered: make(chan struct{}, 100), release: make(chan struct{}), returned: make(chan struct{}, 100)}
}

func (b *blockingConnect) connect(*actor.Handshake) error {
	b.entered <- struct{}{}
	defer func() { b.returned <- struct{}{} }()
	<-b.release
	return nil
}

func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wait):
		t.Fatalf("%s: not within %v", what, wait)
	}
}

func TestConnectBoundedByHandshakeTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	ev := newEvents()
	b := newBlockingConnect()
	e := newEnv(t, func() actor.Handler { return &probe{ev: ev, connect: b.connect} }, wsactor.WithHandshakeTimeout(timeout))
	var once sync.Once
	unblock := func() { once.Do(func() { close(b.release) }) }
	t.Cleanup(unblock) // before the server's cleanup, if the test stops early

	start := time.Now()
	status, body := e.dialStatus(t, &websocket.Dialer{HandshakeTimeout: wait}, nil)
	took := time.Since(start)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "handshake timed out", body)
	assert.GreaterOrEqual(t, took, timeout)
	assert.Less(t, took, wait)
	await(t, b.entered, "Connect started")
	select {
	case <-b.returned:
		t.Fatal("Connect returned before it was released")
	default:
	}

	unblock()
	await(t, b.returned, "Connect returned")
	n, err := e.srv.Connections(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 0, n, "a connection actor was spawned")
	assert.Equal(t, int32(0), ev.inits.Load())
}

// The place of a handshake whose Connect outlived the timeout is held until
// Connect returns, so hanging Connects cannot pile up past the limit.
func TestMaxConnectionsHeldByConnectPastTimeout(t *testing.T) {
	ev := newEvents()
	b := newBlockingConnect()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, connect: func(h *actor.Handshake) error {
			if h.Request.URL.Query().Has("hang") {
				return b.connect(h)
			}
			return nil
		}}
	}, wsactor.WithMaxConnections(1), wsactor.WithHandshakeTimeout(100*time.Millisecond))
	var once sync.Once
	unblock := func() { once.Do(func() { close(b.release) }) }
	t.Cleanup(unblock)
	base := e.url

	e.url = base + "?hang"
	status, body := e.dialStatus(t, websocket.DefaultDialer, nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "handshake timed out", body)
	e.url = base
	status, body = e.dialStatus(t, websocket.DefaultDialer, nil)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "too many connections", body)

	unblock()
	await(t, b.returned, "Connect returned")
	// The Connect goroutine gives the place back just after Connect returns;
	// nothing outside the server sees that moment, so dial until it has.
	deadline := time.Now().Add(wait)
	for {
		c, resp, err := websocket.DefaultDialer.Dial(e.url, nil)
		if err == nil {
			resp.Body.Close()
			defer c.Close()
			break
		}
		require.NotNil(t, resp, "no HTTP response: %v", err)
		resp.Body.Close()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		require.True(t, time.Now().Before(deadline), "the place was not given back within %v", wait)
		<-time.After(10 * time.Millisecond)
	}
	ev.pid(t)
}

// A client that goes away during Connect is not waited for: the server
// answers and closes its side while Connect is still running.
func TestConnectAbandonedWhenClientLeaves(t *testing.T) {
	ev := newEvents()
	b := newBlockingConnect()
	sys := newSystem(t)
	srv, err := wsactor.NewServer(sys, func() actor.Handler { return &probe{ev: ev, connect: b.connect} }, wsactor.WithHandshakeTimeout(time.Hour))
	require.NoError(t, err)
	closed := make(chan struct{}, 10)
	hs := httptest.NewUnstartedServer(srv)
	hs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	hs.Start()
	var once sync.Once
	unblock := func() { once.Do(func() { close(b.release) }) }
	t.Cleanup(func() {
		unblock()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		assert.NoError(t, srv.Shutdown(ctx))
		hs.Close()
	})

	nc, err := net.DialTimeout("tcp", hs.Listener.Addr().String(), wait)
	require.NoError(t, err)
	defer nc.Close()
	_, err = fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		hs.Listener.Addr())
	require.NoError(t, err)
	await(t, b.entered, "Connect started")
	require.NoError(t, nc.Close())
	await(t, closed, "the server closed the connection")
	select {
	case <-b.returned:
		t.Fatal("Connect returned before it was released")
	default:
	}
	unblock()
	await(t, b.returned, "Connect returned")
	n, err := srv.Connections(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 0, n)
}

// Connect runs on a goroutine of its own, outside net/http's recovery: a
// panic in it must not end the process, and is answered with 500.
func TestConnectPanicIsInternalError(t *testing.T) {
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, connect: func(*actor.Handshake) error { panic("auth bug") }}
	}, wsactor.WithMaxConnections(1))
	for range 2 { // the place is given back
		status, _ := e.dialStatus(t, websocket.DefaultDialer, nil)
		assert.Equal(t, http.StatusInternalServerError, status)
	}
	assert.Equal(t, int32(0), ev.inits.Load())
}

// A handler factory that returns nil (or a nil pointer), or panics, is a
// bug of the server's: the handshake is answered with 500 before any
// upgrade, its place is given back, and other connections are served.
func TestNilHandlerIsInternalError(t *testing.T) {
	ev := newEvents()
	var calls atomic.Int32
	e := newEnv(t, func() actor.Handler {
		switch calls.Add(1) {
		case 1:
			return nil
		case 2:
			var p *probe
			return p
		case 3:
			panic("factory bug")
		}
		return &probe{ev: ev}
	}, wsactor.WithMaxConnections(1))
	for range 3 {
		status, body := e.dialStatus(t, websocket.DefaultDialer, nil)
		assert.Equal(t, http.StatusInternalServerError, status)
		assert.Equal(t, "internal server error", body)
	}
	assert.Equal(t, int32(0), ev.inits.Load(), "an actor was spawned without a handler")
	c := e.dial(t, nil) // the place was given back each time
	ev.pid(t)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("in")))
	_, got := read(t, c)
	assert.Equal(t, "in", got)
}

func ExampleWithMaxConnections() {
	sys := quietSystem()
	defer sys.Shutdown()
	srv, err := wsactor.NewServer(sys, func() actor.Handler { return Shout{} }, wsactor.WithMaxConnections(1))
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(hs.URL, "http")

	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	fmt.Println(err, resp.StatusCode)
	// Output: websocket: bad handshake 503
}
