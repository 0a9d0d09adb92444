package wsactor_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/supervision"
	"github.com/protows/protows/wsactor"
)

func TestClientOverTLS(t *testing.T) {
	sys := newSystem(t)
	var up websocket.Upgrader
	conns := make(chan *websocket.Conn, 1)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			conns <- c
		}
	}))
	// The refused dial below makes the server log a TLS error; it is expected.
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	hs.StartTLS()
	defer hs.Close()
	url := "wss" + strings.TrimPrefix(hs.URL, "https")

	// Without the server's certificate the dial fails, as a disconnect.
	f := newFeed()
	f.decide = func(actor.Reason) actor.Decision { return actor.StopReconnecting }
	spawnClient(t, sys, url, f)
	r := recv(t, f.disconnect, "disconnect")
	var dErr *actor.DialError
	require.ErrorAs(t, r.Err, &dErr)
	var certErr *tls.CertificateVerificationError
	assert.ErrorAs(t, r.Err, &certErr)

	pool := x509.NewCertPool()
	pool.AddCert(hs.Certificate())
	f = newFeed()
	spawnClient(t, sys, url, f, wsactor.WithTLSConfig(&tls.Config{RootCAs: pool}))
	c := recv(t, conns, "TLS connection")
	defer c.Close()
	assert.Equal(t, "subscribe 1", readText(t, c))
}

// connectProxy is a minimal HTTP CONNECT proxy that counts tunnels.
func connectProxy(t *testing.T) (*url.URL, *atomic.Int32) {
	var tunnels atomic.Int32
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		upstream, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		tunnels.Add(1)
		// Hijack before answering: a client quick to send through the tunnel
		// must not have its request read by net/http as the next one.
		client, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		if _, err := io.WriteString(client, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
			upstream.Close()
			client.Close()
			return
		}
		go func() {
			defer upstream.Close()
			defer client.Close()
			go io.Copy(upstream, client)
			_, _ = io.Copy(client, upstream)
		}()
	}))
	t.Cleanup(ps.Close)
	u, err := url.Parse(ps.URL)
	require.NoError(t, err)
	return u, &tunnels
}

func TestClientThroughProxy(t *testing.T) {
	sys := newSystem(t)
	p := newPeerServer(t, nil)
	proxyURL, tunnels := connectProxy(t)
	f := newFeed()
	spawnClient(t, sys, p.url, f, wsactor.WithProxy(http.ProxyURL(proxyURL)))
	c := p.accept(t)
	assert.Equal(t, "subscribe 1", readText(t, c))
	assert.Equal(t, int32(1), tunnels.Load())
}

// A client pings; a server that reads but never answers is dropped with a
// timeout, not before the pong was due, and the client reconnects.
func TestClientKeepaliveTimeoutReconnects(t *testing.T) {
	const interval, pongTimeout = 50 * time.Millisecond, 300 * time.Millisecond
	sys := newSystem(t)
	p := newPeerServer(t, nil)
	f := newFeed()
	start := time.Now()
	spawnClient(t, sys, p.url, f,
		wsactor.WithKeepalive(interval, pongTimeout),
		wsactor.WithCloseTimeout(100*time.Millisecond),
		wsactor.WithReconnect(fastPolicy()))
	srv := p.accept(t)
	pings := make(chan string, 10)
	srv.SetPingHandler(func(s string) error { pings <- s; return nil }) // seen, never answered
	go func() {
		for {
			if _, _, err := srv.ReadMessage(); err != nil {
				return
			}
		}
	}()
	recv(t, pings, "ping from the client")
	r := recv(t, f.disconnect, "disconnect")
	assert.Equal(t, actor.ReasonTimeout, r.Kind)
	assert.ErrorIs(t, r.Err, actor.ErrKeepaliveTimeout)
	assert.GreaterOrEqual(t, time.Since(start), interval+pongTimeout, "dropped before the pong was due")
	p.accept(t)
}

// A reconnect policy with values that make no sense is refused when the
// client is made, not silently replaced.
func TestReconnectPolicyValidated(t *testing.T) {
	sys := newSystem(t)
	bad := supervision.Policy{Backoff: supervision.Backoff{Min: time.Second, Max: time.Millisecond}, MaxAttempts: -1}
	_, err := wsactor.SpawnClient(sys, "ws://127.0.0.1:1/", &actor.BaseHandler{}, wsactor.WithReconnect(bad))
	require.Error(t, err)
	assert.ErrorContains(t, err, "Min 1s is above Max 1ms")
	assert.ErrorContains(t, err, "MaxAttempts is negative")
}
