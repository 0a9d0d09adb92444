package wsactor_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry"
	"github.com/protows/protows/wsactor"
)

// member joins "all" and pushes every frame published to it.
type member struct {
	actor.BaseHandler
	joined chan struct{}
}

func (m member) Init(c *actor.Context) error {
	if err := c.Join("all"); err != nil {
		return err
	}
	m.joined <- struct{}{}
	return nil
}

func (member) HandleInfo(c *actor.Context, msg any) error {
	if f, ok := msg.(actor.Frame); ok {
		return c.Push(f)
	}
	return nil
}

// Frames published to a group are framed (and compressed) once and shared:
// connections with and without permessage-deflate all read every frame
// whole, in order, text and binary, small and past gorilla's 4 KiB write
// buffer.
func TestPublishedFramesReachMixedConnections(t *testing.T) {
	sys := newSystem(t)
	reg, err := registry.NewLocal(sys)
	require.NoError(t, err)
	t.Cleanup(reg.Stop)
	joined := make(chan struct{}, 10)
	srv, err := wsactor.NewServer(sys, func() actor.Handler { return member{joined: joined} },
		wsactor.WithRegistry(reg), wsactor.WithCompression(true), wsactor.WithKeepalive(0, 0))
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	url := "ws" + strings.TrimPrefix(hs.URL, "http")

	var clients []*websocket.Conn
	for i := range 6 {
		d := websocket.Dialer{EnableCompression: i%2 == 0}
		c, resp, err := d.Dial(url, nil)
		require.NoError(t, err)
		resp.Body.Close()
		t.Cleanup(func() { c.Close() })
		assert.Equal(t, i%2 == 0, strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate"))
		clients = append(clients, c)
		recv(t, joined, "join")
	}

	var want []actor.Frame
	for i := range 60 {
		switch i % 3 {
		case 0:
			want = append(want, actor.Text(fmt.Sprintf("hello %d ", i)+strings.Repeat("abc", i*40)))
		case 1:
			want = append(want, actor.Binary(bytes.Repeat([]byte{byte(i)}, i*100)))
		default:
			want = append(want, actor.Text(strings.Repeat(fmt.Sprintf("%d,", i), 2000))) // over 4 KiB
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, f := range want {
		require.NoError(t, reg.Publish(ctx, "all", f))
	}
	for n, c := range clients {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
		for i, f := range want {
			mt, data, err := c.ReadMessage()
			require.NoError(t, err)
			require.Equal(t, int(f.Type), mt, "client %d, frame %d", n, i)
			require.True(t, bytes.Equal(f.Data, data), "client %d, frame %d: %d bytes, want %d", n, i, len(data), len(f.Data))
		}
	}
}

// A prepared frame pushed by client connections is written as any other:
// each client masks it with keys of its own, and the server reads it.
func TestPreparedFrameFromClients(t *testing.T) {
	sys := newSystem(t)
	p := newPeerServer(t, nil)
	f := actor.Prepare(actor.Text(strings.Repeat("shared ", 1000)))
	for range 3 {
		c := spawnClient(t, sys, p.url, &pusher{})
		require.NoError(t, c.WaitConnected(waitCtx(t)))
		srv := p.accept(t)
		c.Cast(f)
		assert.Equal(t, string(f.Data), readText(t, srv))
	}
}

// pusher pushes the frames cast to it.
type pusher struct{ actor.BaseHandler }

func (pusher) HandleInfo(c *actor.Context, msg any) error {
	if f, ok := msg.(actor.Frame); ok {
		return c.Push(f)
	}
	return nil
}
