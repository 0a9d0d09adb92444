// Command chat is a chat server: a web page at / and a websocket at
// /ws?name=NAME&room=ROOM. Every connection is a protows connection actor,
// registered under its name and a member of its room's group.
//
//	go run ./examples/chat -addr 127.0.0.1:8080
//
// A message {"text":"hi"} reaches everyone in the sender's room as
// {"from":"alice","room":"lobby","text":"hi"}; {"to":"bob","text":"psst"}
// reaches bob alone as {"from":"alice","to":"bob","text":"psst"}. A name in
// use is refused at the handshake with 409.
package main

import (
	"context"
	"embed"
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
	"github.com/protows/protows/registry"
	"github.com/protows/protows/wsactor"
)

//go:embed index.html
var page embed.FS

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "HTTP address to listen on (port 0 picks a free one)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger { return logger }))
	defer sys.Shutdown()
	reg, err := registry.NewLocal(sys)
	if err != nil {
		return err
	}
	defer reg.Stop()

	srv, err := wsactor.NewServer(sys, func() actor.Handler { return &Chatter{reg: reg} }, wsactor.WithRegistry(reg))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ws", srv)
	mux.Handle("GET /{$}", http.FileServerFS(page))
	mux.Handle("GET /index.html", http.FileServerFS(page))

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
	wsErr := srv.Shutdown(shutdownCtx)
	if errors.Is(wsErr, context.DeadlineExceeded) {
		// Peers that did not answer the close frame in time: their
		// connections were closed without waiting. Not a failure.
		fmt.Fprintln(stderr, "some connections did not finish the close handshake in time and were dropped")
		wsErr = nil
	}
	httpErr := hs.Shutdown(shutdownCtx)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return errors.Join(wsErr, httpErr)
}
