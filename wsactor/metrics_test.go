package wsactor_test

import (
	"context"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// sums collects the int64 sums the reader has, by instrument name and, for
// protows.closes, by code.
func sums(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			require.True(t, ok, "%s is not an int64 sum", m.Name)
			for _, dp := range sum.DataPoints {
				name := m.Name
				if code, ok := dp.Attributes.Value(attribute.Key("code")); ok {
					name += "/" + code.Emit()
				}
				out[name] += dp.Value
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	ev := newEvents()
	e := echoEnv(t, ev, wsactor.WithMeterProvider(mp))
	a := e.dial(t, nil)
	b := e.dial(t, nil)
	ev.pid(t)
	ev.pid(t)
	for _, c := range []*websocket.Conn{a, b} {
		for range 3 {
			require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("12345")))
			read(t, c)
		}
	}
	require.NoError(t, a.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "")))
	readClose(t, a)
	ev.reason(t)

	// An echo is counted once its write returns, which may be a moment
	// after the client has read it.
	var got map[string]int64
	require.Eventually(t, func() bool {
		got = sums(t, reader)
		return got["protows.messages.out"] >= 6
	}, wait, time.Millisecond)
	assert.Equal(t, int64(1), got["protows.connections.open"])
	assert.Equal(t, int64(6), got["protows.messages.in"])
	assert.Equal(t, int64(6), got["protows.messages.out"])
	assert.Equal(t, int64(30), got["protows.bytes.in"])
	assert.Equal(t, int64(30), got["protows.bytes.out"])
	assert.Equal(t, int64(1), got["protows.closes/4000"])

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	go func() {
		for {
			if _, _, err := b.ReadMessage(); err != nil {
				return
			}
		}
	}()
	require.NoError(t, e.srv.Shutdown(ctx))
	got = sums(t, reader)
	assert.Equal(t, int64(0), got["protows.connections.open"])
	assert.Equal(t, int64(1), got["protows.closes/1001"])
}

func TestOutboxDropsAreCounted(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, init: func(c *actor.Context) error {
			for range 10 {
				_ = c.Push(actor.Text("x"))
			}
			return nil
		}}
	}, wsactor.WithMeterProvider(mp), wsactor.WithOutboundLimit(4, 1<<20), wsactor.WithOverflowPolicy(wsactor.OverflowDropNewest))
	c := e.dial(t, nil)
	for range 4 {
		read(t, c)
	}
	// The drops happened in Init, before anything was written.
	assert.Equal(t, int64(6), sums(t, reader)["protows.outbox.drops"])
}
