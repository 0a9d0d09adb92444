package registry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/racedetect"
	"github.com/protows/protows/registry"
	"github.com/protows/protows/wsactor"
)

func skipUnderRace(t *testing.T) {
	if racedetect.Enabled {
		t.Skip("proto.actor's remote and cluster packages race among themselves (remote endpoint shutdown, the gossip block list, gRPC's logger swap); " +
			"cluster tests run without -race: go test -count=1 -run Cluster ./registry/")
	}
}

// member is one node of a test cluster: an actor system, its cluster
// membership, its registry, and a websocket server whose connections use it.
type member struct {
	sys  *protoactor.ActorSystem
	c    *cluster.Cluster
	reg  *registry.Cluster
	url  string
	stop func()
}

func startMember(t testing.TB, provider cluster.ClusterProvider, opts ...registry.Option) *member {
	t.Helper()
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	cfg := cluster.Configure("protows-test", provider, disthash.New(),
		remote.Configure("127.0.0.1", 0))
	c := cluster.New(sys, cfg)
	c.StartMember()
	reg, err := registry.NewCluster(c, opts...)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, reg.WaitSynced(ctx))
	srv, err := wsactor.NewServer(sys, func() actor.Handler { return &chatter{} }, wsactor.WithRegistry(reg))
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	m := &member{sys: sys, c: c, reg: reg, url: "ws" + strings.TrimPrefix(hs.URL, "http")}
	m.stop = sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
		reg.Stop()
		c.Shutdown(true) // also shuts the actor system down
	})
	t.Cleanup(m.stop)
	return m
}

// chatter registers under ?name=, joins ?group=, and pushes every Frame it
// is sent.
type chatter struct {
	actor.BaseHandler
	name, group string
}

func (c *chatter) Connect(h *actor.Handshake) error {
	c.name, c.group = h.Request.URL.Query().Get("name"), h.Request.URL.Query().Get("group")
	return nil
}

func (c *chatter) Init(ctx *actor.Context) error {
	if err := ctx.Register(c.name); err != nil {
		return err
	}
	if err := ctx.Join(c.group); err != nil {
		return err
	}
	return ctx.Push(actor.Text("ready"))
}

func (c *chatter) HandleInfo(ctx *actor.Context, msg any) error {
	if f, ok := msg.(actor.Frame); ok {
		return ctx.Push(f)
	}
	return nil
}

func dialMember(t testing.TB, m *member, name, group string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(m.url+"?name="+name+"&group="+group, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	assert.Equal(t, "ready", readWS(t, c))
	return c
}

func readWS(t testing.TB, c *websocket.Conn) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	_, data, err := c.ReadMessage()
	require.NoError(t, err)
	return string(data)
}

// visible waits until m's copy of the directory has name.
func visible(t testing.TB, m *member, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := m.reg.Lookup(context.Background(), name)
		return err == nil
	}, wait, time.Millisecond, "%q never reached %s", name, m.sys.Address())
}

func TestClusterRegistry(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	agent := test.NewInMemAgent()
	a := startMember(t, test.NewTestProvider(agent))
	b := startMember(t, test.NewTestProvider(agent))
	checkTwoMembers(t, a, b)
}

// checkTwoMembers runs the cross-node checks on members a and b; b is
// stopped at the end.
func checkTwoMembers(t *testing.T, a, b *member) {
	ctx := context.Background()

	alice := dialMember(t, a, "alice", "lobby") // on A
	bob := dialMember(t, b, "bob", "lobby")     // on B
	// Each member's changes reach the other after one message.
	visible(t, b, "alice")
	visible(t, a, "bob")

	// A send by name from B reaches alice on A.
	require.NoError(t, b.reg.SendTo(ctx, "alice", actor.Text("from B")))
	assert.Equal(t, "from B", readWS(t, alice))
	assert.ErrorIs(t, b.reg.SendTo(ctx, "nobody", actor.Text("x")), registry.ErrNotFound)

	// Names are unique across the cluster.
	assert.ErrorIs(t, b.reg.Register(ctx, "alice", protoactor.NewPID(b.sys.Address(), "someone")), registry.ErrNameTaken)
	pid, err := b.reg.Lookup(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, a.sys.Address(), pid.Address)

	// A publish from B reaches the members on A and on B.
	members, err := a.reg.Members(ctx, "lobby")
	require.NoError(t, err)
	assert.Len(t, members, 2)
	require.NoError(t, b.reg.Publish(ctx, "lobby", actor.Text("everyone")))
	assert.Equal(t, "everyone", readWS(t, alice))
	assert.Equal(t, "everyone", readWS(t, bob))

	// Only cluster-safe messages are accepted.
	assert.ErrorIs(t, b.reg.Publish(ctx, "lobby", struct{ X int }{1}), registry.ErrNotSerializable)

	// A user's protobuf message passes through untouched to a plain actor.
	got := make(chan any, 1)
	plain := a.sys.Root.Spawn(protoactor.PropsFromFunc(func(c protoactor.Context) {
		if v, ok := c.Message().(*wrapperspb.StringValue); ok {
			got <- v
		}
	}))
	require.NoError(t, a.reg.Register(ctx, "plain", plain))
	visible(t, b, "plain")
	require.NoError(t, b.reg.SendTo(ctx, "plain", wrapperspb.String("typed")))
	select {
	case v := <-got:
		assert.Equal(t, "typed", v.(*wrapperspb.StringValue).GetValue())
	case <-time.After(wait):
		t.Fatal("the protobuf message did not arrive")
	}

	// Node B goes away: its names and members leave A's view.
	start := time.Now()
	stopped := make(chan struct{})
	go func() { b.stop(); close(stopped) }()
	require.Eventually(t, func() bool {
		members, err := a.reg.Members(ctx, "lobby")
		return err == nil && len(members) == 1
	}, 10*time.Second, 10*time.Millisecond)
	t.Logf("B's members left A's view %v after B began to shut down", time.Since(start).Round(time.Millisecond))
	require.Eventually(t, func() bool {
		_, err := a.reg.Lookup(ctx, "bob")
		return err != nil
	}, 10*time.Second, 10*time.Millisecond)
	t.Logf("B's names left A's view %v after B began to shut down", time.Since(start).Round(time.Millisecond))
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("member B did not shut down within 30 s")
	}
	// A's own names survive (re-claimed if their grain lived on B).
	require.NoError(t, a.reg.SendTo(ctx, "alice", actor.Text("still here")))
	assert.Equal(t, "still here", readWS(t, alice))
}

// With the Replace policy, a name taken over on B closes its holder's
// connection on A with the policy's close code.
func TestClusterReplace(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	a, b := startPair(t, registry.WithConflict(registry.Replace(4001, "signed in elsewhere")))
	first := dialMember(t, a, "alice", "lobby")
	visible(t, b, "alice")
	second := dialMember(t, b, "alice", "lobby")
	require.NoError(t, first.SetReadDeadline(time.Now().Add(wait)))
	_, _, err := first.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 4001, ce.Code)
	assert.Equal(t, "signed in elsewhere", ce.Text)
	require.NoError(t, a.reg.SendTo(context.Background(), "alice", actor.Text("to the new alice")))
	assert.Equal(t, "to the new alice", readWS(t, second))
}

// Names stay reachable when a member joins (the grains of some of them move
// to it and start empty; their owners' member claims them again).
func TestClusterNamesSurviveAJoin(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	agent := test.NewInMemAgent()
	a := startMember(t, test.NewTestProvider(agent))
	ctx := context.Background()
	owner := a.sys.Root.Spawn(protoactor.PropsFromFunc(func(protoactor.Context) {}))
	names := make([]string, 20)
	for i := range names {
		names[i] = "name-" + strconv.Itoa(i)
		require.NoError(t, a.reg.Register(ctx, names[i], owner))
	}
	startMember(t, test.NewTestProvider(agent))
	// The re-claims follow the join within about 2 s.
	require.Eventually(t, func() bool {
		for _, n := range names {
			if _, err := a.reg.Lookup(ctx, n); err != nil {
				return false
			}
		}
		return true
	}, 10*time.Second, 100*time.Millisecond)
}

// A directory far larger than gRPC's 4 MB message limit (5 MB of names,
// all held by one actor) reaches a member that joins: the snapshot goes
// in bounded parts, one at a time, and the link between members holds.
func TestClusterLargeSnapshot(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	agent := test.NewInMemAgent()
	a := startMember(t, test.NewTestProvider(agent))
	holder := a.sys.Root.Spawn(protoactor.PropsFromFunc(func(protoactor.Context) {}))
	ctx := context.Background()
	const names = 10000
	pad := strings.Repeat("x", 500)
	for i := range names {
		require.NoError(t, a.reg.Register(ctx, fmt.Sprintf("%s-%d", pad, i), holder))
	}
	b := startMember(t, test.NewTestProvider(agent)) // waits until synced
	for _, i := range []int{0, names / 2, names - 1} {
		pid, err := b.reg.Lookup(ctx, fmt.Sprintf("%s-%d", pad, i))
		require.NoError(t, err)
		assert.True(t, pid.Equal(holder))
	}
	// Sends still cross the link, and the holder's release (one change of
	// 5 MB) reaches B.
	alice := dialMember(t, a, "alice", "lobby")
	visible(t, b, "alice")
	require.NoError(t, b.reg.SendTo(ctx, "alice", actor.Text("after the snapshot")))
	assert.Equal(t, "after the snapshot", readWS(t, alice))
	a.sys.Root.Stop(holder)
	require.Eventually(t, func() bool {
		_, err := b.reg.Lookup(ctx, pad+"-0")
		return errors.Is(err, registry.ErrNotFound)
	}, wait, 10*time.Millisecond, "the release of 10,000 names did not reach B")
	require.NoError(t, b.reg.SendTo(ctx, "alice", actor.Text("after the release")))
	assert.Equal(t, "after the release", readWS(t, alice))
}

// Bursts of changes far larger than gRPC's 4 MB message limit reach the
// other members in full, and the link keeps carrying sends: 40,000 names
// of about 500 bytes registered from eight goroutines, then the 20,000 of
// one actor (10 MB) released at once when it stops, then the rest when
// the registry stops.
func TestClusterLargeChanges(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	// No periodic sync within the test: the changes themselves must
	// arrive, not a repair after the link broke.
	a, b := startPair(t, registry.WithSyncInterval(time.Minute))
	ctx := context.Background()
	alice := dialMember(t, a, "alice", "lobby")
	visible(t, b, "alice")

	const total, released = 40000, 20000
	pad := strings.Repeat("x", 500)
	holders := []*protoactor.PID{
		a.sys.Root.Spawn(protoactor.PropsFromFunc(func(protoactor.Context) {})),
		a.sys.Root.Spawn(protoactor.PropsFromFunc(func(protoactor.Context) {})),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < total; i += 8 {
				holder := holders[0]
				if i%2 == 1 {
					holder = holders[1]
				}
				if err := a.reg.Register(ctx, fmt.Sprintf("%s-%d", pad, i), holder); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	names := func(m *member, want int) func() bool {
		return func() bool { return registry.Names(m.reg) == want }
	}
	require.Eventually(t, names(b, total+1), 2*wait, 10*time.Millisecond,
		"B has %d of the %d names", registry.Names(b.reg), total+1)
	require.NoError(t, b.reg.SendTo(ctx, "alice", actor.Text("after the registrations")))
	assert.Equal(t, "after the registrations", readWS(t, alice))

	// One holder stops: its 20,000 names (10 MB) are released in one
	// turn of A's registry.
	a.sys.Root.Stop(holders[0])
	require.Eventually(t, names(b, total-released+1), 2*wait, 10*time.Millisecond,
		"B has %d names, not the %d left", registry.Names(b.reg), total-released+1)
	require.NoError(t, b.reg.SendTo(ctx, "alice", actor.Text("after the release")))
	assert.Equal(t, "after the release", readWS(t, alice))

	// A's registry stops while A stays in the cluster: B drops the rest
	// at once, not when A leaves the topology.
	a.reg.Stop()
	require.Eventually(t, names(b, 0), wait, 10*time.Millisecond,
		"B still has %d of A's names after A's registry stopped", registry.Names(b.reg))
	assert.Len(t, b.c.MemberList.Members().Members(), 2, "A is still a member")
}

// numbered is a plain actor that counts the numbered frames it is sent
// and notes any out of order.
type numbered struct {
	mu      sync.Mutex
	next    int
	wrong   []string
	arrived chan struct{}
}

func spawnNumbered(m *member) (*numbered, *protoactor.PID) {
	n := &numbered{arrived: make(chan struct{}, 1)}
	pid := m.sys.Root.Spawn(protoactor.PropsFromFunc(func(c protoactor.Context) {
		f, ok := c.Message().(actor.Frame)
		if !ok {
			return
		}
		i, _, _ := strings.Cut(string(f.Data), " ")
		n.mu.Lock()
		if i != strconv.Itoa(n.next) {
			n.wrong = append(n.wrong, fmt.Sprintf("got %s, want %d", i, n.next))
		}
		n.next++
		n.mu.Unlock()
		select {
		case n.arrived <- struct{}{}:
		default:
		}
	}))
	return n, pid
}

// count waits until want frames have arrived, in order.
func (n *numbered) count(t *testing.T, want int) {
	t.Helper()
	deadline := time.After(2 * wait)
	for {
		n.mu.Lock()
		got, wrong := n.next, n.wrong
		n.mu.Unlock()
		require.Empty(t, wrong, "frames out of order")
		require.LessOrEqual(t, got, want, "more frames than were sent")
		if got == want {
			return
		}
		select {
		case <-n.arrived:
		case <-deadline:
			t.Fatalf("%d of %d frames arrived", got, want)
		}
	}
}

// Bursts of users' messages far larger than gRPC's 4 MB message limit
// (800 sends and 800 publishes of 8 KB, back to back) all reach
// another member, in order; a message over MaxMessageSize is refused; a
// member that stops acknowledging gets ErrBacklog once 16 MB wait for it,
// and what waited is delivered, in order, when it answers again.
func TestClusterLargeSends(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	a, b := startPair(t, registry.WithSyncInterval(200*time.Millisecond))
	ctx := context.Background()
	direct, dpid := spawnNumbered(a)
	group, gpid := spawnNumbered(a)
	require.NoError(t, a.reg.Register(ctx, "direct", dpid))
	require.NoError(t, a.reg.Join(ctx, "big", gpid))
	require.Eventually(t, func() bool {
		ms, _ := b.reg.Members(ctx, "big")
		_, err := b.reg.Lookup(ctx, "direct")
		return len(ms) == 1 && err == nil
	}, wait, time.Millisecond)

	pad := strings.Repeat("y", 8<<10)
	const burst = 800
	for i := range burst {
		require.NoError(t, b.reg.SendTo(ctx, "direct", actor.Text(strconv.Itoa(i)+" "+pad)))
		require.NoError(t, b.reg.Publish(ctx, "big", actor.Text(strconv.Itoa(i)+" "+pad)))
	}
	direct.count(t, burst)
	group.count(t, burst)

	huge := actor.Binary(make([]byte, registry.MaxMessageSize))
	require.ErrorIs(t, b.reg.SendTo(ctx, "direct", huge), registry.ErrTooLarge)
	require.ErrorIs(t, b.reg.Publish(ctx, "big", huge), registry.ErrTooLarge)

	// A stops acknowledging (its registry's own messages to B are cut;
	// B's messages still arrive). B's sends fill the window, then the
	// queue, then fail.
	registry.Partition(a.reg, b.sys.Address(), true)
	sent := burst
	var err error
	for ; sent < 10*burst; sent++ {
		if err = b.reg.SendTo(ctx, "direct", actor.Text(strconv.Itoa(sent)+" "+pad)); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, registry.ErrBacklog)
	t.Logf("B queued %d sends (%d MB) for A before ErrBacklog", sent-burst, (sent-burst)*len(pad)>>20)
	// A answers again: B sends on (within three sync intervals) and
	// everything accepted arrives, in order.
	registry.Partition(a.reg, b.sys.Address(), false)
	direct.count(t, sent)
}

// Acknowledgements lost with the link (here: A's registry traffic to B is
// cut during a burst of 1.3 MB of changes, more than A may have
// unacknowledged) do not hold A's changes back once the link is back: B
// resyncs, and A's next changes reach B.
func TestClusterLostAcks(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	a, b := startPair(t, registry.WithSyncInterval(200*time.Millisecond))
	ctx := context.Background()
	holder := a.sys.Root.Spawn(protoactor.PropsFromFunc(func(protoactor.Context) {}))

	registry.Partition(a.reg, b.sys.Address(), true)
	pad := strings.Repeat("x", 500)
	for i := range 2500 {
		require.NoError(t, a.reg.Register(ctx, fmt.Sprintf("%s-%d", pad, i), holder))
	}
	registry.Partition(a.reg, b.sys.Address(), false)
	require.Eventually(t, func() bool { return registry.Names(b.reg) == 2500 }, wait, time.Millisecond,
		"B has %d of A's 2,500 names", registry.Names(b.reg))
	// Without the acknowledgements A would hold these back (they are more
	// than the room left in its window).
	for i := range 10 {
		require.NoError(t, a.reg.Register(ctx, fmt.Sprintf("probe-%d-%s", i, pad), holder))
	}
	visible(t, b, "probe-9-"+pad)
}

// A cluster member that runs no registry (a member of the cluster that
// is not a protows server) is left out: the members that do run one
// sync without waiting for it, and work among themselves.
func TestClusterMemberWithoutRegistry(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	agent := test.NewInMemAgent()
	bare := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	c := cluster.New(bare, cluster.Configure("protows-test", test.NewTestProvider(agent), disthash.New(),
		remote.Configure("127.0.0.1", 0)))
	c.StartMember()
	t.Cleanup(func() { c.Shutdown(true) })

	a := startMember(t, test.NewTestProvider(agent)) // fails unless WaitSynced leaves the bare member out
	b := startMember(t, test.NewTestProvider(agent))
	require.Len(t, b.c.MemberList.Members().Members(), 3)
	alice := dialMember(t, a, "alice", "lobby")
	visible(t, b, "alice")
	require.NoError(t, b.reg.SendTo(context.Background(), "alice", actor.Text("from B")))
	assert.Equal(t, "from B", readWS(t, alice))
}

// startPair starts the two members, A then B, of a new cluster.
func startPair(t testing.TB, opts ...registry.Option) (a, b *member) {
	t.Helper()
	agent := test.NewInMemAgent()
	a = startMember(t, test.NewTestProvider(agent), opts...)
	b = startMember(t, test.NewTestProvider(agent), opts...)
	return a, b
}
