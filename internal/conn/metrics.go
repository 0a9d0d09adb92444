package conn

import (
	"context"
	"errors"

	"github.com/protows/protows/actor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// meterName is the instrumentation scope of protows metrics.
const meterName = "github.com/protows/protows"

// Metrics are the OpenTelemetry instruments connections record into. Create
// them once per meter provider with [NewMetrics] and share them through
// [WithMetrics]:
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
type Metrics struct {
	open     metric.Int64UpDownCounter
	msgsIn   metric.Int64Counter
	msgsOut  metric.Int64Counter
	bytesIn  metric.Int64Counter
	bytesOut metric.Int64Counter
	closes   metric.Int64Counter
	drops    metric.Int64Counter
	msgDrops metric.Int64Counter
	enabled  bool
}

// NewMetrics creates the instruments from mp.
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	m := mp.Meter(meterName)
	var errs [8]error
	mt := &Metrics{enabled: true}
	mt.open, errs[0] = m.Int64UpDownCounter("protows.connections.open", metric.WithDescription("Websocket connections open now."), metric.WithUnit("{connection}"))
	mt.msgsIn, errs[1] = m.Int64Counter("protows.messages.in", metric.WithDescription("Data messages received from peers."), metric.WithUnit("{message}"))
	mt.msgsOut, errs[2] = m.Int64Counter("protows.messages.out", metric.WithDescription("Data messages written to peers."), metric.WithUnit("{message}"))
	mt.bytesIn, errs[3] = m.Int64Counter("protows.bytes.in", metric.WithDescription("Data payload bytes received from peers."), metric.WithUnit("By"))
	mt.bytesOut, errs[4] = m.Int64Counter("protows.bytes.out", metric.WithDescription("Data payload bytes written to peers."), metric.WithUnit("By"))
	mt.closes, errs[5] = m.Int64Counter("protows.closes", metric.WithDescription("Connections ended, by close code."), metric.WithUnit("{connection}"))
	mt.drops, errs[6] = m.Int64Counter("protows.outbox.drops", metric.WithDescription("Outbound frames dropped by the overflow policy or a close."), metric.WithUnit("{message}"))
	mt.msgDrops, errs[7] = m.Int64Counter("protows.mailbox.drops", metric.WithDescription("Messages from other actors dropped by the overflow policy before the connection handled them."), metric.WithUnit("{message}"))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return mt, nil
}

func noopMetrics() *Metrics {
	m, _ := NewMetrics(noop.NewMeterProvider())
	m.enabled = false
	return m
}

var bg = context.Background()

func (m *Metrics) opened(delta int64) {
	if m.enabled {
		m.open.Add(bg, delta)
	}
}

func (m *Metrics) in(n int) {
	if m.enabled {
		m.msgsIn.Add(bg, 1)
		m.bytesIn.Add(bg, int64(n))
	}
}

func (m *Metrics) out(n int) {
	if m.enabled {
		m.msgsOut.Add(bg, 1)
		m.bytesOut.Add(bg, int64(n))
	}
}

func (m *Metrics) closed(code actor.CloseCode) {
	if m.enabled {
		m.closes.Add(bg, 1, metric.WithAttributes(attribute.Int("code", int(code))))
	}
}

func (m *Metrics) dropped(n int) {
	if m.enabled && n > 0 {
		m.drops.Add(bg, int64(n))
	}
}

func (m *Metrics) droppedMessages(n int) {
	if m.enabled && n > 0 {
		m.msgDrops.Add(bg, int64(n))
	}
}
