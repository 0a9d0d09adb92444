package wsactor_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/syncbuf"
	"github.com/protows/protows/supervision"
	"github.com/protows/protows/wsactor"
)

// proto.actor's logging goes through the user's logger, with the system's
// id, without colour codes, and with proto.actor's normal events at their
// real level.
func TestSystemLogger(t *testing.T) {
	var out syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sys := protoactor.NewActorSystem(wsactor.SystemLogger(logger))
	t.Cleanup(sys.Shutdown)

	log := sys.Logger()
	log.Error("Automanaged server stopping..!", slog.Any("error", http.ErrServerClosed))
	log.Error("Bad connection to the node health status", slog.String("autoManMemberUrl", "http://127.0.0.1:1/_health"))
	log.Error("EndpointWriter lost connection", slog.Any("error", "rpc error: code = Canceled desc = grpc: the client connection is closing"))
	log.Error("EndpointWriter lost connection", slog.Any("error", `rpc error: code = Unavailable desc = closing transport due to: connection error: desc = "error reading from server: EOF", received prior goaway: code: NO_ERROR, debug data: "graceful_stop"`))
	log.Error("EndpointWriter lost connection", slog.Any("error", "rpc error: code = Unavailable desc = connection refused"))
	log.Info("[ACTOR] Recovering", slog.Any("reason", &supervision.Disconnect{}))
	log.Info("[ACTOR] Recovering", slog.String("reason", "boom")) // a panic in an actor of the user's
	log.Error("something else")

	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.Contains(l, `msg="actor system started"`) {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 7, "the client's Recovering line is at DEBUG, below the handler's level:\n%s", out.String())
	assert.NotContains(t, out.String(), "\x1b[", "colour codes")
	for _, l := range lines {
		assert.Contains(t, l, "system="+sys.ID)
	}
	assert.Contains(t, lines[0], "level=INFO msg=\"Automanaged server stopping..!\"")
	assert.Contains(t, lines[1], "level=WARN msg=\"Bad connection to the node health status\"")
	assert.Contains(t, lines[2], "level=INFO msg=\"EndpointWriter lost connection\"")
	assert.Contains(t, lines[3], "level=INFO msg=\"EndpointWriter lost connection\"", "the peer shut down")
	assert.Contains(t, lines[4], "level=ERROR msg=\"EndpointWriter lost connection\"", "a link lost for another reason stays an error")
	assert.Contains(t, lines[5], "level=INFO msg=\"[ACTOR] Recovering\"")
	assert.Contains(t, lines[5], "reason=boom")
	assert.Contains(t, lines[6], "level=ERROR msg=\"something else\"")
}

// A client that cannot connect logs one line per attempt at INFO: the
// supervision decision, with the reason.
func TestReconnectAttemptIsOneLine(t *testing.T) {
	var out syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sys := protoactor.NewActorSystem(wsactor.SystemLogger(logger))
	t.Cleanup(sys.Shutdown)
	events := make(chan *supervision.Event, 16)
	sub := sys.EventStream.Subscribe(func(e any) {
		if ev, ok := e.(*supervision.Event); ok {
			select {
			case events <- ev:
			default:
			}
		}
	})
	t.Cleanup(func() { sys.EventStream.Unsubscribe(sub) })

	c, err := wsactor.SpawnClient(sys, "ws://127.0.0.1:1/", &actor.BaseHandler{},
		wsactor.WithReconnect(supervision.Policy{Backoff: supervision.Backoff{Min: 5 * time.Millisecond, Max: 10 * time.Millisecond}}))
	require.NoError(t, err)
	for i := range 3 {
		select {
		case <-events:
		case <-time.After(wait):
			t.Fatalf("attempt %d: no supervision decision", i+1)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, c.Close(ctx))

	decisions := 0
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		switch {
		case strings.Contains(l, `msg="supervision decision"`):
			decisions++
			assert.Contains(t, l, "dial failed", "the line says why")
		case strings.Contains(l, `msg="actor system started"`):
		default:
			t.Errorf("a line other than the decision: %s", l)
		}
	}
	assert.GreaterOrEqual(t, decisions, 3)
}
