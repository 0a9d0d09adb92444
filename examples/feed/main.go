// Command feed connects to a websocket server as a protows client, sends a
// subscription after every connect, and prints every text message it
// receives on its own line. It reconnects with backoff when the connection
// drops, and gives up when the server closes with a terminal code such as
// 1008 (policy violation).
//
//	go run ./examples/feed -url ws://127.0.0.1:8080/ws
//
// Exit status: 0 after SIGINT or SIGTERM (the connection is closed with
// 1000), 1 when the server ended the feed for good.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/supervision"
	"github.com/protows/protows/wsactor"
)

// Feed subscribes after every connect and prints what arrives.
type Feed struct {
	actor.BaseHandler
	subscribe string
	out       io.Writer
}

// HandleConnect sends the subscription, on the first connect and after
// every reconnect.
func (f *Feed) HandleConnect(c *actor.Context, _ *actor.ConnectResponse) error {
	return c.Push(actor.Text(f.subscribe))
}

// HandleIn prints text messages.
func (f *Feed) HandleIn(_ *actor.Context, fr actor.Frame) error {
	if fr.Type == actor.TextMessage {
		fmt.Fprintf(f.out, "%s\n", fr.Data)
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "feed:", err)
		os.Exit(1)
	}
}

// errEnded is returned when the server ended the feed for good.
var errEnded = errors.New("the server ended the feed")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("feed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "ws://127.0.0.1:8080/ws", "websocket URL (ws:// or wss://)")
	subscribe := fs.String("subscribe", `{"action":"subscribe"}`, "text message sent after every connect")
	backoffMin := fs.Duration("backoff-min", 100*time.Millisecond, "ceiling of the first reconnect delay")
	backoffMax := fs.Duration("backoff-max", 30*time.Second, "largest reconnect delay")
	if err := fs.Parse(args); err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sys := protoactor.NewActorSystem(wsactor.SystemLogger(logger))
	defer sys.Shutdown()

	client, err := wsactor.SpawnClient(sys, *url, &Feed{subscribe: *subscribe, out: stdout},
		wsactor.WithLogger(logger),
		wsactor.WithReconnect(supervision.Policy{
			Backoff: supervision.Backoff{Min: *backoffMin, Max: *backoffMax},
			Logger:  logger,
		}),
	)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return client.Close(closeCtx)
	case <-client.Done():
		return fmt.Errorf("%w: %v", errEnded, client.Reason())
	}
}
