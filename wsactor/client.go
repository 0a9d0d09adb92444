package wsactor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/conn"
)

// Client is the handle of a client connection actor made by [SpawnClient].
// The actor dials, runs its handler, and reconnects under its supervisor's
// policy; its PID never changes, so other actors can keep sending to it.
type Client struct {
	sys  *protoactor.ActorSystem
	pid  *protoactor.PID
	sup  *conn.Supervisor
	link *conn.ClientLink
}

// SpawnClient spawns a client connection actor that dials rawURL (ws:// or
// wss://) and runs h. It returns at once: the first dial happens in the
// actor, and a failed dial is a disconnect like any other (HandleDisconnect,
// then the reconnect policy), whose Reason carries an [*actor.DialError];
// [Client.WaitConnected] waits for the first connect. The actor's parent is
// a supervisor of its own with the reconnect policy ([WithReconnect]).
func SpawnClient(sys *protoactor.ActorSystem, rawURL string, h actor.ClientHandler, opts ...ClientOption) (*Client, error) {
	if sys == nil || h == nil {
		return nil, errors.New("protows: SpawnClient needs an actor system and a handler")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("protows: bad URL: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("protows: URL scheme must be ws or wss, got %q", u.Scheme)
	}
	cfg, err := newClientConfig(opts)
	if err != nil {
		return nil, err
	}
	connCfg, err := cfg.connConfig(sys)
	if err != nil {
		return nil, err
	}
	netDial := (&net.Dialer{Timeout: cfg.dialTimeout}).DialContext
	d := &websocket.Dialer{
		NetDialContext:    netDial,
		Proxy:             cfg.proxy,
		TLSClientConfig:   cfg.tls,
		HandshakeTimeout:  cfg.handshakeTimeout,
		ReadBufferSize:    cfg.readBufferSize,
		WriteBufferSize:   cfg.writeBufferSize,
		WriteBufferPool:   &sync.Pool{},
		Subprotocols:      cfg.subprotocols,
		EnableCompression: cfg.compression,
	}
	header := cfg.header.Clone()
	dial := func(ctx context.Context) (conn.Transport, *actor.ConnectResponse, error) {
		dd, scan := scannedDialer(d, u, netDial, readPoolFor(cfg.readBufferSize))
		c, resp, err := dd.DialContext(ctx, rawURL, header)
		if err != nil {
			return nil, nil, dialError(resp, err)
		}
		cr := &actor.ConnectResponse{StatusCode: resp.StatusCode, Header: resp.Header, Subprotocol: c.Subprotocol()}
		return newTransport(c, false, cfg.writeTimeout, cfg.readLimit, cfg.closeTimeout, scan), cr, nil
	}
	props, link := connCfg.ClientProps(h, dial)
	policy := cfg.reconnect
	if policy.Logger == nil {
		policy.Logger = cfg.logger // WithLogger's logger, if any, gets the decisions too
	}
	sup := conn.NewSupervisor(sys, policy.Strategy())
	pid, err := sup.Spawn(props)
	if err != nil {
		return nil, err
	}
	sup.StopWhenEmpty()
	return &Client{sys: sys, pid: pid, sup: sup, link: link}, nil
}

// PID returns the client actor's PID; it stays the same across reconnects.
func (c *Client) PID() *protoactor.PID { return c.pid }

// Connected reports whether the client has an open socket now.
func (c *Client) Connected() bool { return c.link.Connected() }

// WaitConnected returns nil once the client is connected: at once if it is
// now, or after its next successful handshake (a first dial, or a
// reconnect). It returns ctx.Err() if ctx ends first, and an error
// matching [actor.ErrClosed] if the client has ended for good: closed, its
// handler said StopReconnecting, or its reconnect policy gave up, as after
// a dial refused with 401. That error wraps the error of the client's last
// [actor.Reason], so errors.As finds the [*actor.DialError] of a refused
// dial. Being connected is a moment, not a promise: the socket may drop
// right after WaitConnected returns, and Send then holds or refuses as
// usual.
func (c *Client) WaitConnected(ctx context.Context) error { return c.link.WaitConnected(ctx) }

// Send queues f for the server. While the client is disconnected, f is
// held and sent after the next connect if the hold limit
// ([WithHoldWhileDisconnected]) allows; otherwise Send returns an error
// matching [actor.ErrDisconnected]. After the client ended it returns
// [actor.ErrClosed].
func (c *Client) Send(f actor.Frame) error { return c.link.Send(c.sys, c.pid, f) }

// Ping sends the server a ping with data (at most 125 bytes), in order
// with the frames sent before it; the server's pong reaches the handler's
// HandleControl. Keepalive pings ([WithKeepalive]) need no call. While the
// client is disconnected it returns an error matching
// [actor.ErrDisconnected]; pings are not held.
func (c *Client) Ping(data []byte) error {
	return c.link.SendControl(c.sys, c.pid, actor.Frame{Type: actor.PingMessage, Data: data})
}

// Pong sends the server an unsolicited pong with data (at most 125
// bytes), a one-way heartbeat (RFC 6455 section 5.5.3). Errors are those
// of Ping.
func (c *Client) Pong(data []byte) error {
	return c.link.SendControl(c.sys, c.pid, actor.Frame{Type: actor.PongMessage, Data: data})
}

// Cast sends msg to the client actor; it reaches HandleInfo (after a
// reconnect, if the client is between sockets).
func (c *Client) Cast(msg any) { c.sys.Root.Send(c.pid, msg) }

// Close closes the client with 1000 (a close handshake if it is
// connected) and waits until it has terminated or ctx expires; then it
// stops the actor without waiting for the server. It does not reconnect.
func (c *Client) Close(ctx context.Context) error {
	c.link.Close(c.sys, c.pid, actor.CloseNormal, "")
	select {
	case <-c.link.Done():
		return nil
	case <-ctx.Done():
		c.sys.Root.Stop(c.pid)
		<-c.link.Done()
		return ctx.Err()
	}
}

// Done is closed once the client has terminated: closed, stopped by its
// handler's decision, or given up by its reconnect policy.
func (c *Client) Done() <-chan struct{} { return c.link.Done() }

// Reason returns why the client ended. It waits for Done.
func (c *Client) Reason() actor.Reason { return c.link.Reason() }

// dialError keeps what the server answered to a refused handshake: its
// status, header and the start of its body (gorilla keeps up to 1 KiB of
// it for us to read).
func dialError(resp *http.Response, err error) *actor.DialError {
	de := &actor.DialError{Err: err}
	if resp == nil {
		return de
	}
	de.StatusCode, de.Header = resp.StatusCode, resp.Header
	if resp.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, actor.DialErrorBodyLimit))
		if len(body) > 0 {
			de.Body = body
		}
		resp.Body.Close()
	}
	return de
}

// defaultProxy is gorilla's default: the HTTP(S)_PROXY and NO_PROXY
// environment variables.
var defaultProxy = http.ProxyFromEnvironment
