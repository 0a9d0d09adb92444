// Command chat is a chat server: a web page at / and a websocket at
// /ws?name=NAME&room=ROOM. Every connection is a protows connection actor,
// registered under its name and tracked in its room's presence under it.
//
//	go run ./examples/chat -addr 127.0.0.1:8080
//
// A connection's first message is who is in its room, itself included,
// sorted: {"presence":{"room":"lobby","members":["alice","bob"]}}. Then
// {"joined":"carol","room":"lobby"} and {"left":"carol","room":"lobby"}
// tell who comes and goes, on any node; the users of a node that dies
// leave when the cluster drops it (a few seconds). Joins and leaves are
// batched (at most one batch a room every 50 ms), so a newcomer's first
// message may arrive before its joined.
//
// A message {"text":"hi"} reaches everyone in the sender's room as
// {"from":"alice","room":"lobby","text":"hi"}; {"to":"bob","text":"psst"}
// reaches bob alone as {"from":"alice","to":"bob","text":"psst"}. A name in
// use is refused at the handshake with 409: a name is in a room once.
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/labstack/echo"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry"
	"github.com/protows/protows/wsactor"
)

//go:embed index.html
var page embed.FS

// joinCluster makes this process a member of a proto.actor cluster with
// no external service: proto.actor's automanaged provider checks every
// node's health over HTTP on its cluster port + 1. The cluster registry
// then spans all members.
func joinCluster(sys *protoactor.ActorSystem, self, peers string, formation int) (*registry.Cluster, func(), error) {
	host, port, err := hostPort(self)
	if err != nil {
		return nil, nil, fmt.Errorf("-cluster: %w", err)
	}
	checks := []string{net.JoinHostPort(host, strconv.Itoa(port+1))}
	for _, p := range strings.Split(peers, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		h, pp, err := hostPort(p)
		if err != nil {
			return nil, nil, fmt.Errorf("-peers: %w", err)
		}
		checks = append(checks, net.JoinHostPort(h, strconv.Itoa(pp+1)))
	}
	// The provider's own HTTP server announces itself on stdout; this one,
	// serving the same health answer, keeps quiet.
	const clusterName = "protows-chat"
	health := echo.New()
	health.HideBanner, health.HidePort = true, true
	var c *cluster.Cluster
	health.GET("/_health", func(ctx echo.Context) error {
		return ctx.JSON(http.StatusOK, automanaged.NewNode(clusterName, sys.ID, host, port, port+1, c.GetClusterKinds()))
	})
	provider := automanaged.NewWithTesting(time.Second, port+1, health, checks...)
	c = cluster.New(sys, cluster.Configure(clusterName, provider, disthash.New(),
		remote.Configure(host, port)))
	if formation <= 0 {
		formation = len(checks)
	}
	formed := make(chan struct{})
	var once sync.Once
	sub := sys.EventStream.Subscribe(func(evt any) {
		if t, ok := evt.(*cluster.ClusterTopology); ok && len(t.GetMembers()) >= formation {
			once.Do(func() { close(formed) })
		}
	})
	c.StartMember()
	// Ready when the peers are seen, or after a while without them (they
	// may start later and join then).
	select {
	case <-formed:
	case <-time.After(10 * time.Second):
	}
	sys.EventStream.Unsubscribe(sub)
	reg, err := registry.NewCluster(c)
	if err != nil {
		c.Shutdown(true)
		return nil, nil, err
	}
	// Serve once this member has the others' names and rooms, so that its
	// users find everyone at once.
	syncCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := reg.WaitSynced(syncCtx); err != nil {
		sys.Logger().Warn("serving before the registry has every member's entries", slog.Any("error", err))
	}
	return reg, func() {
		reg.Stop()
		c.Shutdown(true)
	}, nil
}

func hostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port >= 65535 {
		return "", 0, fmt.Errorf("bad port in %q", s)
	}
	return host, port, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "HTTP address to listen on (port 0 picks a free one)")
	clusterAddr := fs.String("cluster", "", "this node's cluster address HOST:PORT; turns on cluster mode (membership checks also use PORT+1)")
	peers := fs.String("peers", "", "the other nodes' cluster addresses, HOST:PORT,HOST:PORT")
	formation := fs.Int("formation", 0, "in cluster mode, the number of members (this one included) to wait for before serving, at most 10 s; 0: all of -peers and this one")
	if err := fs.Parse(args); err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sys := protoactor.NewActorSystem(wsactor.SystemLogger(logger))
	var reg registry.Registry
	var expelled <-chan struct{} // nil outside a cluster: never ready
	if *clusterAddr == "" {
		local, err := registry.NewLocal(sys)
		if err != nil {
			return err
		}
		defer sys.Shutdown()
		defer local.Stop()
		reg = local
	} else {
		node, stop, err := joinCluster(sys, *clusterAddr, *peers, *formation)
		if err != nil {
			return err
		}
		defer stop() // also shuts the actor system down
		reg, expelled = node, node.Expelled()
	}

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

	// A member the cluster dropped (it hung for longer than the health
	// checks allow) is never let back in: it closes its connections and
	// exits with an error, for its supervisor to restart it as a new
	// member. Its users reconnect and find everyone again.
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	case <-expelled:
		runErr = errors.New("the cluster dropped this member; restart it to rejoin")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	shutdown := srv.Shutdown
	if runErr != nil {
		shutdown = srv.ShutdownForRestart // 1012: come back soon
	}
	wsErr := shutdown(shutdownCtx)
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
	return errors.Join(runErr, wsErr, httpErr)
}
