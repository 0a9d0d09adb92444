package wsactor_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry"
	"github.com/protows/protows/wsactor"
)

// raw appends one masked client frame with the given first header byte to
// the batch, as a peer that breaks the protocol would send it.
func (c *batchConn) raw(b0 byte, payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(payload) > 125 {
		panic("raw: payload too long for a one-byte length")
	}
	key := [4]byte{1, 2, 3, 4}
	c.buf = append(c.buf, b0, 0x80|byte(len(payload)))
	c.buf = append(c.buf, key[:]...)
	for i, b := range payload {
		c.buf = append(c.buf, b^key[i%4])
	}
}

// Replies to the messages a peer sent before a protocol error reach it
// before the close frame that answers the error, whether the bad frame is
// refused by its header (gorilla's own 1002), by its payload (invalid
// UTF-8, 1007) or by its size (1009): the run and the bad frame arrive in
// one read, so the replies were being held back to leave together.
func TestRepliesBeforeProtocolError(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  func(*batchConn)
		code int
	}{
		{"RSV2 set", func(bc *batchConn) { bc.raw(0x80|0x20|0x1, []byte("x")) }, websocket.CloseProtocolError},
		{"reserved opcode", func(bc *batchConn) { bc.raw(0x80|0x3, []byte("x")) }, websocket.CloseProtocolError},
		{"continuation without a start", func(bc *batchConn) { bc.raw(0x80, []byte("x")) }, websocket.CloseProtocolError},
		{"invalid UTF-8", func(bc *batchConn) { bc.raw(0x80|0x1, []byte{'o', 'k', 0xff}) }, websocket.CloseInvalidFramePayloadData},
		{"over the read limit", func(bc *batchConn) { bc.raw(0x80|0x2, bytes.Repeat([]byte{7}, 100)) }, websocket.CloseMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := newEvents()
			_, c, bc := pipelinedServer(t, func() actor.Handler { return &probe{ev: ev} }, wsactor.WithReadLimit(64))
			bc.start()
			for i := range 20 {
				require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("m%d", i))))
			}
			tc.bad(bc)
			bc.send(t)
			for i := range 20 {
				_, data := read(t, c)
				require.Equal(t, fmt.Sprintf("m%d", i), data, "reply %d", i)
			}
			assert.Equal(t, tc.code, readClose(t, c).Code)
		})
	}
}

// A reply is not held back for the next message's handler: when that
// handler is slow, the reply to the message before it still leaves at
// once, though the two arrived together.
func TestReplyNotHeldForSlowHandler(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	ev := newEvents()
	_, c, bc := pipelinedServer(t, func() actor.Handler {
		return &probe{ev: ev, in: func(ctx *actor.Context, f actor.Frame) error {
			if string(f.Data) == "slow" {
				select {
				case <-release:
				case <-time.After(4 * wait): // well past the test's deadline
				}
			}
			return ctx.Push(f)
		}}
	})
	bc.start()
	for _, m := range []string{"a", "b", "slow"} {
		require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(m)))
	}
	bc.send(t)
	for _, want := range []string{"a", "b"} {
		_, data := read(t, c)
		require.Equal(t, want, data)
	}
	once.Do(func() { close(release) })
	_, data := read(t, c)
	assert.Equal(t, "slow", data)
}

// Holding replies back to send them together never overflows a small
// backlog: a fast peer pipelining messages (as many as the server's read
// buffer holds at once) to a connection whose backlog holds 4 KiB, or 16
// frames, gets every echo, and no 1013.
func TestDeferredRepliesKeepBacklogBound(t *testing.T) {
	for _, tc := range []struct {
		name          string
		frames, bytes int
	}{{"4 KiB", 0, 4 << 10}, {"16 frames", 16, 1 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			ev := newEvents()
			_, c, bc := pipelinedServer(t, func() actor.Handler { return &probe{ev: ev} }, wsactor.WithOutboundLimit(tc.frames, tc.bytes))
			msg := strings.Repeat("x", 90)
			for round := range 5 {
				bc.start()
				for i := range 200 {
					require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("%d.%03d:%s", round, i, msg))))
				}
				bc.send(t)
				for i := range 200 {
					_, data := read(t, c)
					require.Equal(t, fmt.Sprintf("%d.%03d:%s", round, i, msg), data)
				}
			}
		})
	}
}

// prefixer joins "all" and pushes each frame published to it behind a
// prefix of its own: the frame it pushes is a copy of the published one
// with other Data.
type prefixer struct {
	actor.BaseHandler
	prefix string
	joined chan struct{}
}

func (p *prefixer) Init(c *actor.Context) error {
	if err := c.Join("all"); err != nil {
		return err
	}
	p.joined <- struct{}{}
	return nil
}

func (p *prefixer) HandleInfo(c *actor.Context, msg any) error {
	f, ok := msg.(actor.Frame)
	if !ok {
		return nil
	}
	switch p.prefix {
	case "":
		return c.Push(f) // as published
	case "cut":
		f.Data = f.Data[:3] // same bytes, shorter
	case "bin":
		f.Type = actor.BinaryMessage // same bytes, other type
	default:
		f.Data = append([]byte(p.prefix), f.Data...)
	}
	return c.Push(f)
}

// A published frame is prepared (framed once for all), but a handler that
// changes the copy it got (other Data, a shorter slice, another type)
// sends what it made, not the bytes of the frame as published; handlers
// that push it as it is still share its encoding.
func TestChangedPublishedFrameIsFramedAnew(t *testing.T) {
	sys := newSystem(t)
	reg, err := registry.NewLocal(sys)
	require.NoError(t, err)
	t.Cleanup(reg.Stop)
	prefixes := []string{"", "A:", "cut", "B:", "bin", ""}
	var mu sync.Mutex
	next := 0
	joined := make(chan struct{}, len(prefixes))
	srv, err := wsactor.NewServer(sys, func() actor.Handler {
		mu.Lock()
		defer mu.Unlock()
		next++
		return &prefixer{prefix: prefixes[next-1], joined: joined}
	}, wsactor.WithRegistry(reg), wsactor.WithKeepalive(0, 0))
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	var clients []*websocket.Conn
	for range prefixes {
		c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
		require.NoError(t, err)
		resp.Body.Close()
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
		recv(t, joined, "join")
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for i := range 20 {
		require.NoError(t, reg.Publish(ctx, "all", actor.Text(fmt.Sprintf("news %d", i))))
	}
	for n, c := range clients {
		for i := range 20 {
			text := fmt.Sprintf("news %d", i)
			wantType, want := websocket.TextMessage, text
			switch p := prefixes[n]; p {
			case "":
			case "cut":
				want = text[:3]
			case "bin":
				wantType = websocket.BinaryMessage
			default:
				want = p + text
			}
			mt, data := read(t, c)
			require.Equal(t, wantType, mt, "client %d (%q), frame %d", n, prefixes[n], i)
			require.Equal(t, want, data, "client %d (%q), frame %d", n, prefixes[n], i)
		}
	}
}
