package conn_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/protows/protows/internal/conn"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
)

// The benchmarks in this file measure the connection actor's own cost per
// message, with no socket: the transport hands frames over and counts the
// writes. wsactor's benchmarks measure the same paths over real sockets,
// against raw gorilla/websocket.

// memTransport delivers frames from the reader goroutine as fast as the
// actor takes them and counts the frames written.
type memTransport struct {
	feed    chan int      // how many frames to deliver next
	closed  chan struct{} // closed by Close
	once    sync.Once
	written atomic.Int64
	target  atomic.Int64
	reached chan struct{} // receives when written reaches target
}

func newMemTransport() *memTransport {
	return &memTransport{feed: make(chan int), closed: make(chan struct{}), reached: make(chan struct{}, 1)}
}

func (t *memTransport) ReadLoop(deliver func(actor.Frame), _ func()) error {
	msg := actor.Text("0123456789012345678901234567890123456789012345678901234567890123")
	for {
		select {
		case n := <-t.feed:
			for range n {
				deliver(msg)
			}
		case <-t.closed:
			return net.ErrClosed
		}
	}
}

// expect sets how many more writes make reached fire.
func (t *memTransport) expect(n int64) { t.target.Store(t.written.Load() + n) }

func (t *memTransport) WriteFrame(actor.Frame) error {
	if t.written.Add(1) == t.target.Load() {
		t.reached <- struct{}{}
	}
	return nil
}
func (t *memTransport) WritePing([]byte) error                   { return nil }
func (t *memTransport) WritePong([]byte) error                   { return nil }
func (t *memTransport) WriteClose(actor.CloseCode, string) error { return nil }
func (t *memTransport) Hold()                                    {}
func (t *memTransport) Flush() error                             { return nil }
func (t *memTransport) MoreBuffered() bool                       { return false }
func (t *memTransport) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}
func (t *memTransport) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (t *memTransport) Subprotocol() string  { return "" }

type benchEcho struct{ actor.BaseHandler }

func (benchEcho) HandleIn(c *actor.Context, f actor.Frame) error { return c.Push(f) }

func (benchEcho) HandleInfo(c *actor.Context, msg any) error {
	if f, ok := msg.(actor.Frame); ok {
		return c.Push(f)
	}
	return nil
}

func spawnMem(b *testing.B, n int) (*protoactor.ActorSystem, []*protoactor.PID, []*memTransport) {
	b.Helper()
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	sup := conn.NewSupervisor(sys, nil)
	cfg, err := conn.NewConfig()
	if err != nil {
		b.Fatal(err)
	}
	pids := make([]*protoactor.PID, n)
	ts := make([]*memTransport, n)
	for i := range n {
		ts[i] = newMemTransport()
		if pids[i], err = sup.Spawn(cfg.Props(benchEcho{}, ts[i])); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sup.Stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
			b.Error(err)
		}
		sys.Shutdown()
	})
	return sys, pids, ts
}

// BenchmarkActorEcho is the actor's cost per echoed frame: the reader
// goroutine runs the actor, which pushes the frame back, and writes it.
func BenchmarkActorEcho(b *testing.B) {
	_, _, ts := spawnMem(b, 1)
	t := ts[0]
	b.ReportAllocs()
	b.ResetTimer()
	t.expect(int64(b.N))
	t.feed <- b.N
	<-t.reached
}

// BenchmarkActorInfo is the cost per connection of a message from another
// actor that the handler pushes to its peer, as in a group publish: each
// op sends one message to each of 1,000 connections and waits until all
// of them have written it.
func BenchmarkActorInfo(b *testing.B) {
	const n = 1000
	sys, pids, ts := spawnMem(b, n)
	msg := actor.Text("0123456789012345678901234567890123456789012345678901234567890123")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, t := range ts {
			t.expect(1)
		}
		for _, pid := range pids {
			sys.Root.Send(pid, msg)
		}
		for _, t := range ts {
			<-t.reached
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/conn")
}
