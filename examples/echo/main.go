// Command echo serves a websocket echo endpoint at /ws: text comes back as
// text, binary as binary. Every connection is a protows connection actor.
//
//	go run ./examples/echo -addr 127.0.0.1:8080
//
// It prints "listening on http://HOST:PORT" once it accepts connections,
// and on SIGINT or SIGTERM closes every connection with 1001 and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// Echo pushes every message back to its sender.
type Echo struct{ actor.BaseHandler }

// HandleIn echoes f.
func (Echo) HandleIn(c *actor.Context, f actor.Frame) error { return c.Push(f) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free one)")
	maxMessage := fs.Int64("max-message", 1<<20, "largest message accepted, in bytes; larger ones close with 1009")
	pingInterval := fs.Duration("ping-interval", 30*time.Second, "keepalive ping interval, also the pong timeout (0 turns keepalive off)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sys := protoactor.NewActorSystem(wsactor.SystemLogger(logger))
	defer sys.Shutdown()

	srv, err := wsactor.NewServer(sys, func() actor.Handler { return Echo{} },
		wsactor.WithReadLimit(*maxMessage),
		wsactor.WithKeepalive(*pingInterval, *pingInterval),
	)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ws", srv)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "protows echo: open a websocket to /ws")
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	// Websocket connections first: http.Server.Shutdown does not know them.
	wsErr := srv.Shutdown(shutdownCtx)
	if errors.Is(wsErr, context.DeadlineExceeded) {
		// Peers that did not answer the close frame in time: their
		// connections were closed without waiting. Not a failure.
		fmt.Fprintln(stderr, "some connections did not finish the close handshake in time and were dropped")
		wsErr = nil
	}
	httpErr := hs.Shutdown(shutdownCtx)
	if errors.Is(httpErr, context.DeadlineExceeded) {
		// Idle connections that never sent a request (browsers open spare
		// ones) count as busy until they are 5 s old: close them.
		httpErr = hs.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return errors.Join(wsErr, httpErr)
}
