package registry

import (
	"strings"
	"testing"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/registry/registrypb"
)

// Edge cases the randomized model does not reach: an entry whose presence
// is not valid (a plain member), a Join of a tracked member, a snapshot
// naming one actor twice, and a snapshot of nothing but invalid entries.
func TestDirectoryEdges(t *testing.T) {
	d := newDirectory(false)
	heard := map[key]*tracked{}
	calls := 0
	d.changed = func(g string, k key, before, after *tracked) {
		calls++
		if !same(heard[k], before) {
			t.Fatalf("changed %v: before %v, last heard %v", k, before, heard[k])
		}
		if after == nil {
			delete(heard, k)
		} else {
			heard[k] = after
		}
	}
	a := "a:1"
	p1, p2 := protoactor.NewPID(a, "$1"), protoactor.NewPID(a, "$2")
	big := []byte(strings.Repeat("x", MaxMetaSize+1))
	d.replaceAddress(a, []*registrypb.Entry{
		{Group: true, Key: "g", Id: "$1", PresenceKey: "k", Meta: big}, // presence not valid: plain
		{Group: true, Key: "g", Id: "$2", PresenceKey: "k"},
		{Group: true, Key: "g", Id: "$2"},                  // then plain
		{Group: true, Key: "", Id: "$3", PresenceKey: "k"}, // skipped
		{Group: true, Key: "g", Id: "", PresenceKey: "k"},  // skipped
	})
	at := d.groups["g"][a]
	if at == nil || len(at.plain) != 2 || at.tracked != nil {
		t.Fatalf("members %+v, want $1 and $2 plain, no tracked map", at)
	}
	if len(heard) != 0 || len(d.presence("g")) != 0 {
		t.Fatalf("presence %v, heard %v, want none", d.presence("g"), heard)
	}
	if calls != 2 { // $2 tracked, then plain
		t.Fatalf("changed called %d times, want 2", calls)
	}
	// Join of a tracked member keeps its presence.
	tr := newTracked("k", p1, []byte("m"))
	if !d.track("g", p1, tr) {
		t.Fatal("track of a plain member changed nothing")
	}
	if d.join("g", p1) {
		t.Fatal("join of a tracked member reported a newcomer")
	}
	if !same(d.trackedOf("g", p1), tr) {
		t.Fatalf("join dropped the presence: %v", d.trackedOf("g", p1))
	}
	// Leave of the plain one keeps the tracked one, and the plain map goes.
	if !d.leave("g", p2) {
		t.Fatal("leave of a plain member")
	}
	if at := d.groups["g"][a]; at.plain != nil || len(at.tracked) != 1 {
		t.Fatalf("members %+v, want only $1 tracked", at)
	}
	// A snapshot of nothing valid drops everything, and the group.
	d.replaceAddress(a, []*registrypb.Entry{{Group: true, Key: "g"}})
	if len(d.groups) != 0 || len(heard) != 0 {
		t.Fatalf("groups %v, heard %v, want none", d.groups, heard)
	}
}
