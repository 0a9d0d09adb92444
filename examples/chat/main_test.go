package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/internal/exampletest"
	"github.com/protows/protows/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyClusterTestMain(m) }

// startChat runs the chat server in-process and returns its base URL and
// a function that stops it and returns what run returned.
func startChat(t *testing.T, args ...string) (string, func() error) {
	ready, stop := launchChat(t, args...)
	return ready(), stop
}

// launchChat starts the chat server in-process; ready waits until it says
// where it listens and returns its base URL.
func launchChat(t *testing.T, args ...string) (ready func() string, stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(exampletest.Lines, 10)
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), out, io.Discard) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("the chat server did not stop within 10 s")
		}
	})
	t.Cleanup(func() { _ = stop() })
	ready = func() string {
		t.Helper()
		line := exampletest.Next(t, (<-chan string)(out))
		require.True(t, strings.HasPrefix(line, "listening on http://"), line)
		return strings.TrimPrefix(line, "listening on ")
	}
	return ready, stop
}

func join(t *testing.T, base, name, room string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws?name="+name+"&room="+room, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func say(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(msg)))
}

func hear(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, data, err := c.ReadMessage()
	require.NoError(t, err)
	return string(data)
}

func TestChat(t *testing.T) {
	base, stop := startChat(t)

	resp, err := http.Get(base + "/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(page), "<title>protows chat</title>")

	alice := join(t, base, "alice", "lobby")
	bob := join(t, base, "bob", "lobby")
	carol := join(t, base, "carol", "kitchen")
	// Joining is done in Init, after the handshake: a round trip through
	// each connection makes sure they are in their rooms.
	for _, c := range []*websocket.Conn{alice, bob, carol} {
		say(t, c, `{"to":"nobody","text":"?"}`)
		assert.Equal(t, `{"error":"no such user: nobody"}`, hear(t, c))
	}

	say(t, alice, `{"text":"hi"}`)
	assert.Equal(t, `{"from":"alice","room":"lobby","text":"hi"}`, hear(t, alice))
	assert.Equal(t, `{"from":"alice","room":"lobby","text":"hi"}`, hear(t, bob))

	say(t, alice, `{"to":"carol","text":"psst"}`)
	assert.Equal(t, `{"from":"alice","to":"carol","text":"psst"}`, hear(t, carol), "carol got nothing from the lobby before")

	say(t, bob, `not json`)
	assert.Contains(t, hear(t, bob), `"error"`)

	// A name in use is refused at the handshake.
	_, resp, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws?name=alice&room=x", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	_, resp, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws?room=x", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// A name is free again once its connection is gone.
	require.NoError(t, carol.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")))
	require.Eventually(t, func() bool {
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws?name=carol&room=kitchen", nil)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 5*time.Second, 5*time.Millisecond)

	bob.Close() // only alice is left to answer the close handshake
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	require.NoError(t, alice.SetReadDeadline(time.Now().Add(5*time.Second)))
	for {
		_, _, err := alice.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, websocket.CloseGoingAway, ce.Code)
			break
		}
	}
	assert.NoError(t, <-stopped)
}

// -h prints the usage and exits with status 0.
func TestHelp(t *testing.T) { exampletest.Help(t, "chat") }
