package registry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry"
)

func ExampleLocal() {
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer sys.Shutdown()
	reg, _ := registry.NewLocal(sys)
	defer reg.Stop()
	ctx := context.Background()

	got := make(chan string, 2)
	alice := sys.Root.Spawn(protoactor.PropsFromFunc(func(c protoactor.Context) {
		if s, ok := c.Message().(string); ok {
			got <- s
		}
	}))
	_ = reg.Register(ctx, "alice", alice)
	_ = reg.Join(ctx, "lobby", alice)

	_ = reg.SendTo(ctx, "alice", "hello, alice")
	fmt.Println(<-got)
	_ = reg.Publish(ctx, "lobby", "hello, lobby")
	fmt.Println(<-got)
	err := reg.SendTo(ctx, "bob", "hello?")
	fmt.Println(errors.Is(err, registry.ErrNotFound))
	// Output:
	// hello, alice
	// hello, lobby
	// true
}

// A member of a group tells the others: PublishFrom leaves the sender out.
func ExampleLocal_PublishFrom() {
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer sys.Shutdown()
	reg, _ := registry.NewLocal(sys)
	defer reg.Stop()
	ctx := context.Background()

	got := make(chan string, 10)
	spawn := func(name string) *protoactor.PID {
		return sys.Root.Spawn(protoactor.PropsFromFunc(func(c protoactor.Context) {
			if s, ok := c.Message().(string); ok {
				got <- name + " got " + s
			}
		}))
	}
	alice, bob, carol := spawn("alice"), spawn("bob"), spawn("carol")
	for _, pid := range []*protoactor.PID{alice, bob, carol} {
		_ = reg.Join(ctx, "room", pid)
	}

	_ = reg.PublishFrom(ctx, "room", alice, "alice: hi")
	_ = reg.Publish(ctx, "room", "bye")
	// Had alice got her own message, it would be among these five.
	lines := make([]string, 5)
	for i := range lines {
		lines[i] = <-got
	}
	sort.Strings(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// alice got bye
	// bob got alice: hi
	// bob got bye
	// carol got alice: hi
	// carol got bye
}

// Presence: who is in a group, under which key, with which meta; a
// subscriber gets the state, then what changes.
func ExampleLocal_SubscribePresence() {
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer sys.Shutdown()
	reg, _ := registry.NewLocal(sys)
	defer reg.Stop()
	ctx := context.Background()

	got := make(chan string, 10)
	watcher := sys.Root.Spawn(protoactor.PropsFromFunc(func(c protoactor.Context) {
		switch m := c.Message().(type) {
		case *actor.PresenceState:
			got <- fmt.Sprintf("%d in %s", len(m.Members), m.Group)
		case *actor.PresenceDiff:
			for key, ps := range m.Joins {
				got <- fmt.Sprintf("%s joined (%s)", key, ps[0].Meta)
			}
			for key := range m.Leaves {
				got <- key + " left"
			}
		}
	}))
	idle := func() *protoactor.PID { return sys.Root.Spawn(protoactor.PropsFromFunc(func(protoactor.Context) {})) }
	alice, bob := idle(), idle()

	_ = reg.Track(ctx, "room:lobby", "alice", alice, []byte(`{"status":"here"}`))
	_ = reg.SubscribePresence(ctx, "room:lobby", watcher)
	fmt.Println(<-got)
	_ = reg.Track(ctx, "room:lobby", "bob", bob, []byte(`{"status":"away"}`))
	fmt.Println(<-got)
	_ = sys.Root.StopFuture(alice).Wait() // its presence ends with it
	fmt.Println(<-got)

	members, _ := reg.Presence(ctx, "room:lobby")
	fmt.Printf("%s: %s\n", "bob", members["bob"][0].Meta)
	// Output:
	// 1 in room:lobby
	// bob joined ({"status":"away"})
	// alice left
	// bob: {"status":"away"}
}
