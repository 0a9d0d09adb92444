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
	node1, node2 := twoNodes(t)

	alice := join(t, node1, "alice", "lobby")
	bob := join(t, node2, "bob", "lobby")
	// Each member answers an unknown name, which also means it is set up.
	for _, p := range []*peer{alice, bob} {
		say(t, p, `{"to":"nobody","text":"?"}`)
		assert.Equal(t, `{"error":"no such user: nobody"}`, hear(t, p))
	}
	// The registry is replicated: each node hears of the other's users
	// after one message between them.
	reachable(t, bob, "alice", alice)
	inRoom(t, alice, "lobby", bob)

	say(t, alice, `{"text":"hello from node 1"}`)
	assert.Equal(t, `{"from":"alice","room":"lobby","text":"hello from node 1"}`, hear(t, alice))
	assert.Equal(t, `{"from":"alice","room":"lobby","text":"hello from node 1"}`, hear(t, bob))

	say(t, bob, `{"to":"alice","text":"psst"}`)
	assert.Equal(t, `{"from":"bob","to":"alice","text":"psst"}`, hear(t, alice))

	_, resp, err := websocket.DefaultDialer.Dial(dialURL(node2, "alice", "x"), nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "a name taken on node 1 is taken on node 2")
}

// TestChatClusterPresence runs two chat nodes joined as a cluster: users
// see who joins and leaves a room on either node.
func TestChatClusterPresence(t *testing.T) {
	node1, node2 := twoNodes(t)

	// bob's node may hear of alice after bob joined: then alice is not in
	// bob's first message but joins later. Either way each sees the other
	// once.
	alice := join(t, node1, "alice", "lobby")
	assert.Equal(t, presenceOf("lobby", "alice"), alice.first)
	bob := join(t, node2, "bob", "lobby")
	assert.True(t, bob.members["bob"], "bob is in his own first message: %s", bob.first)
	waitMembers(t, alice, 5*time.Second, "alice", "bob")
	waitMembers(t, bob, 5*time.Second, "alice", "bob")

	// Once both nodes have both, a newcomer on either sees both at once.
	carol := join(t, node1, "carol", "lobby")
	assert.Equal(t, presenceOf("lobby", "alice", "bob", "carol"), carol.first)
	dave := join(t, node2, "dave", "lobby")
	waitMembers(t, dave, 5*time.Second, "alice", "bob", "carol", "dave")
	for _, p := range []*peer{alice, bob} {
		waitMembers(t, p, 5*time.Second, "alice", "bob", "carol", "dave")
	}
	waitMembers(t, carol, 5*time.Second, "alice", "bob", "carol", "dave")

	// Leaving on one node is seen on the other.
	require.NoError(t, bob.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")))
	carol.conn.Close()
	for _, p := range []*peer{alice, dave} {
		waitMembers(t, p, 5*time.Second, "alice", "dave")
	}
	// Nothing else came: each node's registry sends its news in order, so
	// erin's joining is the next news for both.
	erin := join(t, node2, "erin", "lobby")
	assert.Equal(t, presenceOf("lobby", "alice", "dave", "erin"), erin.first)
	for _, p := range []*peer{alice, dave} {
		assert.Equal(t, "joined erin", nextNews(t, p, 5*time.Second))
	}
}

// reachable sends direct messages from p to name until one arrives
// (each send is answered "no such user" until p's node knows name).
func reachable(t *testing.T, p *peer, name string, target *peer) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		say(t, p, `{"to":"`+name+`","text":"sync"}`)
		select {
		case m := <-p.chat:
			require.Equal(t, `{"error":"no such user: `+name+`"}`, m)
		case m := <-target.chat:
			require.Contains(t, m, `"text":"sync"`)
			return
		case <-deadline:
			t.Fatalf("%s never became reachable", name)
		}
	}
}

// inRoom publishes from p to room until a member listening on other hears
// it, then drains what is left of the probes on both sides.
func inRoom(t *testing.T, p *peer, room string, other *peer) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for heard := false; !heard; {
		say(t, p, `{"text":"probe"}`)
		require.Contains(t, hear(t, p), `"text":"probe"`) // p's own copy
		select {
		case m := <-other.chat:
			require.Contains(t, m, `"text":"probe"`)
			heard = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the room %s never reached the other node", room)
		}
	}
	say(t, p, `{"text":"fence"}`)
	for _, q := range []*peer{p, other} {
		for m := hear(t, q); !strings.Contains(m, `"text":"fence"`); m = hear(t, q) {
			require.Contains(t, m, `"text":"probe"`)
		}
	}
}

// twoNodes starts two chat nodes joined as a cluster (cluster ports not
// next to each other: each uses its port + 1 for health checks) and
// returns their addresses once both serve.
func twoNodes(t *testing.T) (node1, node2 string) {
	t.Helper()
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
	return ready1(), ready2()
}
