package registry

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
)

// The hub driven by an actor of the test that keeps a presence table and
// calls due after every message, as the registry actors do; after every
// message it checks the hub's invariants:
//   - fresh is empty once due ran;
//   - a dirty group is a group with subscribers, and its pending is set;
//     a group with subscribers that is not dirty has no pending;
//   - a dirty group has a timer armed at or before its due time (no stall);
//   - a fresh group whose interval had passed before due ran is not dirty
//     after it (it went at once);
//   - a group's last diff moves on by at least the interval.
// Subscribers apply what they get strictly and must end with the table.

type (
	drvChange struct {
		group string
		pid   *protoactor.PID
		t     *tracked
	}
	drvSub struct {
		group string
		pid   *protoactor.PID
		sub   bool
	}
	drvStop  struct{}
	drvQuery struct {
		group string
		reply chan map[string][]actor.Presence
	}
	drvCheck struct{ reply chan []string }
)

type hubDriver struct {
	interval time.Duration
	hub      *presenceHub
	ps       presences
	faults   []string
}

func (d *hubDriver) receive(ctx protoactor.Context) {
	h := d.hub
	lastBefore := map[string]time.Time{}
	for name, g := range h.groups {
		lastBefore[name] = g.last
	}
	switch m := ctx.Message().(type) {
	case drvChange:
		before := d.ps.set(m.group, keyOf(m.pid), m.t)
		h.changed(m.group, keyOf(m.pid), before, m.t)
	case drvSub:
		if m.sub {
			h.subscribe(ctx, m.group, m.pid)
		} else {
			h.unsubscribe(m.group, m.pid)
		}
	case presenceTick:
		h.tick(ctx, m)
	case drvStop:
		h.stop()
		return
	case drvQuery:
		m.reply <- d.ps.list(m.group)
		return
	case drvCheck:
		m.reply <- d.faults
		return
	}
	if h.stopped {
		return
	}
	// What was fresh and quiet before due ran.
	start := time.Now()
	quiet := map[string]bool{}
	for _, name := range h.fresh {
		if g := h.dirty[name]; g != nil && !g.last.Add(d.interval).After(start) {
			quiet[name] = true
		}
	}
	h.due(ctx)
	fault := func(f string, a ...any) { d.faults = append(d.faults, fmt.Sprintf(f, a...)) }
	if len(h.fresh) != 0 {
		fault("fresh %v left after due", h.fresh)
	}
	for name, g := range h.dirty {
		if h.groups[name] != g {
			fault("dirty group %s is not the group subscribed", name)
		}
		if g.pending == nil {
			fault("dirty group %s has no pending changes", name)
		}
		if h.timer == nil {
			fault("dirty group %s has no timer", name)
		} else if h.at.After(g.last.Add(d.interval)) {
			fault("dirty group %s due at %v, the timer is at %v", name, g.last.Add(d.interval), h.at)
		}
		if quiet[name] {
			fault("group %s changed after a quiet interval and was not sent at once", name)
		}
	}
	for name, g := range h.groups {
		if _, dirty := h.dirty[name]; !dirty && g.pending != nil {
			fault("group %s has pending changes but is not dirty", name)
		}
		if was, ok := lastBefore[name]; ok && !was.IsZero() && g.last != was && g.last.Sub(was) < d.interval {
			fault("group %s sent two diffs %v apart", name, g.last.Sub(was))
		}
	}
}

// hubSub applies a presence stream strictly.
type hubSub struct {
	mu      sync.Mutex
	got     bool
	state   map[string]map[key]string // key -> PID -> meta
	faults  []string
	stopped bool // the driver stopped: nothing more may come
	late    int
}

func (s *hubSub) receive(ctx protoactor.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m := ctx.Message().(type) {
	case *actor.PresenceState:
		if s.stopped {
			s.late++
		}
		s.got = true
		s.state = map[string]map[key]string{}
		for k, l := range m.Members {
			s.state[k] = map[key]string{}
			for _, p := range l {
				s.state[k][keyOf(p.PID)] = string(p.Meta)
			}
		}
	case *actor.PresenceDiff:
		if s.stopped {
			s.late++
		}
		if !s.got {
			s.faults = append(s.faults, "diff before state")
			return
		}
		for k, l := range m.Leaves {
			for _, p := range l {
				if meta, ok := s.state[k][keyOf(p.PID)]; !ok || meta != string(p.Meta) {
					s.faults = append(s.faults, fmt.Sprintf("leave of %s %v not held", k, keyOf(p.PID)))
				}
				delete(s.state[k], keyOf(p.PID))
				if len(s.state[k]) == 0 {
					delete(s.state, k)
				}
			}
		}
		for k, l := range m.Joins {
			for _, p := range l {
				if s.state[k] == nil {
					s.state[k] = map[key]string{}
				}
				if _, ok := s.state[k][keyOf(p.PID)]; ok {
					s.faults = append(s.faults, fmt.Sprintf("join of %s %v already held", k, keyOf(p.PID)))
				}
				s.state[k][keyOf(p.PID)] = string(p.Meta)
			}
		}
	}
}

func (s *hubSub) view() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for k, m := range s.state {
		for p, meta := range m {
			out[k] = append(out[k], p.address+"/"+p.id+"="+meta)
		}
		slices.Sort(out[k])
	}
	return out
}

func viewOf(ps map[string][]actor.Presence) map[string][]string {
	out := map[string][]string{}
	for k, l := range ps {
		for _, p := range l {
			out[k] = append(out[k], p.PID.Address+"/"+p.PID.Id+"="+string(p.Meta))
		}
		slices.Sort(out[k])
	}
	return out
}

// TestPresenceHubInvariants drives the presence hub from an actor that
// calls due after every message, as the registry actors do, with random
// changes, subscriptions and pauses in several groups, and checks after
// every message: nothing left in fresh, the dirty groups are those with
// subscribers and changes pending, each has a timer due no later than it
// is, a quiet group's change went at once, and a group's diffs come at
// least an interval apart; strict subscribers end with the table.
func TestPresenceHubInvariants(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			sys := protoactor.NewActorSystem()
			t.Cleanup(sys.Shutdown)
			interval := []time.Duration{time.Microsecond, 500 * time.Microsecond, 2 * time.Millisecond, 5 * time.Millisecond}[seed%4]
			d := &hubDriver{interval: interval, ps: presences{}}
			d.hub = newPresenceHub(interval, d.ps.list)
			drv := sys.Root.Spawn(protoactor.PropsFromFunc(d.receive))
			groups := []string{"g0", "g1", "g2", "g3", "g4"}
			members := make([]*protoactor.PID, 8)
			for i := range members {
				members[i] = protoactor.NewPID("m", "$"+strconv.Itoa(i))
			}
			type subAt struct {
				s     *hubSub
				pid   *protoactor.PID
				group string
				live  bool
			}
			var subs []*subAt
			for range 1500 {
				group := groups[rng.IntN(len(groups))]
				switch op := rng.IntN(20); {
				case op < 13:
					p := members[rng.IntN(len(members))]
					var tr *tracked
					if rng.IntN(4) != 0 {
						tr = newTracked("k"+strconv.Itoa(rng.IntN(3)), p, []byte(strconv.Itoa(rng.IntN(2))))
					}
					sys.Root.Send(drv, drvChange{group, p, tr})
				case op < 16:
					s := &hubSub{}
					pid := sys.Root.Spawn(protoactor.PropsFromFunc(s.receive))
					subs = append(subs, &subAt{s, pid, group, true})
					sys.Root.Send(drv, drvSub{group, pid, true})
				case op < 19 && len(subs) > 0:
					if sa := subs[rng.IntN(len(subs))]; sa.live {
						sa.live = false
						sys.Root.Send(drv, drvSub{sa.group, sa.pid, false})
					}
				default:
					// A pause, so that intervals pass between changes.
					time.Sleep(time.Duration(rng.IntN(3)) * interval)
				}
			}
			// Every live subscriber ends with the table (no stalled group).
			for i, sa := range subs {
				if !sa.live {
					continue
				}
				q := drvQuery{group: sa.group, reply: make(chan map[string][]actor.Presence, 1)}
				sys.Root.Send(drv, q)
				want := viewOf(<-q.reply)
				deadline := time.Now().Add(5 * time.Second)
				for !maps.EqualFunc(sa.s.view(), want, slices.Equal) {
					if time.Now().After(deadline) {
						t.Fatalf("subscriber %d of %s holds %v, want %v", i, sa.group, sa.s.view(), want)
					}
					time.Sleep(time.Millisecond) // polling, not synchronisation
				}
			}
			c := drvCheck{reply: make(chan []string, 1)}
			sys.Root.Send(drv, c)
			if f := <-c.reply; len(f) > 0 {
				t.Fatalf("hub faults: %v", f[:min(len(f), 10)])
			}
			for i, sa := range subs {
				sa.s.mu.Lock()
				if len(sa.s.faults) > 0 {
					t.Errorf("subscriber %d faults: %v", i, sa.s.faults)
				}
				sa.s.mu.Unlock()
			}
		})
	}
}
