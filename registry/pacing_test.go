package registry_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry"
)

func quietSystem() *protoactor.ActorSystem {
	return protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

// A message larger than the room left in the window, after small ones
// that asked for no acknowledgement, goes as soon as the member
// acknowledges them, not at the next digest (here a minute away).
func TestClusterLargeSendAfterSmall(t *testing.T) {
	skipUnderRace(t)
	t.Parallel()
	a, b := startPair(t, registry.WithSyncInterval(time.Minute))
	ctx := context.Background()
	n, pid := spawnNumbered(a)
	require.NoError(t, a.reg.Register(ctx, "direct", pid))
	require.Eventually(t, func() bool { _, err := b.reg.Lookup(ctx, "direct"); return err == nil }, wait, time.Millisecond)

	require.NoError(t, b.reg.SendTo(ctx, "direct", actor.Text("0 small")))
	require.NoError(t, b.reg.SendTo(ctx, "direct", actor.Text("1 "+strings.Repeat("z", 1500<<10))))
	require.NoError(t, b.reg.SendTo(ctx, "direct", actor.Text("2 small")))
	n.count(t, 3)
}

// A member whose registry hangs for a few seconds (a GC pause, a long
// turn) while a new member waits for its 3 MB snapshot has about 30 of the
// new member's requests waiting when it resumes: it starts one transfer,
// not one per request, and the link (gRPC's 4 MB limit) holds.
func TestClusterSyncRequestsPileUp(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	agent := test.NewInMemAgent()
	fast := registry.WithSyncInterval(100 * time.Millisecond)
	b := startMember(t, test.NewTestProvider(agent), fast)
	ctx := context.Background()
	holder := b.sys.Root.Spawn(protoactor.PropsFromFunc(func(protoactor.Context) {}))
	pad := strings.Repeat("x", 500)
	for i := range 6000 { // about 3 MB: 12 parts
		require.NoError(t, b.reg.Register(ctx, fmt.Sprintf("%s-%d", pad, i), holder))
	}
	var mu sync.Mutex
	var broken []string
	b.sys.EventStream.Subscribe(func(e any) {
		if ev, ok := e.(*remote.EndpointTerminatedEvent); ok {
			mu.Lock()
			broken = append(broken, ev.Address)
			mu.Unlock()
		}
	})

	// B's registry hangs.
	rpid := protoactor.NewPID(b.sys.Address(), "protows-registry")
	proc, ok := b.sys.ProcessRegistry.Get(rpid)
	require.True(t, ok)
	proc.SendSystemMessage(rpid, &protoactor.SuspendMailbox{})

	// A joins and waits for B's entries while B hangs for 3 s (the
	// fault's duration: A asks about 30 times meanwhile).
	sys := quietSystem()
	c := cluster.New(sys, cluster.Configure("protows-test", test.NewTestProvider(agent), disthash.New(), remote.Configure("127.0.0.1", 0)))
	c.StartMember()
	reg, err := registry.NewCluster(c, fast)
	require.NoError(t, err)
	t.Cleanup(func() { reg.Stop(); c.Shutdown(true) })
	time.Sleep(3 * time.Second)
	proc.SendSystemMessage(rpid, &protoactor.ResumeMailbox{})

	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, reg.WaitSynced(wctx))
	holder2 := b.sys.Root.Spawn(protoactor.PropsFromFunc(func(protoactor.Context) {}))
	require.NoError(t, b.reg.Register(ctx, "after", holder2))
	require.Eventually(t, func() bool { _, err := reg.Lookup(ctx, "after"); return err == nil }, wait, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, broken, "B's link to A broke (a batch over gRPC's 4 MB limit) after B answered the waiting requests")
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// frames records the Frames an actor receives.
type frames struct {
	mu  sync.Mutex
	got []string
}

func (f *frames) props() *protoactor.Props {
	return protoactor.PropsFromFunc(func(c protoactor.Context) {
		if fr, ok := c.Message().(actor.Frame); ok {
			f.mu.Lock()
			s := string(fr.Data)
			if len(s) > 20 {
				s = s[:20] + "..."
			}
			f.got = append(f.got, s)
			f.mu.Unlock()
		}
	})
}

func (f *frames) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

// Messages waiting for a member that stopped acknowledging and was then
// killed are dropped when it leaves the topology, never handed to the
// process that restarts on its address (whose actors may reuse the ids).
func TestClusterQueuedSendsNotForTheNextProcess(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	agent := test.NewInMemAgent()
	fast := registry.WithSyncInterval(200 * time.Millisecond)
	ctx := context.Background()
	a := startMember(t, test.NewTestProvider(agent), fast)
	port := freePort(t)

	sys1 := quietSystem()
	c1 := cluster.New(sys1, cluster.Configure("protows-test", test.NewTestProvider(agent), disthash.New(), remote.Configure("127.0.0.1", port)))
	c1.StartMember()
	reg1, err := registry.NewCluster(c1, fast)
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	require.NoError(t, reg1.WaitSynced(wctx))

	var alice frames
	v1, err := sys1.Root.SpawnNamed(alice.props(), "victim")
	require.NoError(t, err)
	require.NoError(t, reg1.Register(ctx, "alice", v1))
	visible(t, a, "alice")

	// B1 stops acknowledging; A sends alice more than the window.
	registry.Partition(reg1, a.sys.Address(), true)
	big := strings.Repeat("p", 600<<10)
	require.NoError(t, a.reg.SendTo(ctx, "alice", actor.Text("for alice 1 "+big)))
	require.NoError(t, a.reg.SendTo(ctx, "alice", actor.Text("for alice 2 "+big)))
	require.NoError(t, a.reg.SendTo(ctx, "alice", actor.Text("for alice: secret")))
	require.Eventually(t, func() bool { return len(alice.list()) == 1 }, wait, time.Millisecond)
	addr := sys1.Address()
	require.Equal(t, 2, registry.Waiting(a.reg, addr), "messages waiting at A for B1")

	// B1 dies without leaving (kill -9); B2 starts on the same port.
	c1.Remote.Shutdown(false)
	t.Cleanup(func() { c1.Shutdown(false) })
	sys2 := quietSystem()
	c2 := cluster.New(sys2, cluster.Configure("protows-test", test.NewTestProvider(agent), disthash.New(), remote.Configure("127.0.0.1", port)))
	c2.StartMember()
	t.Cleanup(func() { c2.Shutdown(true) })
	hasMember := func(id string) bool {
		for _, m := range a.c.MemberList.Members().Members() {
			if m.Id == id {
				return true
			}
		}
		return false
	}
	require.Eventually(t, func() bool { return hasMember(sys2.ID) }, wait, time.Millisecond)
	// The provider declares B1 gone.
	agent.DeregisterService(sys1.ID)
	require.Eventually(t, func() bool { return !hasMember(sys1.ID) }, wait, time.Millisecond)
	require.Eventually(t, func() bool { return registry.Waiting(a.reg, addr) == 0 }, wait, time.Millisecond,
		"A still holds messages for B1 after B1 left the cluster")

	reg2, err := registry.NewCluster(c2, fast)
	require.NoError(t, err)
	t.Cleanup(reg2.Stop)
	var bob frames
	v2, err := sys2.Root.SpawnNamed(bob.props(), "victim") // same id as alice's actor had
	require.NoError(t, err)
	require.NoError(t, reg2.Join(ctx, "lobby", v2))
	require.NoError(t, reg2.Register(ctx, "bob", v2))

	visible(t, a, "bob")
	require.Empty(t, bob.list(), "B2's actor received messages A queued for alice on B1")
}
