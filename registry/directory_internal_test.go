package registry

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry/registrypb"
)

// TestDirectoryModel drives the directory with random joins, tracks,
// untracks, leaves, dropped and replaced addresses, and checks after each
// step: no actor in both maps, no empty members, map of members or group
// left behind, Members/route/presence/trackedOf against a model, and that the
// changed callback's before/after chain is exactly the model's presence
// (nothing missed, nothing doubled).
func TestDirectoryModel(t *testing.T) {
	addrs := []string{"a:1", "b:1", "c:1"}
	groups := []string{"g1", "g2"}
	ids := []string{"$1", "$2", "$3"}
	keys := []string{"k1", "k2"}
	metas := []string{"", "m1", "m2"}
	for seed := int64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewSource(seed))
		d := newDirectory(false)
		// model: group -> key -> tracked (nil: plain)
		model := map[string]map[key]*tracked{}
		shadow := map[string]map[key]*tracked{} // from changed
		d.changed = func(g string, k key, before, after *tracked) {
			cur := shadow[g][k]
			if !same(cur, before) {
				t.Fatalf("seed %d: changed(%s,%v) before %v, but the last heard was %v", seed, g, k, before, cur)
			}
			if same(before, after) {
				t.Fatalf("seed %d: changed(%s,%v) with no change", seed, g, k)
			}
			if shadow[g] == nil {
				shadow[g] = map[key]*tracked{}
			}
			if after == nil {
				delete(shadow[g], k)
			} else {
				shadow[g][k] = after
			}
		}
		pick := func(s []string) string { return s[rng.Intn(len(s))] }
		newT := func(pid *protoactor.PID) *tracked {
			return newTracked(pick(keys), pid, []byte(pick(metas)))
		}
		for step := 0; step < 200; step++ {
			g, a, id := pick(groups), pick(addrs), pick(ids)
			pid := protoactor.NewPID(a, id)
			k := keyOf(pid)
			var what string
			switch op := rng.Intn(10); {
			case op < 3:
				what = "join"
				_, was := model[g][k]
				if got := d.join(g, pid); got == was {
					t.Fatalf("seed %d step %d: join returned %v, was a member %v", seed, step, got, was)
				}
				if model[g] == nil {
					model[g] = map[key]*tracked{}
				}
				if !was {
					model[g][k] = nil
				}
			case op < 6:
				what = "track"
				tr := newT(pid)
				if rng.Intn(4) == 0 {
					tr = nil
				}
				d.track(g, pid, tr)
				if model[g] == nil {
					model[g] = map[key]*tracked{}
				}
				model[g][k] = tr
			case op < 8:
				what = "leave"
				_, was := model[g][k]
				if got := d.leave(g, pid); got != was {
					t.Fatalf("seed %d step %d: leave returned %v, was a member %v", seed, step, got, was)
				}
				delete(model[g], k)
				if len(model[g]) == 0 {
					delete(model, g)
				}
			case op < 9:
				what = "drop " + a
				d.dropAddress(a)
				for gn, m := range model {
					for kk := range m {
						if kk.address == a {
							delete(m, kk)
						}
					}
					if len(m) == 0 {
						delete(model, gn)
					}
				}
			default:
				what = "replace " + a
				var es []*registrypb.Entry
				for gn, m := range model {
					for kk := range m {
						if kk.address == a {
							delete(m, kk)
						}
					}
					if len(m) == 0 {
						delete(model, gn)
					}
				}
				for range rng.Intn(4) {
					gg, ii := pick(groups), pick(ids)
					p := protoactor.NewPID(a, ii)
					tr := newT(p)
					if rng.Intn(3) == 0 {
						tr = nil
					}
					es = append(es, groupEntry(gg, p, tr))
					if model[gg] == nil {
						model[gg] = map[key]*tracked{}
					}
					model[gg][keyOf(p)] = tr
				}
				d.replaceAddress(a, es)
			}
			check := func(cond bool, f string, args ...any) {
				if !cond {
					t.Fatalf("seed %d step %d (%s): %s", seed, step, what, fmt.Sprintf(f, args...))
				}
			}
			// invariants
			for gn, gm := range d.groups {
				check(len(gm) > 0, "empty group %s left", gn)
				for addr, at := range gm {
					check(at.len() > 0, "empty members at %s in %s", addr, gn)
					check(at.plain == nil || len(at.plain) > 0, "empty plain map kept at %s in %s", addr, gn)
					check(at.tracked == nil || len(at.tracked) > 0, "empty tracked map kept at %s in %s", addr, gn)
					for id := range at.plain {
						_, both := at.tracked[id]
						check(!both, "%s/%s in both maps of %s", addr, id, gn)
						check(at.plain[id].Address == addr && at.plain[id].Id == id, "plain pid mismatch")
					}
					for id, tr := range at.tracked {
						check(tr.p.PID.Address == addr && tr.p.PID.Id == id, "tracked pid mismatch")
					}
				}
			}
			check(len(d.groups) == len(model), "groups %d, model %d", len(d.groups), len(model))
			for _, gn := range groups {
				var want, got []string
				for kk := range model[gn] {
					want = append(want, kk.address+"/"+kk.id)
				}
				for _, p := range d.members(gn) {
					got = append(got, p.Address+"/"+p.Id)
				}
				slices.Sort(want)
				slices.Sort(got)
				check(slices.Equal(want, got), "members of %s: %v, want %v", gn, got, want)
				for _, self := range addrs {
					local, remote := d.route(gn, self)
					var wl []string
					wr := map[string]bool{}
					for kk := range model[gn] {
						if kk.address == self {
							wl = append(wl, kk.id)
						} else {
							wr[kk.address] = true
						}
					}
					var gl []string
					for _, p := range local {
						gl = append(gl, p.Id)
					}
					slices.Sort(wl)
					slices.Sort(gl)
					check(slices.Equal(wl, gl), "route %s local at %s: %v, want %v", gn, self, gl, wl)
					check(len(remote) == len(wr), "route %s remote at %s: %v, want %v", gn, self, remote, wr)
				}
				pres := d.presence(gn)
				n := 0
				for _, l := range pres {
					n += len(l)
				}
				wantN := 0
				for kk, tr := range model[gn] {
					got := d.trackedOf(gn, protoactor.NewPID(kk.address, kk.id))
					check(same(got, tr), "trackedOf %v: %v, want %v", kk, got, tr)
					if tr != nil {
						wantN++
						check(slices.ContainsFunc(pres[tr.key], func(p actor.Presence) bool { return keyOf(p.PID) == kk }), "presence lacks %v", kk)
					}
					check(same(shadow[gn][kk], tr), "changed heard %v for %v, want %v", shadow[gn][kk], kk, tr)
				}
				check(n == wantN, "presence of %s has %d entries, want %d", gn, n, wantN)
				shadowN := 0
				for kk, tr := range shadow[gn] {
					shadowN++
					check(same(model[gn][kk], tr), "changed heard %v for %v, not in the model", tr, kk)
				}
				check(shadowN == wantN, "changed heard %d entries, want %d", shadowN, wantN)
			}
		}
	}
}
