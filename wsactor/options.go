package wsactor

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/protows/protows/actor"
)

// Defaults of a [Server].
const (
	DefaultReadLimit        = 1 << 20
	DefaultWriteTimeout     = 10 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultReadBufferSize   = 1024
	DefaultWriteBufferSize  = 4096
)

// Option configures a [Server].
type Option func(*config)

type config struct {
	originPatterns   []string
	subprotocols     []string
	compression      bool
	readLimit        int64
	writeTimeout     time.Duration
	closeTimeout     time.Duration
	handshakeTimeout time.Duration
	readBufferSize   int
	writeBufferSize  int
	logger           *slog.Logger
	meterProvider    metric.MeterProvider
	conn             []actor.Option
}

// WithAllowedOrigins accepts cross-origin handshakes whose Origin host
// matches one of the patterns (path.Match syntax, case-insensitive, port
// included when the origin has one): "example.com", "*.example.com",
// "localhost:*". Same-origin requests (Origin host equal to the Host
// header) and requests without an Origin header are always accepted; any
// other is refused with 403.
func WithAllowedOrigins(patterns ...string) Option {
	return func(c *config) { c.originPatterns = append(c.originPatterns, patterns...) }
}

// WithSubprotocols sets the subprotocols the server speaks, in order of
// preference; the first one the client also offers is selected unless the
// handler's Connect selects another.
func WithSubprotocols(protocols ...string) Option {
	return func(c *config) { c.subprotocols = append(c.subprotocols, protocols...) }
}

// WithCompression negotiates permessage-deflate (RFC 7692, without context
// takeover) with clients that offer it.
func WithCompression(enable bool) Option { return func(c *config) { c.compression = enable } }

// WithReadLimit sets the largest message accepted from a peer, in bytes
// after decompression (default 1 MiB). A larger one closes the connection
// with 1009.
func WithReadLimit(n int64) Option { return func(c *config) { c.readLimit = n } }

// WithWriteTimeout bounds each write to a peer (default 10 s); a write that
// times out ends the connection.
func WithWriteTimeout(d time.Duration) Option { return func(c *config) { c.writeTimeout = d } }

// WithHandshakeTimeout bounds Connect and the writing of the 101 response
// (default 10 s). Reading the request is bounded by the http.Server's
// ReadHeaderTimeout.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) { c.handshakeTimeout = d }
}

// WithBufferSizes sets the read buffer each connection keeps (default
// 1 KiB) and the size of the pooled write buffers (default 4 KiB).
func WithBufferSizes(read, write int) Option {
	return func(c *config) { c.readBufferSize, c.writeBufferSize = read, write }
}

// WithKeepalive pings every interval and closes a connection (1001,
// ReasonTimeout) that sends neither a pong nor anything else within
// pongTimeout of a ping (zero: the interval). A zero interval turns
// keepalive off. Default: 30 s.
func WithKeepalive(interval, pongTimeout time.Duration) Option {
	return func(c *config) { c.conn = append(c.conn, actor.WithKeepalive(interval, pongTimeout)) }
}

// WithCloseTimeout bounds the wait for the peer's close frame (default 5 s).
func WithCloseTimeout(d time.Duration) Option {
	return func(c *config) {
		c.closeTimeout = d
		c.conn = append(c.conn, actor.WithCloseTimeout(d))
	}
}

// WithOutboundLimit bounds what is queued for each peer (default 1024
// frames, 16 MiB); past it the overflow policy applies.
func WithOutboundLimit(frames, bytes int) Option {
	return func(c *config) { c.conn = append(c.conn, actor.WithOutboundLimit(frames, bytes)) }
}

// WithOverflowPolicy sets what a full outbound queue does (default: close
// with 1013).
func WithOverflowPolicy(p actor.OverflowPolicy) Option {
	return func(c *config) { c.conn = append(c.conn, actor.WithOverflowPolicy(p)) }
}

// WithLogger sets the logger of the server and its connections (default:
// the actor system's).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMeterProvider records OpenTelemetry metrics (see [actor.Metrics]) with
// mp. Without it nothing is recorded.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

func newConfig(opts []Option) (*config, error) {
	c := &config{
		readLimit:        DefaultReadLimit,
		writeTimeout:     DefaultWriteTimeout,
		closeTimeout:     actor.DefaultCloseTimeout,
		handshakeTimeout: DefaultHandshakeTimeout,
		readBufferSize:   DefaultReadBufferSize,
		writeBufferSize:  DefaultWriteBufferSize,
	}
	for _, o := range opts {
		o(c)
	}
	var errs []error
	if c.readLimit <= 0 {
		errs = append(errs, fmt.Errorf("protows: read limit must be positive, got %d", c.readLimit))
	}
	if c.writeTimeout <= 0 || c.handshakeTimeout <= 0 {
		errs = append(errs, errors.New("protows: write and handshake timeouts must be positive"))
	}
	if c.readBufferSize <= 0 || c.writeBufferSize <= 0 {
		errs = append(errs, errors.New("protows: buffer sizes must be positive"))
	}
	for _, p := range c.originPatterns {
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("protows: bad origin pattern %q: %w", p, err))
		}
	}
	return c, errors.Join(errs...)
}
