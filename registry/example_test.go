package registry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	protoactor "github.com/asynkron/protoactor-go/actor"

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
