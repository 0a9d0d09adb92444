package wsactor_test

import (
	"context"
	"errors"
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
	"github.com/protows/protows/wsactor"
)

type panicky struct{}

func (panicky) Receive(c protoactor.Context) {
	if s, ok := c.Message().(string); ok && s == "boom" {
		panic("user actor bug")
	}
}

// SystemLogger demotes "[ACTOR] Recovering" only for client connections:
// for a user's own actor it is the only line that reports a panic.
func TestSystemLoggerKeepsUserActorPanics(t *testing.T) {
	var out syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sys := protoactor.NewActorSystem(wsactor.SystemLogger(logger))
	pid := sys.Root.Spawn(protoactor.PropsFromProducer(func() protoactor.Actor { return panicky{} }))
	sys.Root.Send(pid, "boom")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "user actor bug") }, wait, time.Millisecond,
		"the panic was not logged at INFO:\n%s", out.String())
	_ = sys.Root.StopFuture(pid).Wait()
	sys.Shutdown()
}

// A client that gives up for good after a 401 says so at WARN.
func TestTerminal401LoggedAtWarn(t *testing.T) {
	var out syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sys := protoactor.NewActorSystem(wsactor.SystemLogger(logger))
	t.Cleanup(sys.Shutdown)
	url, _ := refusingServer(t, sys, http.StatusUnauthorized)
	c, err := wsactor.SpawnClient(sys, url, &actor.BaseHandler{}, wsactor.WithLogger(logger))
	require.NoError(t, err)
	recv(t, c.Done(), "done")
	assert.Contains(t, out.String(), "level=WARN")
	assert.Contains(t, out.String(), "directive=stop")
	assert.Contains(t, out.String(), "401")
}

type failingConnect struct{ *feed }

func (f failingConnect) HandleConnect(c *actor.Context, r *actor.ConnectResponse) error {
	f.feed.connected <- r
	return errors.New("subscription refused")
}

// A client whose HandleConnect fails (the socket closes with 1011) is
// never reported connected.
func TestWaitConnectedAfterHandleConnectFails(t *testing.T) {
	sys := newSystem(t)
	p := newPeerServer(t, nil)
	f := newFeed()
	f.decide = func(actor.Reason) actor.Decision { return actor.StopReconnecting }
	c := spawnClient(t, sys, p.url, failingConnect{f}, wsactor.WithCloseTimeout(50*time.Millisecond))
	err := c.WaitConnected(waitCtx(t))
	r := recv(t, f.disconnect, "disconnect")
	t.Logf("WaitConnected: %v; disconnect: %v", err, r)
	assert.ErrorIs(t, err, actor.ErrClosed)
}

// An ended client's WaitConnected says so, even with a context already
// cancelled.
func TestWaitConnectedEndedAndCancelled(t *testing.T) {
	sys := newSystem(t)
	url, _ := refusingServer(t, sys, http.StatusUnauthorized)
	c := spawnClient(t, sys, url, newFeed())
	recv(t, c.Done(), "done")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	seen := map[bool]int{}
	for range 200 {
		seen[errors.Is(c.WaitConnected(ctx), actor.ErrClosed)]++
	}
	assert.Len(t, seen, 1, "%v", seen)
}

// WithLogger's logger gets the client's reconnect decisions, with why.
func TestWithLoggerGetsReconnectDecisions(t *testing.T) {
	var out syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sys := newSystem(t)
	ev := decisions(t, sys)
	spawnClient(t, sys, "ws://127.0.0.1:1/", newFeed(), wsactor.WithLogger(logger), wsactor.WithReconnect(fastPolicy()))
	for range 3 {
		recv(t, ev, "decision")
	}
	assert.Contains(t, out.String(), "dial failed")
}
