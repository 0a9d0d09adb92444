package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
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

// peer is a test's chat connection. join reads its first message; then a
// goroutine (started by join, ended by the connection's end) reads the
// rest: news of who joined or left goes to news as "joined NAME" or "left
// NAME", everything else to chat. members is the room as the peer knows
// it, kept by the test's goroutine (see nextNews).
type peer struct {
	conn       *websocket.Conn
	room       string
	first      string
	chat, news chan string
	done       chan struct{} // closed when reading ends
	err        error         // why, once done is closed
	members    map[string]bool
}

// dialURL is the websocket URL of a user of the chat at base.
func dialURL(base, name, room string) string {
	return "ws" + strings.TrimPrefix(base, "http") + "/ws?" + url.Values{"name": {name}, "room": {room}}.Encode()
}

// join connects name to room and reads the first message, which must be
// the room's presence.
func join(t *testing.T, base, name, room string) *peer {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(dialURL(base, name, room), nil)
	require.NoError(t, err)
	quit := make(chan struct{})
	t.Cleanup(func() {
		close(quit)
		c.Close()
	})
	p := &peer{conn: c, room: room, chat: make(chan string, 256), news: make(chan string, 256), done: make(chan struct{}), members: map[string]bool{}}
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, data, err := c.ReadMessage()
	require.NoError(t, err, "%s: the first message", name)
	require.NoError(t, c.SetReadDeadline(time.Time{}))
	p.first = string(data)
	var m presenceMsg
	require.NoError(t, json.Unmarshal(data, &m), "%s: the first message", name)
	require.NotNil(t, m.Presence, "%s: the first message is not the room's presence: %s", name, data)
	for _, n := range m.Presence.Members {
		p.members[n] = true
	}
	go func() {
		defer close(p.done)
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				p.err = err
				return
			}
			ch, msg := p.chat, string(data)
			var m presenceMsg
			if json.Unmarshal(data, &m) == nil {
				switch {
				case m.Joined != "":
					ch, msg = p.news, "joined "+m.Joined
				case m.Left != "":
					ch, msg = p.news, "left "+m.Left
				}
			}
			select {
			case ch <- msg:
			case <-quit:
				return
			}
		}
	}()
	return p
}

// presenceMsg is what the chat says of who is in a room.
type presenceMsg struct {
	Presence *struct {
		Room    string   `json:"room"`
		Members []string `json:"members"`
	} `json:"presence"`
	Joined string `json:"joined"`
	Left   string `json:"left"`
	Room   string `json:"room"`
}

func presenceOf(room string, members ...string) string {
	r, _ := json.Marshal(room)
	ms, _ := json.Marshal(members)
	return `{"presence":{"room":` + string(r) + `,"members":` + string(ms) + `}}`
}

func say(t *testing.T, p *peer, msg string) {
	t.Helper()
	require.NoError(t, p.conn.WriteMessage(websocket.TextMessage, []byte(msg)))
}

// hear returns p's next message other than news of who came or went.
func hear(t *testing.T, p *peer) string {
	t.Helper()
	select {
	case m := <-p.chat:
		return m
	case <-p.done:
		t.Fatalf("the connection ended: %v", p.err)
	case <-time.After(5 * time.Second):
		t.Fatal("nothing heard within 5 s")
	}
	return ""
}

// nextNews returns p's next news of who came or went, and applies it to
// p.members: a name joins when it is not there and leaves when it is.
func nextNews(t *testing.T, p *peer, limit time.Duration) string {
	t.Helper()
	select {
	case n := <-p.news:
		kind, name, _ := strings.Cut(n, " ")
		if kind == "joined" {
			assert.False(t, p.members[name], "%s joined, but was there", name)
			p.members[name] = true
		} else {
			assert.True(t, p.members[name], "%s left, but was not there", name)
			delete(p.members, name)
		}
		return n
	case <-p.done:
		t.Fatalf("the connection ended: %v", p.err)
	case <-time.After(limit):
		t.Fatalf("no news within %v; members %v", limit, p.sortedMembers())
	}
	return ""
}

// waitMembers applies p's news until the room holds exactly want.
func waitMembers(t *testing.T, p *peer, limit time.Duration, want ...string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	slices.Sort(want)
	for !slices.Equal(p.sortedMembers(), want) {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("members %v, want %v within %v", p.sortedMembers(), want, limit)
		}
		nextNews(t, p, left)
	}
}

func (p *peer) sortedMembers() []string {
	ms := make([]string, 0, len(p.members))
	for n := range p.members {
		ms = append(ms, n)
	}
	slices.Sort(ms)
	return ms
}

// closeError waits until reading p ends and returns why.
func closeError(t *testing.T, p *peer) error {
	t.Helper()
	for {
		select {
		case <-p.chat: // what came before the close
		case <-p.news:
		case <-p.done:
			return p.err
		case <-time.After(5 * time.Second):
			t.Fatal("the connection did not end within 5 s")
			return nil
		}
	}
}

func TestChat(t *testing.T) {
	base, stop := startChat(t)

	resp, err := http.Get(base + "/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(page), "<title>protows chat</title>")
	assert.Contains(t, string(page), `id="members"`)

	alice := join(t, base, "alice", "lobby")
	bob := join(t, base, "bob", "lobby")
	carol := join(t, base, "carol", "kitchen")
	// The first message comes once Init has joined the room: each is in.
	assert.Equal(t, presenceOf("lobby", "alice"), alice.first)
	assert.Equal(t, presenceOf("lobby", "alice", "bob"), bob.first)
	assert.Equal(t, presenceOf("kitchen", "carol"), carol.first)

	say(t, alice, `{"text":"hi"}`)
	assert.Equal(t, `{"from":"alice","room":"lobby","text":"hi"}`, hear(t, alice))
	assert.Equal(t, `{"from":"alice","room":"lobby","text":"hi"}`, hear(t, bob))

	say(t, alice, `{"to":"carol","text":"psst"}`)
	assert.Equal(t, `{"from":"alice","to":"carol","text":"psst"}`, hear(t, carol), "carol got nothing from the lobby before")

	say(t, bob, `not json`)
	assert.Contains(t, hear(t, bob), `"error"`)
	say(t, bob, `{"to":"nobody","text":"?"}`)
	assert.Equal(t, `{"error":"no such user: nobody"}`, hear(t, bob))

	// A name in use is refused at the handshake.
	_, resp, err = websocket.DefaultDialer.Dial(dialURL(base, "alice", "x"), nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	_, resp, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws?room=x", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// A name is free again once its connection is gone.
	require.NoError(t, carol.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")))
	require.Eventually(t, func() bool {
		c, _, err := websocket.DefaultDialer.Dial(dialURL(base, "carol", "kitchen"), nil)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 5*time.Second, 5*time.Millisecond)

	bob.conn.Close() // only alice is left to answer the close handshake
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	var ce *websocket.CloseError
	require.ErrorAs(t, closeError(t, alice), &ce)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	assert.NoError(t, <-stopped)
}

// TestChatPresence follows a room's presence on one node: who is there
// when one joins, then who joins and leaves, in one room and not another.
func TestChatPresence(t *testing.T) {
	base, _ := startChat(t)

	alice := join(t, base, "alice", "lobby")
	assert.Equal(t, presenceOf("lobby", "alice"), alice.first)
	bob := join(t, base, "bob", "lobby")
	assert.Equal(t, presenceOf("lobby", "alice", "bob"), bob.first)
	assert.Equal(t, "joined bob", nextNews(t, alice, 5*time.Second))

	carol := join(t, base, "carol", "kitchen")
	assert.Equal(t, presenceOf("kitchen", "carol"), carol.first, "another room's members are not listed")
	dave := join(t, base, "dave", "lobby")
	assert.Equal(t, presenceOf("lobby", "alice", "bob", "dave"), dave.first)
	assert.Equal(t, "joined dave", nextNews(t, alice, 5*time.Second))
	assert.Equal(t, "joined dave", nextNews(t, bob, 5*time.Second))

	// A close handshake, and a connection that just drops: both leave.
	require.NoError(t, bob.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")))
	assert.Equal(t, "left bob", nextNews(t, alice, 5*time.Second))
	assert.Equal(t, "left bob", nextNews(t, dave, 5*time.Second))
	dave.conn.Close()
	assert.Equal(t, "left dave", nextNews(t, alice, 5*time.Second))
	assert.Equal(t, []string{"alice"}, alice.sortedMembers())

	// The name is free again: bob comes back and finds alice alone.
	bob = join(t, base, "bob", "lobby")
	assert.Equal(t, presenceOf("lobby", "alice", "bob"), bob.first)
	assert.Equal(t, "joined bob", nextNews(t, alice, 5*time.Second))

	// A name in use is still refused at the handshake, and its holder
	// sees no one come or go.
	_, resp, err := websocket.DefaultDialer.Dial(dialURL(base, "bob", "lobby"), nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	// Diffs come in order from one registry: erin's joining is a fence,
	// news of the refused connection, had there been any, would come
	// before it.
	erin := join(t, base, "erin", "lobby")
	assert.Equal(t, presenceOf("lobby", "alice", "bob", "erin"), erin.first)
	assert.Equal(t, "joined erin", nextNews(t, bob, 5*time.Second))
	assert.Equal(t, "joined erin", nextNews(t, alice, 5*time.Second))
	assert.Empty(t, carol.news, "news from another room")
}

// TestChatPresenceFirst checks that the presence message is the first a
// connection gets even when room messages and answers to its own messages
// race with its joining: another user publishes to the room without pause,
// and each newcomer sends a message at once.
func TestChatPresenceFirst(t *testing.T) {
	base, _ := startChat(t)
	alice := join(t, base, "alice", "lobby")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	talking := make(chan error, 1)
	// Started here, ended by cancel (deferred) or a failed write.
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			if err := alice.conn.WriteMessage(websocket.TextMessage, []byte(`{"text":"chatter `+strconv.Itoa(i)+`"}`)); err != nil {
				talking <- err
				return
			}
			select {
			case <-alice.chat: // her own copy; keeps her reader going
			case <-ctx.Done():
			}
		}
		talking <- nil
	}()
	for i := range 30 {
		name := "user" + strconv.Itoa(i)
		c, _, err := websocket.DefaultDialer.Dial(dialURL(base, name, "lobby"), nil)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(`{"to":"nobody","text":"?"}`)))
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, data, err := c.ReadMessage()
		require.NoError(t, err)
		var m presenceMsg
		require.NoError(t, json.Unmarshal(data, &m))
		if assert.NotNil(t, m.Presence, "%s: the first message is %s", name, data) {
			assert.Equal(t, "lobby", m.Presence.Room)
			assert.Equal(t, []string{"alice", name}, m.Presence.Members)
		}
		// Its own question was answered after it, room messages
		// notwithstanding.
		for {
			_, data, err := c.ReadMessage()
			require.NoError(t, err, "%s: waiting for the answer", name)
			if string(data) == `{"error":"no such user: nobody"}` {
				break
			}
			assert.Contains(t, string(data), `"text":"chatter `, "%s", name)
		}
		// Joining and leaving within one presence interval would make no
		// news: alice hears of the join before the newcomer goes.
		assert.Equal(t, "joined "+name, nextNews(t, alice, 5*time.Second))
		c.Close()
		assert.Equal(t, "left "+name, nextNews(t, alice, 5*time.Second))
	}
	cancel()
	assert.NoError(t, <-talking)
}

// -h prints the usage and exits with status 0.
func TestHelp(t *testing.T) { exampletest.Help(t, "chat") }
