package main

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/internal/racedetect"
)

// freeClusterPort returns a port p such that p and p+1 are free on
// loopback (the cluster port and the membership checks' port).
func freeClusterPort(t *testing.T) int {
	for range 50 {
		l1, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		p := l1.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		l1.Close()
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no free pair of ports")
	return 0
}

// TestChatCluster runs two chat nodes joined as a cluster with no external
// service: rooms and names span both.
func TestChatCluster(t *testing.T) {
	if racedetect.Enabled {
		t.Skip("proto.actor's cluster races among itself; run without -race: go test -count=1 -run Cluster ./examples/chat/")
	}
	p1, p2 := freeClusterPort(t), freeClusterPort(t)
	for p2 == p1+1 || p2+1 == p1 {
		p2 = freeClusterPort(t)
	}
	a1, a2 := "127.0.0.1:"+strconv.Itoa(p1), "127.0.0.1:"+strconv.Itoa(p2)
	ready1, _ := launchChat(t, "-cluster", a1, "-peers", a2)
	ready2, _ := launchChat(t, "-cluster", a2, "-peers", a1)
	node1, node2 := ready1(), ready2()

	alice := join(t, node1, "alice", "lobby")
	bob := join(t, node2, "bob", "lobby")
	// Each member answers an unknown name, which also means it is set up.
	for _, c := range []*websocket.Conn{alice, bob} {
		say(t, c, `{"to":"nobody","text":"?"}`)
		assert.Equal(t, `{"error":"no such user: nobody"}`, hear(t, c))
	}
	aliceIn, bobIn := inbox(alice), inbox(bob)
	// The registry is replicated: each node hears of the other's users
	// after one message between them.
	reachable(t, bob, bobIn, "alice", aliceIn)
	inRoom(t, alice, aliceIn, "lobby", bobIn)

	say(t, alice, `{"text":"hello from node 1"}`)
	assert.Equal(t, `{"from":"alice","room":"lobby","text":"hello from node 1"}`, next(t, aliceIn))
	assert.Equal(t, `{"from":"alice","room":"lobby","text":"hello from node 1"}`, next(t, bobIn))

	say(t, bob, `{"to":"alice","text":"psst"}`)
	assert.Equal(t, `{"from":"bob","to":"alice","text":"psst"}`, next(t, aliceIn))

	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(node2, "http")+"/ws?name=alice&room=x", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "a name taken on node 1 is taken on node 2")
}

// inbox reads c on a goroutine; its messages arrive on the channel, which
// closes when c fails or closes.
func inbox(c *websocket.Conn) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			ch <- string(data)
		}
	}()
	return ch
}

func next(t *testing.T, in <-chan string) string {
	t.Helper()
	select {
	case m, ok := <-in:
		require.True(t, ok, "connection closed")
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing heard within 5 s")
		return ""
	}
}

// reachable sends direct messages from c to name until one arrives
// (each send is answered "no such user" until c's node knows name).
func reachable(t *testing.T, c *websocket.Conn, cIn <-chan string, name string, nameIn <-chan string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		say(t, c, `{"to":"`+name+`","text":"sync"}`)
		select {
		case m := <-cIn:
			require.Equal(t, `{"error":"no such user: `+name+`"}`, m)
		case m := <-nameIn:
			require.Contains(t, m, `"text":"sync"`)
			return
		case <-deadline:
			t.Fatalf("%s never became reachable", name)
		}
	}
}

// inRoom publishes from c to room until a member listening on other hears
// it, then drains what is left of the probes on both sides.
func inRoom(t *testing.T, c *websocket.Conn, cIn <-chan string, room string, other <-chan string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for heard := false; !heard; {
		say(t, c, `{"text":"probe"}`)
		require.Contains(t, next(t, cIn), `"text":"probe"`) // c's own copy
		select {
		case m := <-other:
			require.Contains(t, m, `"text":"probe"`)
			heard = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the room %s never reached the other node", room)
		}
	}
	say(t, c, `{"text":"fence"}`)
	for _, in := range []<-chan string{cIn, other} {
		for m := next(t, in); !strings.Contains(m, `"text":"fence"`); m = next(t, in) {
			require.Contains(t, m, `"text":"probe"`)
		}
	}
}
