package protows_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry"
	"github.com/protows/protows/wsactor"
)

// member registers under ?name=, joins ?room=, publishes what its peer
// writes to the room, and sends "@who text" to who alone.
type member struct {
	actor.BaseHandler
	name, room string
}

func (m *member) Connect(h *actor.Handshake) error {
	q := h.Request.URL.Query()
	m.name, m.room = q.Get("name"), q.Get("room")
	return nil
}

func (m *member) Init(c *actor.Context) error {
	if err := c.Register(m.name); err != nil {
		return actor.Stop(4009, err.Error())
	}
	return c.Join(m.room)
}

func (m *member) HandleIn(c *actor.Context, f actor.Frame) error {
	text := string(f.Data)
	if to, rest, ok := strings.Cut(text, " "); ok && strings.HasPrefix(to, "@") {
		err := c.SendTo(strings.TrimPrefix(to, "@"), actor.Text(m.name+" whispers: "+rest))
		if errors.Is(err, registry.ErrNotFound) {
			return c.Push(actor.Text("no such user"))
		}
		return err
	}
	return c.Publish(m.room, actor.Text(m.name+": "+text))
}

func (m *member) HandleInfo(c *actor.Context, msg any) error {
	if f, ok := msg.(actor.Frame); ok {
		return c.Push(f)
	}
	return nil
}

func TestConnectionsUseTheRegistry(t *testing.T) {
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer sys.Shutdown()
	reg, err := registry.NewLocal(sys, registry.WithConflict(registry.Replace(4001, "signed in elsewhere")))
	require.NoError(t, err)
	defer reg.Stop()
	srv, err := wsactor.NewServer(sys, func() actor.Handler { return &member{} }, wsactor.WithRegistry(reg))
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	// Cleanups run last-in first-out: the clients below close first.
	t.Cleanup(hs.Close)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	base := "ws" + strings.TrimPrefix(hs.URL, "http")
	dial := func(name, room string) *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial(base+"?name="+name+"&room="+room, nil)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	read := func(c *websocket.Conn) string {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, data, err := c.ReadMessage()
		require.NoError(t, err)
		return string(data)
	}
	ctx := context.Background()
	members := func(room string) int {
		pids, err := reg.Members(ctx, room)
		require.NoError(t, err)
		return len(pids)
	}

	alice, bob, carol := dial("alice", "lobby"), dial("bob", "lobby"), dial("carol", "kitchen")
	require.Eventually(t, func() bool { return members("lobby") == 2 && members("kitchen") == 1 }, 5*time.Second, time.Millisecond)

	require.NoError(t, alice.WriteMessage(websocket.TextMessage, []byte("hello")))
	assert.Equal(t, "alice: hello", read(alice))
	assert.Equal(t, "alice: hello", read(bob))
	require.NoError(t, bob.WriteMessage(websocket.TextMessage, []byte("@carol psst")))
	assert.Equal(t, "bob whispers: psst", read(carol))
	require.NoError(t, bob.WriteMessage(websocket.TextMessage, []byte("@dave hi")))
	assert.Equal(t, "no such user", read(bob))

	// A second alice takes the name over; the first is closed with 4001.
	alice2 := dial("alice", "lobby")
	require.NoError(t, alice.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, _, err = alice.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 4001, ce.Code)
	assert.Equal(t, "signed in elsewhere", ce.Text)
	require.NoError(t, carol.WriteMessage(websocket.TextMessage, []byte("@alice are you new?")))
	assert.Equal(t, "carol whispers: are you new?", read(alice2))

	// Leaving: the old alice's membership went with her connection.
	require.Eventually(t, func() bool { return members("lobby") == 2 }, 5*time.Second, time.Millisecond)
}
