package main

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

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

	say(t, alice, `{"text":"hello from node 1"}`)
	assert.Equal(t, `{"from":"alice","room":"lobby","text":"hello from node 1"}`, hear(t, alice))
	assert.Equal(t, `{"from":"alice","room":"lobby","text":"hello from node 1"}`, hear(t, bob))

	say(t, bob, `{"to":"alice","text":"psst"}`)
	assert.Equal(t, `{"from":"bob","to":"alice","text":"psst"}`, hear(t, alice))

	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(node2, "http")+"/ws?name=alice&room=x", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "a name taken on node 1 is taken on node 2")
}
