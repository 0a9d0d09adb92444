package registry_test

import (
	"context"
	"fmt"
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

// roomie registers under ?name=, joins "room", and answers its peer:
// "who NAME" with the node NAME runs on (or the error), "count" with the
// room's size, anything else is said to the others in the room.
type roomie struct {
	actor.BaseHandler
	name string
}

func (r *roomie) Connect(h *actor.Handshake) error {
	r.name = h.Request.URL.Query().Get("name")
	return nil
}

func (r *roomie) Init(c *actor.Context) error {
	if err := c.Register(r.name); err != nil {
		return err
	}
	if err := c.Join("room"); err != nil {
		return err
	}
	return c.Push(actor.Text("ready"))
}

func (r *roomie) HandleIn(c *actor.Context, f actor.Frame) error {
	text := string(f.Data)
	switch {
	case strings.HasPrefix(text, "who "):
		pid, err := c.Lookup(strings.TrimPrefix(text, "who "))
		if err != nil {
			return c.Push(actor.Text(err.Error()))
		}
		return c.Push(actor.Text(pid.Address))
	case text == "count":
		ms, err := c.Members("room")
		if err != nil {
			return err
		}
		return c.Push(actor.Text(fmt.Sprint(len(ms))))
	}
	return c.PublishFrom("room", actor.Text(r.name+": "+text))
}

func (r *roomie) HandleInfo(c *actor.Context, msg any) error {
	if f, ok := msg.(actor.Frame); ok {
		return c.Push(f)
	}
	return nil
}

func roomServer(t *testing.T, sys *protoactor.ActorSystem, reg actor.Directory) string {
	t.Helper()
	srv, err := wsactor.NewServer(sys, func() actor.Handler { return &roomie{} }, wsactor.WithRegistry(reg))
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

func joinRoom(t *testing.T, url, name string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url+"?name="+name, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	assert.Equal(t, "ready", readWS(t, c))
	return c
}

func say(t *testing.T, c *websocket.Conn, text string) {
	t.Helper()
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(text)))
}

// checkRoom: what one member of the room says (PublishFrom) reaches the
// others and not itself; Lookup and Members work from the handler.
func checkRoom(t *testing.T, ann, ben, cid *websocket.Conn, benAddr string) {
	say(t, ann, "hello")
	assert.Equal(t, "ann: hello", readWS(t, ben))
	assert.Equal(t, "ann: hello", readWS(t, cid))
	say(t, ben, "hi ann")
	// ann's next frame is ben's: her own "hello" never came back.
	assert.Equal(t, "ben: hi ann", readWS(t, ann))
	assert.Equal(t, "ben: hi ann", readWS(t, cid))

	say(t, ann, "who ben")
	assert.Equal(t, benAddr, readWS(t, ann))
	say(t, ann, "who nobody")
	assert.Equal(t, `protows: no such name "nobody"`, readWS(t, ann))
	say(t, cid, "count")
	assert.Equal(t, "3", readWS(t, cid))
}

func TestContextPublishFromLookupMembers(t *testing.T) {
	sys := newSystem(t)
	url := roomServer(t, sys, newLocal(t, sys))
	ann, ben, cid := joinRoom(t, url, "ann"), joinRoom(t, url, "ben"), joinRoom(t, url, "cid")
	checkRoom(t, ann, ben, cid, sys.Address())
}

// The same across two cluster members: ann and cid on A, ben on B. A
// PublishFrom made on B for an actor of A leaves that actor out too.
func TestClusterContextPublishFromLookupMembers(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	a, b := startPair(t)
	urlA, urlB := roomServer(t, a.sys, a.reg), roomServer(t, b.sys, b.reg)
	ann := joinRoom(t, urlA, "ann")
	ben := joinRoom(t, urlB, "ben")
	cid := joinRoom(t, urlA, "cid")
	ctx := context.Background()
	for _, m := range []*member{a, b} {
		require.Eventually(t, func() bool {
			ms, _ := m.reg.Members(ctx, "room")
			return len(ms) == 3
		}, wait, time.Millisecond)
	}
	checkRoom(t, ann, ben, cid, b.sys.Address())

	annPID, err := b.reg.Lookup(ctx, "ann")
	require.NoError(t, err)
	require.NoError(t, b.reg.PublishFrom(ctx, "room", annPID, actor.Text("not for ann")))
	assert.Equal(t, "not for ann", readWS(t, ben))
	assert.Equal(t, "not for ann", readWS(t, cid))
	require.NoError(t, b.reg.Publish(ctx, "room", actor.Text("for all")))
	assert.Equal(t, "for all", readWS(t, ann), "ann's next frame is the plain Publish")
	_, err = a.reg.Lookup(ctx, "nobody")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	assert.EqualError(t, err, `protows: no such name "nobody"`)
}
