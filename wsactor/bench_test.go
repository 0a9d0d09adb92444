package wsactor_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry"
	"github.com/protows/protows/wsactor"
)

// Every protows figure has a raw gorilla/websocket sibling measured in the
// same run, with the same clients (a separate process, see loadgen_test.go):
// impl=gorilla is a plain goroutine-per-connection server that writes
// directly, with a write mutex per connection, and broadcasts as a careful
// gorilla user does: one PreparedMessage per publish (framed, and
// compressed, once), written to every connection in a loop, or handed to a
// writer goroutine per connection for bursts (BenchmarkFanoutBurst).
// BenchmarkFanoutCompressed adds impl=gorilla-percon, which broadcasts
// with WriteMessage to each connection (compressing once per connection).
//
// PROTOWS_BENCH_ORDER=gorilla runs the gorilla sibling first; .ci/bench
// alternates the order from round to round so that neither side always
// runs on a fresher (or more tired) machine.
var impls = benchOrder()

func benchOrder() []string {
	if os.Getenv("PROTOWS_BENCH_ORDER") == "gorilla" {
		return []string{"gorilla", "protows"}
	}
	return []string{"protows", "gorilla"}
}

type echoHandler struct{ actor.BaseHandler }

func (echoHandler) HandleIn(c *actor.Context, f actor.Frame) error { return c.Push(f) }

// fanoutMember joins the broadcast group and passes on what is published;
// it echoes what its peer sends.
// With named set it first registers a name of its own.
type fanoutMember struct {
	actor.BaseHandler
	named bool
}

func (fanoutMember) HandleIn(c *actor.Context, f actor.Frame) error { return c.Push(f) }

func (m fanoutMember) Init(c *actor.Context) error {
	if m.named {
		if err := c.Register("conn-" + c.Self().Id); err != nil {
			return err
		}
	}
	return c.Join("all")
}

func (fanoutMember) HandleInfo(c *actor.Context, msg any) error {
	if f, ok := msg.(actor.Frame); ok {
		return c.Push(f)
	}
	return nil
}

// benchServer is the server side of a benchmark, in this process.
type benchServer struct {
	url     string
	conns   func() int                                   // connections open now
	publish func(mt actor.MessageType, msg []byte) error // one message to every connection
}

// serverConfig says what a benchmark's server does besides echoing.
type serverConfig struct {
	fanout   bool // connections join the group "all"; publish sends to it
	compress bool // permessage-deflate for clients that offer it
	// writers: the gorilla server hands broadcasts to a writer goroutine
	// per connection instead of writing them in the publishing loop (see
	// BenchmarkFanoutBurst).
	writers bool
	// named: each connection also registers a unique name (protows: the
	// actor's id; gorilla: the peer's address, in a map).
	named bool
}

// newBenchServer starts impl: protows, gorilla (the careful baseline:
// broadcasts as one PreparedMessage per publish) or gorilla-percon (the
// same server, broadcasting with WriteMessage to each connection, so that
// a compressed message is compressed once per connection).
func newBenchServer(b *testing.B, impl string, cfg serverConfig) *benchServer {
	b.Helper()
	var h http.Handler
	s := &benchServer{}
	switch impl {
	case "protows":
		sys := newSystem(b)
		opts := []wsactor.ServerOption{}
		if cfg.compress {
			opts = append(opts, wsactor.WithCompression(true))
		}
		newHandler := func() actor.Handler { return echoHandler{} }
		if cfg.fanout {
			reg, err := registry.NewLocal(sys)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(reg.Stop)
			opts = append(opts, wsactor.WithRegistry(reg))
			newHandler = func() actor.Handler { return fanoutMember{named: cfg.named} }
			s.publish = func(mt actor.MessageType, msg []byte) error {
				return reg.Publish(context.Background(), "all", actor.Frame{Type: mt, Data: msg})
			}
			s.conns = func() int {
				m, _ := reg.Members(context.Background(), "all")
				return len(m)
			}
		}
		srv, err := wsactor.NewServer(sys, newHandler, opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		})
		if s.conns == nil {
			s.conns = func() int {
				n, _ := srv.Connections(context.Background())
				return n
			}
		}
		h = srv
	case "gorilla", "gorilla-percon":
		if impl == "gorilla-percon" && cfg.writers {
			b.Fatal("gorilla-percon writes broadcasts in the publishing loop only")
		}
		g := &gorillaServer{
			up:      websocket.Upgrader{EnableCompression: cfg.compress},
			conns:   map[*websocket.Conn]*gorillaConn{},
			perConn: impl == "gorilla-percon",
			named:   cfg.named,
			names:   map[string]*websocket.Conn{},
			writers: cfg.writers,
		}
		s.conns = func() int { return int(g.open.Load()) }
		s.publish = func(mt actor.MessageType, msg []byte) error { return g.publish(int(mt), msg) }
		h = g
	default:
		b.Fatalf("unknown impl %q", impl)
	}
	hs := httptest.NewServer(h)
	b.Cleanup(hs.Close)
	s.url = "ws" + strings.TrimPrefix(hs.URL, "http")
	return s
}

// gorillaServer is the hand-written baseline: a goroutine per connection
// that reads and echoes, a write mutex per connection, and a set of
// connections under a mutex for broadcasts.
type gorillaServer struct {
	up    websocket.Upgrader
	open  atomic.Int64
	mu    sync.Mutex
	conns map[*websocket.Conn]*gorillaConn
	// perConn broadcasts with WriteMessage to each connection (each
	// compresses on its own) instead of one PreparedMessage per publish.
	perConn bool
	// writers hands each broadcast to a writer goroutine per connection
	// (with a queue of writerQueue) instead of writing it in the loop.
	writers bool
	// named keeps each connection in names too, under its peer's address.
	named bool
	names map[string]*websocket.Conn
}

// writerQueue is how many broadcasts wait for a connection's writer
// goroutine before publish blocks (it never drops one).
const writerQueue = 256

type gorillaConn struct {
	wmu sync.Mutex  // held for every write
	w   *connWriter // the writer goroutine's queue (writers only)
}

type connWriter struct {
	out    chan *websocket.PreparedMessage
	done   chan struct{} // closed once the connection has left the set
	exited chan struct{} // closed by the writer goroutine when it ends
}

func (g *gorillaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := g.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	gc := &gorillaConn{}
	if g.writers {
		gc.w = &connWriter{
			out:    make(chan *websocket.PreparedMessage, writerQueue),
			done:   make(chan struct{}),
			exited: make(chan struct{}),
		}
		go gc.writeLoop(c)
	}
	name := ""
	if g.named {
		name = "conn-" + c.RemoteAddr().String()
	}
	g.mu.Lock()
	g.conns[c] = gc
	if name != "" {
		g.names[name] = c
	}
	g.mu.Unlock()
	g.open.Add(1)
	defer func() {
		g.mu.Lock()
		delete(g.conns, c)
		if name != "" {
			delete(g.names, name)
		}
		g.mu.Unlock()
		if gc.w != nil {
			close(gc.w.done)
			<-gc.w.exited
		}
		g.open.Add(-1)
		c.Close()
	}()
	for {
		mt, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		gc.wmu.Lock()
		err = c.WriteMessage(mt, data)
		gc.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

// writeLoop writes the broadcasts queued for c until the connection has
// left the set. After a failed write it closes the socket (which ends the
// reader, and so the connection) and keeps taking what is queued without
// writing it, so that a publisher never waits on a dead connection.
func (gc *gorillaConn) writeLoop(c *websocket.Conn) {
	defer close(gc.w.exited)
	failed := false
	for {
		select {
		case pm := <-gc.w.out:
			if failed {
				continue
			}
			gc.wmu.Lock()
			err := c.WritePreparedMessage(pm)
			gc.wmu.Unlock()
			if err != nil {
				failed = true
				c.Close()
			}
		case <-gc.w.done:
			return
		}
	}
}

func (g *gorillaServer) publish(mt int, msg []byte) error {
	var pm *websocket.PreparedMessage
	if !g.perConn {
		var err error
		if pm, err = websocket.NewPreparedMessage(mt, msg); err != nil {
			return err
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for c, gc := range g.conns {
		if gc.w != nil {
			select {
			case gc.w.out <- pm:
			case <-gc.w.done:
			}
			continue
		}
		gc.wmu.Lock()
		var err error
		if g.perConn {
			err = c.WriteMessage(mt, msg)
		} else {
			err = c.WritePreparedMessage(pm)
		}
		gc.wmu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// waitConns waits until the server has n connections ready.
func waitConns(b *testing.B, s *benchServer, n int) {
	waitConnCount(b, s, func(open int) bool { return open >= n }, fmt.Sprintf("%d connections", n))
}

func waitConnsAtMost(b *testing.B, s *benchServer, n int) {
	waitConnCount(b, s, func(open int) bool { return open <= n }, fmt.Sprintf("at most %d connections", n))
}

func waitConnCount(b *testing.B, s *benchServer, ok func(open int) bool, want string) {
	deadline := time.Now().Add(60 * time.Second)
	for !ok(s.conns()) {
		if time.Now().After(deadline) {
			b.Fatalf("%d connections open after 60 s, want %s", s.conns(), want)
		}
		time.Sleep(5 * time.Millisecond) // polling a count in benchmark setup, not synchronising a test
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runEcho has the load generator send b.N messages and reports throughput,
// round trips and the server's CPU time per message.
func runEcho(b *testing.B, g *loadgen) {
	b.ResetTimer()
	cpu0 := cpuTime()
	g.send(b, loadCmd{Cmd: "run", N: b.N})
	ev := g.next(b)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if ev.Msgs == 0 {
		return
	}
	b.ReportMetric(float64(ev.Msgs)/time.Duration(ev.ElapsedNS).Seconds(), "msgs/s")
	b.ReportMetric(float64(ev.P50NS)/1e3, "p50-us")
	b.ReportMetric(float64(ev.P99NS)/1e3, "p99-us")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(ev.Msgs), "cpu-us/msg")
}

// BenchmarkEcho: 64-byte text messages; each client waits for its echo.
func BenchmarkEcho(b *testing.B) {
	for _, conns := range []int{1, 64, 1000} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("conns=%d/impl=%s", conns, impl), func(b *testing.B) {
				s := newBenchServer(b, impl, serverConfig{})
				runEcho(b, startLoadgen(b, loadJob{URL: s.url, Conns: conns, Size: 64, Inflight: 1}))
			})
		}
	}
}

// BenchmarkEchoPipelined: 32 messages in flight per client.
func BenchmarkEchoPipelined(b *testing.B) {
	for _, impl := range impls {
		b.Run(fmt.Sprintf("conns=64/impl=%s", impl), func(b *testing.B) {
			s := newBenchServer(b, impl, serverConfig{})
			runEcho(b, startLoadgen(b, loadJob{URL: s.url, Conns: 64, Size: 64, Inflight: 32}))
		})
	}
}

// BenchmarkIdleConn: memory the server holds per idle connection after GC
// (heap in use plus goroutine stacks), and goroutines per connection.
// protows runs with its defaults (keepalive on).
//
// The figures leave out what the server holds with no connection (for
// protows, the actor system). B/conn is measured on the first 10,000
// connections the server process sees: it includes what the Go runtime allocates once per connection and
// keeps for reuse afterwards (goroutine descriptors, poll descriptors).
// warm-B/conn is measured on a second 10,000, after the first have gone:
// the runtime then reuses those, so the figure is lower. Run each
// implementation in a process of its own for B/conn to mean the same for
// both (.ci/bench does).
func BenchmarkIdleConn(b *testing.B) { idleConns(b, serverConfig{}) }

// BenchmarkIdleConnNamed: BenchmarkIdleConn with one unique name and one
// group membership per connection (protows: the local registry; gorilla:
// a map of names and the set of connections a broadcast goes to), as a
// chat server holds its users.
func BenchmarkIdleConnNamed(b *testing.B) { idleConns(b, serverConfig{fanout: true, named: true}) }

func idleConns(b *testing.B, cfg serverConfig) {
	const conns = 10000
	for _, impl := range impls {
		b.Run(fmt.Sprintf("conns=%d/impl=%s", conns, impl), func(b *testing.B) {
			s := newBenchServer(b, impl, cfg)
			m0 := settledMemory() // after the server (and its actor system) is up
			g := startLoadgen(b, loadJob{URL: s.url, Conns: conns, Size: 64, Inflight: 1})
			waitConns(b, s, conns)
			// Each connection echoes one message, then idles: its reader
			// has run a turn and a write, as a real connection's has.
			g.send(b, loadCmd{Cmd: "run", N: conns})
			g.next(b)
			m1 := settledMemory()
			if dir := os.Getenv("PROTOWS_IDLE_PROFILE"); dir != "" {
				// A heap profile while the connections are idle: where the
				// memory per connection goes (-test.memprofilerate=1 for all of it).
				name := "idle-" + impl
				if cfg.named {
					name = "idle-named-" + impl
				}
				writeHeapProfile(b, filepath.Join(dir, name+".heap"))
			}
			g.stop()
			waitConnsAtMost(b, s, 0)
			m2 := settledMemory()
			startLoadgen(b, loadJob{URL: s.url, Conns: conns})
			waitConns(b, s, conns)
			m3 := settledMemory()
			for range b.N {
				// The figures are taken once; b.N only satisfies the framework.
			}
			heap, stack := float64(m1.heap-m0.heap)/conns, float64(m1.stack-m0.stack)/conns
			b.ReportMetric(heap+stack, "B/conn")
			b.ReportMetric(heap, "heap-B/conn")
			b.ReportMetric(stack, "stack-B/conn")
			b.ReportMetric(float64(m3.heap+m3.stack-m2.heap-m2.stack)/conns, "warm-B/conn")
			b.ReportMetric(float64(m1.goroutines-m0.goroutines)/conns, "goroutines/conn")
		})
	}
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

type memory struct {
	heap, stack int64
	goroutines  int
}

func settledMemory() memory {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return memory{int64(ms.HeapInuse), int64(ms.StackInuse), runtime.NumGoroutine()}
}

// BenchmarkFanout: one publish to a group of N connections (protows: the
// registry's group publish; gorilla: one PreparedMessage written to every
// connection in a loop), and the time until every client has it.
func BenchmarkFanout(b *testing.B) {
	for _, conns := range []int{1000, 10000} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("conns=%d/impl=%s", conns, impl), func(b *testing.B) {
				s := newBenchServer(b, impl, serverConfig{fanout: true})
				g := startLoadgen(b, loadJob{URL: s.url, Conns: conns})
				runFanout(b, s, g, conns, binaryFanoutMsg)
			})
		}
	}
}

// binaryFanoutMsg is a 64-byte binary message: the sequence number and
// the time of publishing (Unix ns), big-endian, then zeros.
func binaryFanoutMsg(seq int, sent time.Time) (actor.MessageType, []byte) {
	msg := make([]byte, 64)
	binary.BigEndian.PutUint64(msg, uint64(seq))
	binary.BigEndian.PutUint64(msg[8:], uint64(sent.UnixNano()))
	return actor.BinaryMessage, msg
}

// runFanout publishes b.N messages, each once the one before has reached
// every client, and reports the median time until all have one and the
// server's CPU time per message received.
func runFanout(b *testing.B, s *benchServer, g *loadgen, conns int, msg func(seq int, sent time.Time) (actor.MessageType, []byte)) {
	waitConns(b, s, conns)
	g.send(b, loadCmd{Cmd: "expect", N: b.N})
	all := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		mt, m := msg(i, time.Now())
		if err := s.publish(mt, m); err != nil {
			b.Fatal(err)
		}
		ev := g.next(b)
		if ev.Event != "all" || ev.Seq != i {
			b.Fatalf("load generator: %+v, want all of %d", ev, i)
		}
		all = append(all, time.Duration(ev.AllNS))
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Nanoseconds())/1e6, "ms-all-received")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N*conns), "cpu-us/msg")
}
