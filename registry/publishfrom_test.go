package registry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry"
)

// expectPublishFrom publishes text from from, then a plain Publish of
// "marker", and checks that each inbox gets text only if want says so:
// the marker is the next message of one that was left out.
func expectPublishFrom(t *testing.T, r registry.Registry, from *protoactor.PID, text string, inboxes []*inbox, want []bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, r.PublishFrom(ctx, "room", from, actor.Text(text)))
	require.NoError(t, r.Publish(ctx, "room", actor.Text("marker")))
	for i, in := range inboxes {
		if want[i] {
			assert.Equal(t, "text "+text, describe(in.next(t)), "inbox %d", i)
		}
		assert.Equal(t, "text marker", describe(in.next(t)), "inbox %d: left out, or not", i)
	}
}

// PublishFrom leaves out from and no one else: not a member when from is
// none, nor an actor on another node that has from's id.
func TestPublishFrom(t *testing.T) {
	sys := newSystem(t)
	r := newLocal(t, sys)
	ctx := context.Background()
	a, b, outsider := newInbox(t, sys), newInbox(t, sys), newInbox(t, sys)
	require.NoError(t, r.Join(ctx, "room", a.pid))
	require.NoError(t, r.Join(ctx, "room", b.pid))
	for _, tc := range []struct {
		name string
		from *protoactor.PID
		want []bool // a, b
	}{
		{"a member", a.pid, []bool{false, true}},
		{"the other member", b.pid, []bool{true, false}},
		{"not a member", outsider.pid, []bool{true, true}},
		{"nil", nil, []bool{true, true}},
		{"the same id on another node", protoactor.NewPID("elsewhere:1", a.pid.Id), []bool{true, true}},
		// A PID that went through proto.actor's remote may carry a request
		// id: it is still the same actor.
		{"a member, with a request id", &protoactor.PID{Address: a.pid.Address, Id: a.pid.Id, RequestId: 7}, []bool{false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectPublishFrom(t, r, tc.from, tc.name, []*inbox{a, b}, tc.want)
		})
	}
	assert.NoError(t, r.PublishFrom(ctx, "nobody", a.pid, actor.Text("x")), "an empty group is fine")
}

// Across two members, PublishFrom leaves out from wherever it runs and
// whichever member is called, and only from: "twin" has the same id on A
// and on B.
func TestClusterPublishFrom(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	a, b := startPair(t)
	twinA, twinB := newInboxNamed(t, a.sys, "twin"), newInboxNamed(t, b.sys, "twin")
	other := newInbox(t, b.sys)
	require.Equal(t, twinA.pid.Id, twinB.pid.Id)
	ctx := context.Background()
	require.NoError(t, a.reg.Join(ctx, "room", twinA.pid))
	require.NoError(t, b.reg.Join(ctx, "room", twinB.pid))
	require.NoError(t, b.reg.Join(ctx, "room", other.pid))
	for _, m := range []*member{a, b} {
		require.Eventually(t, func() bool {
			ms, err := m.reg.Members(ctx, "room")
			return err == nil && len(ms) == 3
		}, wait, time.Millisecond)
	}
	inboxes := []*inbox{twinA, twinB, other}
	for _, tc := range []struct {
		name   string
		caller *member
		from   *protoactor.PID
		want   []bool // twinA, twinB, other
	}{
		{"A's own twin, on A", a, twinA.pid, []bool{false, true, true}},
		{"A's twin, on B", b, twinA.pid, []bool{false, true, true}},
		{"B's own twin, on B", b, twinB.pid, []bool{true, false, true}},
		{"B's twin, on A", a, twinB.pid, []bool{true, false, true}},
		{"B's other, on A", a, other.pid, []bool{true, true, false}},
		{"nil, on A", a, nil, []bool{true, true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectPublishFrom(t, tc.caller.reg, tc.from, tc.name, inboxes, tc.want)
		})
	}
}

// describe shows a frame by type and content: a frame published to several
// connections is prepared (actor.Prepare), which reflect.DeepEqual tells
// from the frame published.
func describe(msg any) string {
	if f, ok := msg.(actor.Frame); ok {
		return f.Type.String() + " " + string(f.Data)
	}
	return fmt.Sprintf("%T %v", msg, msg)
}
