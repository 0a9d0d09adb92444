package wsactor

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path"
	"time"

	"github.com/protows/protows/internal/conn"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"go.opentelemetry.io/otel/metric"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/supervision"
)

// Defaults of the options, for servers and clients alike (and actortest).
const (
	DefaultReadLimit        = 1 << 20
	DefaultWriteTimeout     = 10 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultReadBufferSize   = 4096
	DefaultWriteBufferSize  = 4096
	DefaultDialTimeout      = 10 * time.Second
	DefaultCloseTimeout     = 5 * time.Second  // WithCloseTimeout
	DefaultPingInterval     = 30 * time.Second // WithKeepalive
	DefaultOutboundBytes    = 16 << 20         // WithOutboundLimit
)

// ServerOption configures a [Server]: an [Option], or an option for
// servers only (WithAllowedOrigins, WithMaxConnections).
type ServerOption interface{ applyServer(*config) }

// ClientOption configures a [Client]: an [Option], or an option for
// clients only (WithHeader, WithTLSConfig, WithDialTimeout, WithProxy,
// WithReconnect, WithHoldWhileDisconnected).
type ClientOption interface{ applyClient(*config) }

// Option configures a [Server] or a [Client]: it is both a [ServerOption]
// and a [ClientOption]. An option for one side only has that side's type,
// so that passing it to the other does not compile.
type Option func(*config)

func (o Option) applyServer(c *config) { o(c) }
func (o Option) applyClient(c *config) { o(c) }

// serverOnly and clientOnly are options for one side.
type (
	serverOnly func(*config)
	clientOnly func(*config)
)

func (o serverOnly) applyServer(c *config) { o(c) }
func (o clientOnly) applyClient(c *config) { o(c) }

type config struct {
	originPatterns   []string
	subprotocols     []string
	compression      bool
	readLimit        int64
	writeTimeout     time.Duration
	closeTimeout     time.Duration
	handshakeTimeout time.Duration
	maxConnections   int
	readBufferSize   int
	writeBufferSize  int
	logger           *slog.Logger
	meterProvider    metric.MeterProvider
	conn             []conn.Option

	// Client side.
	header      http.Header
	tls         *tls.Config
	dialTimeout time.Duration
	proxy       func(*http.Request) (*url.URL, error)
	reconnect   supervision.Policy
}

// WithHeader adds headers to a client's handshake request (client).
func WithHeader(h http.Header) ClientOption {
	return clientOnly(func(c *config) {
		for k, v := range h {
			c.header[k] = append(c.header[k], v...)
		}
	})
}

// WithTLSConfig sets the TLS configuration for wss:// URLs (client).
func WithTLSConfig(t *tls.Config) ClientOption { return clientOnly(func(c *config) { c.tls = t }) }

// WithDialTimeout bounds the TCP connect of each dial (client; default
// 10 s). The handshake after it is bounded by WithHandshakeTimeout.
func WithDialTimeout(d time.Duration) ClientOption {
	return clientOnly(func(c *config) { c.dialTimeout = d })
}

// WithProxy sets how a client finds its HTTP proxy (client; default
// http.ProxyFromEnvironment: HTTP_PROXY, HTTPS_PROXY, NO_PROXY). nil dials
// directly.
func WithProxy(proxy func(*http.Request) (*url.URL, error)) ClientOption {
	return clientOnly(func(c *config) { c.proxy = proxy })
}

// WithReconnect sets a client's reconnect policy (client; default: the
// zero supervision.Policy, that is backoff from 100 ms to 30 s with full
// jitter, reset after 10 s connected, no budget, no reconnect after a
// terminal close code or a dial refused with a 4xx other than 408 and 429;
// see supervision.Retryable).
func WithReconnect(p supervision.Policy) ClientOption {
	return clientOnly(func(c *config) { c.reconnect = p })
}

// WithHoldWhileDisconnected lets a client hold up to n frames sent while it
// is disconnected and send them in order after the next connect (client;
// default 0: Send fails with actor.ErrDisconnected).
func WithHoldWhileDisconnected(n int) ClientOption {
	return clientOnly(func(c *config) { c.conn = append(c.conn, conn.WithHoldWhileDisconnected(n)) })
}

// WithAllowedOrigins (server) accepts cross-origin handshakes whose Origin host
// matches one of the patterns (path.Match syntax, case-insensitive, port
// included when the origin has one): "example.com", "*.example.com",
// "localhost:*". Same-origin requests (Origin host equal to the Host
// header) and requests without an Origin header are always accepted; any
// other is refused with 403.
func WithAllowedOrigins(patterns ...string) ServerOption {
	return serverOnly(func(c *config) { c.originPatterns = append(c.originPatterns, patterns...) })
}

// WithSubprotocols sets the subprotocols spoken, in order of preference.
// A server selects the first one the client also offers unless the
// handler's Connect selects another; a client offers them all.
func WithSubprotocols(protocols ...string) Option {
	return func(c *config) { c.subprotocols = append(c.subprotocols, protocols...) }
}

// WithCompression negotiates permessage-deflate (RFC 7692, without context
// takeover): a server accepts it from clients that offer it, a client
// offers it.
func WithCompression(enable bool) Option { return func(c *config) { c.compression = enable } }

// WithReadLimit sets the largest message accepted from the peer, in bytes
// after decompression (default 1 MiB). A larger one closes the connection
// with 1009.
func WithReadLimit(n int64) Option { return func(c *config) { c.readLimit = n } }

// WithWriteTimeout bounds each write to a peer (default 10 s); a write that
// times out ends the connection.
func WithWriteTimeout(d time.Duration) Option { return func(c *config) { c.writeTimeout = d } }

// WithHandshakeTimeout bounds the opening handshake (default 10 s): on a
// server, Connect and the writing of the 101 response (reading the request
// is bounded by the http.Server's ReadHeaderTimeout); on a client, the
// exchange after the TCP connect.
//
// A server stops waiting for Connect when the timeout passes or the client
// goes away, whether or not Connect watches its context, and answers 503
// (handshake timed out). A Connect still running then goes on, on its own
// goroutine, until it returns; its result is discarded and no connection
// is made.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) { c.handshakeTimeout = d }
}

// WithMaxConnections lets a server have at most n websocket connections
// open at once (server; default 0: no limit). A handshake over the limit is
// answered with 503 (too many connections) before Connect runs. A
// connection counts from the start of its handshake until its socket is
// closed; a handshake that is refused or fails counts until then, and one
// whose Connect outlives the handshake timeout counts until Connect
// returns, so Connects that hang cannot pile up past n.
func WithMaxConnections(n int) ServerOption {
	return serverOnly(func(c *config) { c.maxConnections = n })
}

// WithBufferSizes sets the size of the pooled buffers connections read
// into (default 4 KiB) and write from (default 4 KiB). A connection holds
// a read buffer only while bytes it has read wait to be handled, and a
// write buffer only while it writes, so an idle connection holds neither
// (on Unix systems; elsewhere a connection holds its read buffer while it
// waits). A connection over TLS reads from crypto/tls's buffers instead; a
// client behind a proxy keeps a read buffer of this size.
func WithBufferSizes(read, write int) Option {
	return func(c *config) { c.readBufferSize, c.writeBufferSize = read, write }
}

// WithKeepalive pings every interval and closes a connection (1001,
// ReasonTimeout) that sends neither a pong nor anything else within
// pongTimeout of a ping (zero: the interval). One ping is outstanding at a
// time, so a pongTimeout longer than interval spaces pings by pongTimeout.
// A zero interval turns keepalive off. Default: 30 s.
func WithKeepalive(interval, pongTimeout time.Duration) Option {
	return func(c *config) { c.conn = append(c.conn, conn.WithKeepalive(interval, pongTimeout)) }
}

// WithCloseTimeout bounds the wait for the peer's close frame (default 5 s).
func WithCloseTimeout(d time.Duration) Option {
	return func(c *config) {
		c.closeTimeout = d
		c.conn = append(c.conn, conn.WithCloseTimeout(d))
	}
}

// WithOutboundLimit bounds the backlog of each connection: the frames
// queued for its peer together with the messages from other actors that it
// has not handled yet. Each counts its payload (a frame's data; a
// message's, when it is an actor.Frame, []byte or string) plus 64 bytes for
// the queue's own memory, and the total is kept to at most bytes (default
// 16 MiB, about 240,000 small frames). frames, when not 0, also bounds
// their number (default 0: no count bound), for a connection where only the
// latest few frames matter. Past either, the overflow policy applies
// ([WithOverflowPolicy]). Requests to close (actor.CloseRequest,
// actor.Shutdown) are never counted or refused. A burst to a peer that
// reads at full speed does not fill it: the writer drains the queue while
// the actor works through the burst.
func WithOutboundLimit(frames, bytes int) Option {
	return func(c *config) { c.conn = append(c.conn, conn.WithOutboundLimit(frames, bytes)) }
}

// OverflowPolicy says what happens when the backlog of a connection is
// full: the frames queued for its peer and the messages from other actors
// it has not handled yet, together, have reached the outbound limit (see
// [WithOutboundLimit]). That happens only with a peer that reads slower
// than frames are pushed for long enough: a burst to a peer that reads at
// full speed is written while the actor works through it.
type OverflowPolicy uint8

// Overflow policies. Every dropped frame or message is counted in the
// metrics (protows.outbox.drops, protows.mailbox.drops; see
// [WithMeterProvider]).
const (
	// OverflowClose drops the backlog and closes the connection with 1013
	// (try again later); Context.Push returns actor.ErrOutboxFull. The
	// default.
	OverflowClose OverflowPolicy = iota
	// OverflowDropOldest drops the oldest queued data frames, then the
	// oldest unhandled messages from other actors, to make room. A frame
	// or message larger than the whole limit is dropped instead.
	OverflowDropOldest
	// OverflowDropNewest drops what does not fit: the frame being pushed
	// (Context.Push returns actor.ErrOutboxFull) or the message being sent
	// to the connection.
	OverflowDropNewest
)

// String returns the policy's name.
func (p OverflowPolicy) String() string { return conn.OverflowPolicy(p).String() }

// WithOverflowPolicy sets what a full backlog does (default
// [OverflowClose]).
func WithOverflowPolicy(p OverflowPolicy) Option {
	return func(c *config) { c.conn = append(c.conn, conn.WithOverflowPolicy(conn.OverflowPolicy(p))) }
}

// WithRegistry gives every connection the registry r (a registry.Local or
// a cluster registry) for Context.Register, Join, Leave, Publish and
// SendTo. Names and memberships are released when connections end.
func WithRegistry(r actor.Directory) Option {
	return func(c *config) { c.conn = append(c.conn, conn.WithDirectory(r, 0)) }
}

// WithLogger sets the logger of the server and its connections (default:
// the actor system's).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMeterProvider records OpenTelemetry metrics of the connections with
// mp, under the instrumentation scope "github.com/protows/protows". Without
// it nothing is recorded. The instruments:
//
//   - protows.connections.open (up-down counter): connections open now
//   - protows.messages.in, protows.messages.out (counters): data messages
//   - protows.bytes.in, protows.bytes.out (counters, By): data payload bytes
//   - protows.closes (counter, attribute "code"): connections ended, by the
//     close code sent or received (1006 when there was none)
//   - protows.outbox.drops (counter): frames dropped by an overflow policy or
//     discarded by a close
//   - protows.mailbox.drops (counter): messages from other actors dropped
//     by an overflow policy before the connection handled them
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

func init() {
	conn.FromOptions = func(sys *protoactor.ActorSystem, opts any) (*conn.Options, error) {
		c := defaultConfig()
		for _, o := range opts.([]Option) {
			if o != nil {
				o(c)
			}
		}
		if err := c.validate(); err != nil {
			return nil, err
		}
		o := &conn.Options{Subprotocols: c.subprotocols, HandshakeTimeout: c.handshakeTimeout}
		cc, err := c.connConfig(sys) // validates as NewServer does
		if err != nil {
			return nil, err
		}
		if sys != nil {
			o.Conn = cc
		}
		return o, nil
	}
}

func newServerConfig(opts []ServerOption) (*config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.applyServer(c)
		}
	}
	return c, c.validate()
}

func newClientConfig(opts []ClientOption) (*config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.applyClient(c)
		}
	}
	return c, c.validate()
}

func defaultConfig() *config {
	return &config{
		readLimit:        DefaultReadLimit,
		writeTimeout:     DefaultWriteTimeout,
		closeTimeout:     DefaultCloseTimeout,
		handshakeTimeout: DefaultHandshakeTimeout,
		readBufferSize:   DefaultReadBufferSize,
		writeBufferSize:  DefaultWriteBufferSize,
		header:           http.Header{},
		dialTimeout:      DefaultDialTimeout,
		proxy:            defaultProxy,
	}
}

// validate reports every option value that is not usable.
func (c *config) validate() error {
	var errs []error
	if c.readLimit <= 0 {
		errs = append(errs, fmt.Errorf("protows: read limit must be positive, got %d", c.readLimit))
	}
	c.readLimit = min(c.readLimit, math.MaxInt64-1) // readMessage reads one byte past it
	if c.writeTimeout <= 0 || c.handshakeTimeout <= 0 || c.dialTimeout <= 0 {
		errs = append(errs, errors.New("protows: write, handshake and dial timeouts must be positive"))
	}
	if c.maxConnections < 0 {
		errs = append(errs, fmt.Errorf("protows: max connections must not be negative, got %d", c.maxConnections))
	}
	if c.readBufferSize <= 0 || c.writeBufferSize <= 0 {
		errs = append(errs, errors.New("protows: buffer sizes must be positive"))
	}
	if err := c.reconnect.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range c.originPatterns {
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("protows: bad origin pattern %q: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// connConfig builds the connection settings shared by every connection.
func (c *config) connConfig(sys *protoactor.ActorSystem) (*conn.Config, error) {
	log := c.logger
	if log == nil && sys != nil {
		log = sys.Logger()
	}
	opts := append([]conn.Option{conn.WithLogger(log)}, c.conn...)
	if c.meterProvider != nil {
		m, err := conn.NewMetrics(c.meterProvider)
		if err != nil {
			return nil, fmt.Errorf("protows: metrics: %w", err)
		}
		opts = append(opts, conn.WithMetrics(m))
	}
	return conn.NewConfig(opts...)
}
