package registry_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry"
)

// holderOf returns each member's view of name's holder ("" when unknown).
func holderOf(ms []*member, name string) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		if pid, err := m.reg.Lookup(context.Background(), name); err == nil {
			out[i] = pid.String()
		}
	}
	return out
}

// agreeOn waits until every member sees want as the holder of name.
func agreeOn(t *testing.T, ms []*member, name string, want *protoactor.PID) {
	t.Helper()
	all := make([]string, len(ms))
	for i := range all {
		all[i] = want.String()
	}
	var last []string
	ok := assert.Eventually(t, func() bool { last = holderOf(ms, name); return assert.ObjectsAreEqual(all, last) },
		wait, time.Millisecond)
	require.True(t, ok, "the members never agreed on %s as the holder of %q; last views: %v", want, name, last)
}

// agreed waits until every member sees the same holder of name and
// returns it. Once every member agrees, the agreement is final: a member
// shows another member's claim over its own only after settling its own
// as the loser.
func agreed(t *testing.T, ms []*member, name string) *protoactor.PID {
	t.Helper()
	var holder *protoactor.PID
	var views []string
	ok := assert.Eventually(t, func() bool {
		views = holderOf(ms, name)
		for _, v := range views {
			if v == "" || v != views[0] {
				return false
			}
		}
		holder = lookup(t, ms[0], name)
		return holder.String() == views[0]
	}, wait, time.Millisecond)
	require.True(t, ok, "the members never agreed on a holder of %q; last views: %v", name, views)
	return holder
}

func expectClose(t *testing.T, c *websocket.Conn, code int, reason string) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, code, ce.Code)
	assert.Equal(t, reason, ce.Text)
}

func lookup(t *testing.T, m *member, name string) *protoactor.PID {
	t.Helper()
	pid, err := m.reg.Lookup(context.Background(), name)
	require.NoError(t, err)
	return pid
}

// Claims of one name on both sides of a partition: when it heals, every
// member keeps the same claim (Reject: the earlier; Replace: the newer),
// whichever order the claims reach it in, and the loser's connection is
// closed with the policy's code. A registry that let the last claim to
// arrive win would leave A and B disagreeing (each hears the other's claim
// last).
func TestClusterPartitionHeal(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	for _, tc := range []struct {
		name       string
		opts       []registry.Option
		firstWins  bool
		closeCode  int
		closeWhy   string
		digestTime time.Duration
	}{
		{name: "reject keeps the earlier claim", firstWins: true, closeCode: 4009, closeWhy: "name taken"},
		{name: "replace keeps the newer claim", opts: []registry.Option{registry.WithConflict(registry.Replace(4001, "signed in elsewhere"))}, closeCode: 4001, closeWhy: "signed in elsewhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			agent := test.NewInMemAgent()
			opts := append([]registry.Option{registry.WithSyncInterval(100 * time.Millisecond)}, tc.opts...)
			a := startMember(t, test.NewTestProvider(agent), opts...)
			b := startMember(t, test.NewTestProvider(agent), opts...)
			c := startMember(t, test.NewTestProvider(agent), opts...)
			all := []*member{a, b, c}

			// A and B cannot hear each other; C hears both.
			registry.Partition(a.reg, b.sys.Address(), true)
			first := dialMember(t, a, "alice", "lobby")
			firstPID := lookup(t, a, "alice")
			agreeOn(t, []*member{a, c}, "alice", firstPID)
			second := dialMember(t, b, "alice", "lobby") // B has not heard of A's claim
			secondPID := lookup(t, b, "alice")
			require.NotEqual(t, firstPID.String(), secondPID.String())
			want := secondPID
			if tc.firstWins {
				want = firstPID
			}
			// C has both claims and already picks the winner by the rule.
			agreeOn(t, []*member{c}, "alice", want)

			registry.Partition(a.reg, b.sys.Address(), false)
			agreeOn(t, all, "alice", want)
			loser, winner := first, second
			if tc.firstWins {
				loser, winner = second, first
			}
			expectClose(t, loser, tc.closeCode, tc.closeWhy)
			// The winner stays connected and reachable from every member.
			for i, m := range all {
				text := fmt.Sprintf("from member %d", i)
				require.NoError(t, m.reg.SendTo(context.Background(), "alice", actor.Text(text)))
				assert.Equal(t, text, readWS(t, winner))
			}
			// Once the loser's connection is gone, only the winner's claim
			// is left anywhere.
			agreeOn(t, all, "alice", want)
		})
	}
}

// Many names claimed at once on two members, with no partition: every
// member ends up with the same holder for each name, exactly one actor per
// name keeps it, and every other actor that was given the name is told to
// close.
func TestClusterConcurrentClaims(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	agent := test.NewInMemAgent()
	a := startMember(t, test.NewTestProvider(agent))
	b := startMember(t, test.NewTestProvider(agent))
	c := startMember(t, test.NewTestProvider(agent))
	all := []*member{a, b, c}

	type outcome struct {
		pid     *protoactor.PID
		granted bool
	}
	var mu sync.Mutex
	closed := map[string]*actor.CloseRequest{} // by PID
	spawn := func(m *member) *protoactor.PID {
		return m.sys.Root.Spawn(protoactor.PropsFromFunc(func(ctx protoactor.Context) {
			if cr, ok := ctx.Message().(*actor.CloseRequest); ok {
				mu.Lock()
				closed[ctx.Self().String()] = cr
				mu.Unlock()
			}
		}))
	}
	const names = 200
	results := make([][2]outcome, names)
	for i := range names {
		// Both claims leave at the same instant: each member grants its own
		// before the other's can reach it (one message between members).
		start := make(chan struct{})
		var wg sync.WaitGroup
		for side, m := range []*member{a, b} {
			pid := spawn(m)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := m.reg.Register(context.Background(), fmt.Sprintf("n%d", i), pid)
				if err != nil {
					assert.ErrorIs(t, err, registry.ErrNameTaken)
				}
				results[i][side] = outcome{pid: pid, granted: err == nil}
			}()
		}
		close(start)
		wg.Wait()
	}

	both := 0
	for i := range names {
		name := fmt.Sprintf("n%d", i)
		r := results[i]
		require.True(t, r[0].granted || r[1].granted, "%s: neither claim was granted", name)
		winner := agreed(t, all, name)
		if r[0].granted && r[1].granted {
			both++
		}
		for _, o := range r {
			isWinner := o.pid.Equal(winner)
			if isWinner {
				require.True(t, o.granted, "%s: the holder was refused", name)
			}
			if o.granted && !isWinner {
				require.Eventually(t, func() bool {
					mu.Lock()
					defer mu.Unlock()
					cr := closed[o.pid.String()]
					return cr != nil && cr.Code == registry.DefaultConflictCode
				}, wait, time.Millisecond, "%s: the losing holder %s was not told to close", name, o.pid)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range names {
		winner := lookup(t, a, fmt.Sprintf("n%d", i))
		assert.Nil(t, closed[winner.String()], "a winner was told to close")
	}
	t.Logf("%d of %d names were given out on both members at once and resolved", both, names)
	require.Positive(t, both, "no claim was concurrent: the test did not exercise conflict resolution")
}
