package conn

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/protows/protows/actor"
)

// OverflowPolicy says what happens when the backlog of a connection is
// full: the frames queued for its peer and the messages from other actors
// it has not handled yet, together, have reached the outbound limit (see
// [WithOutboundLimit]). That happens only with a peer that reads slower
// than frames are pushed for long enough: a burst to a peer that reads at
// full speed is written while the actor works through it.
type OverflowPolicy uint8

// Overflow policies. Every dropped frame or message is counted in the
// metrics (protows.outbox.drops, protows.mailbox.drops).
const (
	// OverflowClose drops the backlog and closes the connection with 1013
	// (try again later); Push returns ErrOutboxFull. The default.
	OverflowClose OverflowPolicy = iota
	// OverflowDropOldest drops the oldest queued data frames, then the
	// oldest unhandled messages from other actors, to make room. A frame
	// or message larger than the whole limit is dropped instead.
	OverflowDropOldest
	// OverflowDropNewest drops what does not fit: the frame being pushed
	// (Push returns ErrOutboxFull) or the message being sent to the
	// connection.
	OverflowDropNewest
)

// String returns the policy's name.
func (p OverflowPolicy) String() string {
	switch p {
	case OverflowClose:
		return "close"
	case OverflowDropOldest:
		return "drop-oldest"
	case OverflowDropNewest:
		return "drop-newest"
	}
	return fmt.Sprintf("OverflowPolicy(%d)", uint8(p))
}

// Defaults applied by [NewConfig].
const (
	DefaultOutboundFrames = 0 // no bound on the count; the byte bound holds
	DefaultOutboundBytes  = 16 << 20
	DefaultPingInterval   = 30 * time.Second
	DefaultCloseTimeout   = 5 * time.Second
)

// inboundWindow is how many messages the reader may have queued for the
// actor before it stops reading: backpressure on a peer that sends faster
// than its handler keeps up.
const inboundWindow = 8

// Config holds validated connection settings shared by every connection a
// server or test spawns. Build one with [NewConfig]; it is immutable.
type Config struct {
	logger         *slog.Logger
	outboundFrames int
	outboundBytes  int
	overflow       OverflowPolicy
	pingInterval   time.Duration
	pongTimeout    time.Duration
	closeTimeout   time.Duration
	holdFrames     int
	metrics        *Metrics
	dir            actor.Directory
	dirTimeout     time.Duration
}

// Option configures connections.
type Option func(*Config)

// WithLogger sets the logger; by default connections log through their actor
// system's logger. Records carry the attributes "conn" (the actor id) and
// "remote" (the peer address).
func WithLogger(l *slog.Logger) Option { return func(c *Config) { c.logger = l } }

// WithOutboundLimit bounds the backlog of each connection: the frames
// queued for its peer together with the messages from other actors that
// it has not handled yet. Each counts its payload (a frame's data; a
// message's, when it is a Frame, []byte or string) plus 64 bytes for the
// queue's own memory, and the total is kept to at most bytes (default
// 16 MiB, about 240,000 small frames). frames, when not 0, also bounds
// their number (default 0: no count bound), for a connection where only
// the latest few frames matter. Past either, the overflow policy applies.
// Requests to close (actor.CloseRequest, actor.Shutdown) are never counted or refused.
func WithOutboundLimit(frames, bytes int) Option {
	return func(c *Config) { c.outboundFrames, c.outboundBytes = frames, bytes }
}

// WithOverflowPolicy sets what happens when the outbound queue is full
// (default OverflowClose).
func WithOverflowPolicy(p OverflowPolicy) Option { return func(c *Config) { c.overflow = p } }

// WithKeepalive pings the peer every interval and closes the connection
// (ReasonTimeout, close code 1001) when neither a pong nor any other frame
// arrives within pongTimeout of a ping. One ping is outstanding at a time:
// with a pongTimeout longer than interval, pings go out every pongTimeout.
// A zero pongTimeout means interval; a zero interval turns keepalive off.
// Default: 30 s and 30 s.
func WithKeepalive(interval, pongTimeout time.Duration) Option {
	return func(c *Config) { c.pingInterval, c.pongTimeout = interval, pongTimeout }
}

// WithCloseTimeout bounds the close handshake: from the moment a close is
// decided, the frames still queued, the close frame and the peer's answer
// get this long before the TCP connection is dropped (default 5 s).
func WithCloseTimeout(d time.Duration) Option { return func(c *Config) { c.closeTimeout = d } }

// WithHoldWhileDisconnected lets a client hold up to n frames pushed or
// sent while it is disconnected and send them, in order, after the next
// connect (default 0: such frames fail with ErrDisconnected).
func WithHoldWhileDisconnected(n int) Option { return func(c *Config) { c.holdFrames = n } }

// WithMetrics records connection metrics into m.
func WithMetrics(m *Metrics) Option { return func(c *Config) { c.metrics = m } }

// NewConfig applies opts over the defaults and validates the result.
func NewConfig(opts ...Option) (*Config, error) {
	c := &Config{
		outboundFrames: DefaultOutboundFrames,
		outboundBytes:  DefaultOutboundBytes,
		pingInterval:   DefaultPingInterval,
		closeTimeout:   DefaultCloseTimeout,
	}
	for _, o := range opts {
		o(c)
	}
	var errs []error
	if c.outboundFrames < 0 || c.outboundBytes < itemCost {
		errs = append(errs, fmt.Errorf("protows: outbound limit must be at least %d bytes (one empty frame) with a count of 0 (none) or more, got %d frames, %d bytes", itemCost, c.outboundFrames, c.outboundBytes))
	}
	if c.overflow > OverflowDropNewest {
		errs = append(errs, fmt.Errorf("protows: unknown overflow policy %d", c.overflow))
	}
	if c.pingInterval < 0 || c.pongTimeout < 0 {
		errs = append(errs, errors.New("protows: keepalive durations must not be negative"))
	}
	if c.holdFrames < 0 {
		errs = append(errs, errors.New("protows: hold limit must not be negative"))
	}
	if c.closeTimeout <= 0 {
		errs = append(errs, errors.New("protows: close timeout must be positive"))
	}
	if c.pongTimeout == 0 {
		c.pongTimeout = c.pingInterval
	}
	if c.metrics == nil {
		c.metrics = noopMetrics()
	}
	if c.dirTimeout <= 0 {
		c.dirTimeout = 5 * time.Second
	}
	return c, errors.Join(errs...)
}

// WithDirectory gives connections a registry for the Context's Register,
// Unregister, Join, Leave, SendTo, Publish, PublishFrom, Lookup and
// Members, each call bounded by timeout (0: 5 s).
func WithDirectory(d actor.Directory, timeout time.Duration) Option {
	return func(c *Config) {
		c.dir = d
		c.dirTimeout = timeout
	}
}

// Options are the settings wsactor options give a server: its
// connections' settings, and what its handshake does before the upgrade.
type Options struct {
	Conn             *Config // nil when FromOptions was given no actor system
	Subprotocols     []string
	HandshakeTimeout time.Duration
}

// FromOptions applies wsactor options (a []wsactor.Option, passed as any
// because this package cannot name it) over a server's defaults and
// validates them; Conn is built for sys unless sys is nil. Package wsactor
// sets it in its init; actortest calls it, so that a handler test takes
// the options a server takes and means the same by them.
var FromOptions func(sys *protoactor.ActorSystem, opts any) (*Options, error)
