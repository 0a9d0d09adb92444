package conn_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/protows/protows/wsactor"

	"github.com/protows/protows/internal/conn"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/actor/actortest"
)

// When the actor waits for a child to stop, Stopping and Stopped are apart;
// a reader that ends in between (here: the network drops while the last
// close frame cannot be written) must still get the socket closed.
func TestReaderExitBetweenStoppingAndStoppedClosesSocket(t *testing.T) {
	release := make(chan struct{})
	slowChild := protoactor.PropsFromFunc(func(ctx protoactor.Context) {
		if _, ok := ctx.Message().(*protoactor.Stopping); ok {
			<-release
		}
	})
	c := actortest.New(t, &script{init: func(c *actor.Context) error {
		c.Actor().Spawn(slowChild)
		return nil
	}})
	defer close(release)
	c.StallWrites()
	c.System().Root.Stop(c.PID())
	c.Terminated() // Stopping ran; Stopped waits for the child
	c.Drop()
	c.WaitSocketClosed()
}

// A handler whose Init failed and that is restarted by its supervisor gets
// Init again and a working socket.
func TestInitFailureThenRestart(t *testing.T) {
	calls := 0
	restart := protoactor.NewOneForOneStrategy(3, 0, func(any) protoactor.Directive { return protoactor.RestartDirective })
	c := actortest.New(t, &script{init: func(c *actor.Context) error {
		calls++
		if calls == 1 {
			return errors.New("first Init fails")
		}
		return c.Push(actor.Text(fmt.Sprint("init ", calls)))
	}}, actortest.WithStrategy(restart))
	c.ExpectText("init 2")
	c.InText("still reading")
	c.ExpectText("still reading")
}

// A handler whose Init failed and that is resumed still reads its socket.
func TestInitFailureThenResume(t *testing.T) {
	resume := protoactor.NewOneForOneStrategy(3, 0, func(any) protoactor.Directive { return protoactor.ResumeDirective })
	c := actortest.New(t, &script{init: func(*actor.Context) error { return errors.New("Init fails") }}, actortest.WithStrategy(resume))
	c.InText("hello")
	c.ExpectText("hello")
}

// DropOldest does not sacrifice queued frames for one that can never fit.
func TestDropOldestKeepsQueueForOversizedFrame(t *testing.T) {
	var errs []error
	c := actortest.New(t, &script{info: func(c *actor.Context, msg any) error {
		errs = append(errs, c.Push(actor.Text("small")), c.Push(actor.Text("this frame is larger than the limit")))
		return nil
	}}, actortest.WithConnOptions(
		// "small" takes 5+64 bytes of the 90; the long one 35+64, more than all.
		wsactor.WithOutboundLimit(10, 90), wsactor.WithOverflowPolicy(wsactor.OverflowDropOldest)))
	c.Send("go")
	c.ExpectText("small")
	assert.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], actor.ErrOutboxFull)
}

// A Shutdown with a code that may not be sent closes with 1001.
func TestShutdownWithUnsendableCode(t *testing.T) {
	c := actortest.New(t, &script{})
	c.Send(&actor.Shutdown{})
	c.ExpectClose(actor.CloseGoingAway)
}

// Poison handles what is queued, and the frames it pushed are sent before
// the close frame.
func TestPoisonSendsQueuedFrames(t *testing.T) {
	c := actortest.New(t, &script{info: func(c *actor.Context, msg any) error {
		return c.Push(actor.Text(msg.(string)))
	}})
	c.StallWrites()
	for i := range 3 {
		c.Send(fmt.Sprint(i))
	}
	c.System().Root.Poison(c.PID())
	c.ResumeWrites()
	for i := range 3 {
		c.ExpectText(fmt.Sprint(i))
	}
	c.ExpectClose(actor.CloseGoingAway)
	assert.Equal(t, actor.ReasonShutdown, c.Terminated().Kind)
}

// While the actor is busy with a message from another actor, the reader
// queues what it reads, but only a few messages: then it stops reading
// (backpressure on the peer). Once the actor is free, every frame is
// handled, in the order it arrived, whether it ran on the reader's stack
// or waited in the mailbox.
func TestReaderStopsWhileActorBusyAndKeepsOrder(t *testing.T) {
	const frames = 100
	busy, release := make(chan struct{}), make(chan struct{})
	got := make(chan string, frames)
	h := &script{
		info: func(*actor.Context, any) error {
			close(busy)
			<-release
			return nil
		},
		in: func(_ *actor.Context, f actor.Frame) error {
			got <- string(f.Data)
			return nil
		},
	}
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer sys.Shutdown()
	sup := conn.NewSupervisor(sys, nil)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, sup.Stop(ctx))
	}()
	cfg, err := conn.NewConfig()
	require.NoError(t, err)
	tr := &countingTransport{next: make(chan actor.Frame), closed: make(chan struct{})}
	pid, err := sup.Spawn(cfg.Props(h, tr))
	require.NoError(t, err)

	tr.deliver(t, "before")
	require.Equal(t, "before", recv(t, got, "the first frame"))
	// The reader ran the actor for "before" on its own stack: it runs
	// what arrives meanwhile too, so "hold on" is sent once it is back to
	// reading, to keep the actor busy on a goroutine of its own.
	require.Eventually(t, func() bool { return tr.returned.Load() == 1 }, 5*time.Second, time.Millisecond)
	sys.Root.Send(pid, "hold on")
	recv(t, busy, "HandleInfo")
	// The reader takes frames until its queue is full, then blocks inside
	// deliver with one more in hand.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range frames {
			select {
			case tr.next <- actor.Text(fmt.Sprint(i)):
			case <-tr.closed:
				return
			}
		}
	}()
	require.Eventually(t, func() bool { return tr.returned.Load() >= 8 }, 5*time.Second, time.Millisecond)
	require.Never(t, func() bool { return tr.returned.Load() > 9 }, 100*time.Millisecond, time.Millisecond,
		"the reader must stop reading while the actor is busy")
	close(release)
	for i := range frames {
		select {
		case f := <-got:
			require.Equal(t, fmt.Sprint(i), f)
		case <-time.After(5 * time.Second):
			t.Fatalf("frame %d was not handled", i)
		}
	}
	recv(t, sent, "the end of the sender")
}

// countingTransport delivers the frames sent on next and counts the
// deliver calls that have returned.
type countingTransport struct {
	memTransport
	next     chan actor.Frame
	closed   chan struct{}
	once     sync.Once
	returned atomic.Int64
}

func (c *countingTransport) deliver(t *testing.T, s string) {
	t.Helper()
	select {
	case c.next <- actor.Text(s):
	case <-time.After(5 * time.Second):
		t.Fatal("the reader does not read")
	}
}

// burst makes the reader deliver text frames "0" to "n-1" as fast as the
// actor takes them.
func (c *countingTransport) burst(t *testing.T, n int) {
	t.Helper()
	select {
	case c.next <- actor.Frame{Type: burstFrames, Data: []byte(fmt.Sprint(n))}:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader does not read")
	}
}

// burstFrames marks the frame that asks for a burst; it is not delivered.
const burstFrames actor.MessageType = 255

func (c *countingTransport) ReadLoop(deliver func(actor.Frame), _ func()) error {
	for {
		select {
		case f := <-c.next:
			if f.Type == burstFrames {
				n, _ := strconv.Atoi(string(f.Data))
				for i := range n {
					deliver(actor.Text(strconv.Itoa(i)))
				}
				continue
			}
			deliver(f)
			c.returned.Add(1)
		case <-c.closed:
			return net.ErrClosed
		}
	}
}

func (c *countingTransport) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// Frames from the reader and messages from other actors arrive together:
// each sender's messages are handled in the order sent, whether a frame
// runs on the reader's stack or waits in the mailbox, and the actor never
// runs on two goroutines at once. More processors than cores make senders
// get preempted between queueing a message and counting it.
func TestMixedSendersKeepOrderAndExclusion(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	const frames, senders, per = 10000, 4, 2000
	for round := range 40 {
		var inside atomic.Int32
		overlap := false
		nextFrame, nextInfo, handled := 0, make([]int, senders), 0
		var bad []string
		done := make(chan struct{})
		count := func() {
			if handled++; handled == frames+senders*per {
				close(done)
			}
		}
		enter := func() func() {
			if inside.Add(1) != 1 {
				overlap = true
			}
			return func() { inside.Add(-1) }
		}
		h := &script{
			in: func(c *actor.Context, f actor.Frame) error {
				defer enter()()
				if s := string(f.Data); s != fmt.Sprint(nextFrame) && len(bad) < 3 {
					bad = append(bad, fmt.Sprintf("frame %s, want %d", s, nextFrame))
				}
				nextFrame++
				count()
				return c.Push(f)
			},
			info: func(c *actor.Context, msg any) error {
				defer enter()()
				m := msg.([2]int)
				if m[1] != nextInfo[m[0]] && len(bad) < 3 {
					bad = append(bad, fmt.Sprintf("sender %d: message %d, want %d", m[0], m[1], nextInfo[m[0]]))
				}
				nextInfo[m[0]]++
				count()
				return c.Push(actor.Text("info"))
			},
		}
		sys, sup := quietSystem(t)
		cfg, err := conn.NewConfig(conn.WithOutboundLimit(1<<20, 1<<30))
		require.NoError(t, err)
		tr := &countingTransport{next: make(chan actor.Frame), closed: make(chan struct{})}
		pid, err := sup.Spawn(cfg.Props(h, tr))
		require.NoError(t, err)
		var wg sync.WaitGroup
		for s := range senders {
			wg.Go(func() {
				for i := range per {
					sys.Root.Send(pid, [2]int{s, i})
				}
			})
		}
		tr.burst(t, frames)
		wg.Wait()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: not every message was handled", round)
		}
		// done was closed by the actor after its last write to these.
		require.False(t, overlap, "round %d: the actor ran on two goroutines at once", round)
		require.Empty(t, bad, "round %d", round)
	}
}

// quietSystem starts an actor system without logs and a connection
// supervisor in it, both stopped when the test ends.
func quietSystem(t *testing.T) (*protoactor.ActorSystem, *conn.Supervisor) {
	t.Helper()
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	sup := conn.NewSupervisor(sys, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, sup.Stop(ctx))
		sys.Shutdown()
	})
	return sys, sup
}
