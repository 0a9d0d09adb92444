package protows_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/protows/protows/internal/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// The room is a plain proto.actor actor: connections join it, it
// broadcasts what they say, and it watches them so a closed connection
// leaves without saying so.
type (
	join    struct{ pid *protoactor.PID }
	say     struct{ text string }
	members struct{}
)

type room struct{ members []*protoactor.PID }

func (r *room) Receive(ctx protoactor.Context) {
	switch m := ctx.Message().(type) {
	case *join:
		r.members = append(r.members, m.pid)
		ctx.Watch(m.pid)
	case *say:
		for _, pid := range r.members {
			ctx.Send(pid, actor.Text(m.text))
		}
	case *protoactor.Terminated:
		for i, pid := range r.members {
			if pid.Equal(m.Who) {
				r.members = append(r.members[:i], r.members[i+1:]...)
				break
			}
		}
	case members:
		ctx.Respond(len(r.members))
	}
}

// chatter is the connection side: it joins the room on Init, sends what its
// peer writes to the room, and pushes what the room broadcasts.
type chatter struct {
	actor.BaseHandler
	room *protoactor.PID
	name string
}

func (c *chatter) Connect(h *actor.Handshake) error {
	c.name = h.Request.URL.Query().Get("name")
	if c.name == "" {
		return actor.Reject(400, "name required")
	}
	return nil
}

func (c *chatter) Init(ctx *actor.Context) error {
	ctx.Send(c.room, &join{pid: ctx.Self()})
	return nil
}

func (c *chatter) HandleIn(ctx *actor.Context, f actor.Frame) error {
	ctx.Send(c.room, &say{text: c.name + ": " + string(f.Data)})
	return nil
}

func (c *chatter) HandleInfo(ctx *actor.Context, msg any) error {
	if f, ok := msg.(actor.Frame); ok {
		return ctx.Push(f)
	}
	return nil
}

func TestConnectionsAndActorsTalk(t *testing.T) {
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer sys.Shutdown()
	roomPID := sys.Root.Spawn(protoactor.PropsFromProducer(func() protoactor.Actor { return &room{} }))
	defer sys.Root.Stop(roomPID)

	srv, err := wsactor.NewServer(sys, func() actor.Handler { return &chatter{room: roomPID} })
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, srv.Shutdown(ctx))
	}()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")

	memberCount := func() int {
		n, err := sys.Root.RequestFuture(roomPID, members{}, time.Second).Result()
		require.NoError(t, err)
		return n.(int)
	}
	names := []string{"ada", "bob", "cy"}
	conns := map[string]*websocket.Conn{}
	for _, name := range names {
		c, _, err := websocket.DefaultDialer.Dial(url+"?name="+name, nil)
		require.NoError(t, err)
		defer c.Close()
		conns[name] = c
	}
	// Joins are asynchronous: wait for the room to have everyone.
	require.Eventually(t, func() bool { return memberCount() == 3 }, 5*time.Second, time.Millisecond)

	for i := range 5 {
		require.NoError(t, conns["ada"].WriteMessage(websocket.TextMessage, []byte(fmt.Sprint("hello ", i))))
	}
	for _, name := range names {
		for i := range 5 {
			require.NoError(t, conns[name].SetReadDeadline(time.Now().Add(5*time.Second)))
			_, msg, err := conns[name].ReadMessage()
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprint("ada: hello ", i), string(msg), "to %s, in order", name)
		}
	}

	// A connection that goes away leaves the room: its actor stopped and the
	// room watched it.
	require.NoError(t, conns["bob"].WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")))
	require.Eventually(t, func() bool { return memberCount() == 2 }, 5*time.Second, time.Millisecond)
}
