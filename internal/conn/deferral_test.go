package conn_test

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/conn"
)

// Deferred replies: while the frame being delivered has another whole one
// behind it (Transport.MoreBuffered), the reader goroutine defers its
// write to that one's turn. These tests drive the reader with a transport
// whose reads and MoreBuffered are scripted, and check what reaches the
// socket.

// readStep is what the scripted transport's ReadLoop does next.
type readStep struct {
	frame actor.Frame
	more  bool  // MoreBuffered while frame is delivered
	end   error // if set, ReadLoop returns it instead of delivering a frame
	// protocolError makes the transport answer a protocol error as
	// wsactor's does: drain, then its own close frame, then return end.
	protocolError bool
}

// stepTransport is a Transport whose ReadLoop follows the steps sent to
// it and which records every write, in order, as a string: "text <data>",
// "close <code>" for the actor's close frames, "own close" for the
// transport's own after a protocol error. After its own close, writes fail
// with conn.ErrCloseSent, as gorilla's do.
type stepTransport struct {
	steps  chan readStep
	closed chan struct{} // closed by Close
	once   sync.Once
	more   bool // reader goroutine only

	// slow, if set, says how long the write of a frame takes: a writer
	// that has not got to it yet, or a peer that reads slowly.
	slow func(f actor.Frame) time.Duration

	mu       sync.Mutex
	log      []string
	ownClose bool
	wrote    chan string   // every write, as logged
	draining chan struct{} // closed when the transport calls drain
}

func newStepTransport() *stepTransport {
	return &stepTransport{steps: make(chan readStep, 16), closed: make(chan struct{}), wrote: make(chan string, 64), draining: make(chan struct{})}
}

func (s *stepTransport) ReadLoop(deliver func(actor.Frame), drain func()) error {
	for {
		select {
		case st := <-s.steps:
			switch {
			case st.protocolError:
				close(s.draining)
				drain()
				s.record("own close", true)
				return st.end
			case st.end != nil:
				return st.end
			}
			s.more = st.more
			deliver(st.frame)
			s.more = false
		case <-s.closed:
			return net.ErrClosed
		}
	}
}

// record logs a write; own says it is the transport's own close.
func (s *stepTransport) record(what string, own bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ownClose {
		return conn.ErrCloseSent
	}
	s.ownClose = own
	s.log = append(s.log, what)
	s.wrote <- what
	return nil
}

func (s *stepTransport) written() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func (s *stepTransport) WriteFrame(f actor.Frame) error {
	if s.slow != nil {
		if d := s.slow(f); d > 0 {
			select {
			case <-time.After(d):
			case <-s.closed:
				return net.ErrClosed
			}
		}
	}
	return s.record("text "+string(f.Data), false)
}

func (s *stepTransport) WriteClose(code actor.CloseCode, _ string) error {
	return s.record(fmt.Sprint("close ", int(code)), false)
}

func (s *stepTransport) WritePing([]byte) error { return nil }
func (s *stepTransport) WritePong([]byte) error { return nil }
func (s *stepTransport) MoreBuffered() bool     { return s.more }
func (s *stepTransport) Hold()                  {}
func (s *stepTransport) Flush() error           { return nil }
func (s *stepTransport) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}
func (s *stepTransport) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (s *stepTransport) Subprotocol() string  { return "" }

// step hands the reader its next step.
func (s *stepTransport) step(t *testing.T, st readStep) {
	t.Helper()
	select {
	case s.steps <- st:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader does not read")
	}
}

// expectWrite waits for the next write and checks it.
func (s *stepTransport) expectWrite(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-s.wrote:
		require.Equal(t, want, got, "written so far: %q", s.written())
	case <-time.After(5 * time.Second):
		t.Fatalf("%q was not written; written so far: %q", want, s.written())
	}
}

// expectClosed waits until the socket is closed.
func (s *stepTransport) expectClosed(t *testing.T) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("the socket was not closed; written: %q", s.written())
	}
}

// spawnSteps starts a server connection actor running h over a new
// stepTransport; the steps given are queued before it starts reading.
func spawnSteps(t *testing.T, h actor.Handler, steps ...readStep) *stepTransport {
	t.Helper()
	_, sup := quietSystem(t)
	cfg, err := conn.NewConfig()
	require.NoError(t, err)
	tr := newStepTransport()
	for _, st := range steps {
		tr.steps <- st
	}
	_, err = sup.Spawn(cfg.Props(h, tr))
	require.NoError(t, err)
	return tr
}

// The actor stops during a turn the reader runs while more input is
// buffered, so that its last write (a reply, then the final close frame)
// is deferred; then the peer's close ends the reading, and no turn comes
// again. The reader must write what was deferred: the reply, the close
// frame, and close the socket.
func TestStopDuringDeferralWritesQueuedClose(t *testing.T) {
	h := &script{in: func(c *actor.Context, f actor.Frame) error {
		if err := c.Push(f); err != nil {
			return err
		}
		c.Actor().Stop(c.Self()) // runs on this goroutine once the turn is over
		return nil
	}}
	tr := spawnSteps(t, h,
		readStep{frame: actor.Text("a"), more: true},
		readStep{end: &actor.CloseError{Code: actor.CloseNormal}}, // the peer's close, buffered behind
	)
	tr.expectWrite(t, "text a")
	tr.expectWrite(t, fmt.Sprint("close ", int(actor.CloseGoingAway)))
	tr.expectClosed(t)
	assert.Equal(t, []string{"text a", fmt.Sprint("close ", int(actor.CloseGoingAway))}, tr.written())
}

// A reply deferred because another message is buffered goes out even if
// the handler of that message takes long: here it waits until the reply
// to the first one has been written.
func TestDeferredReplyWrittenWhileNextHandlerIsSlow(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	h := &script{in: func(c *actor.Context, f actor.Frame) error {
		if string(f.Data) == "slow" {
			select {
			case <-release:
			case <-time.After(10 * time.Second):
				return fmt.Errorf("never released")
			}
		}
		return c.Push(f)
	}}
	tr := spawnSteps(t, h,
		readStep{frame: actor.Text("fast"), more: true},
		readStep{frame: actor.Text("slow")},
	)
	// Before the actor is stopped (cleanups run last first).
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	tr.expectWrite(t, "text fast") // while the second handler waits
	releaseOnce.Do(func() { close(release) })
	tr.expectWrite(t, "text slow")
}

// After a protocol error, the transport drains the actor's queue before it
// writes its own close frame: replies to the frames before the bad one go
// out first, then nothing more. That holds when a writer goroutine has the
// queue in hand: here the reader wrote four replies of a burst of six and
// handed the rest to a writer, whose first write takes a while (it may
// simply not have run yet). drain must wait for it, not return at once
// and let the close overtake the replies, which are then refused.
func TestDrainWaitsForAWriterBeforeTheTransportCloses(t *testing.T) {
	h := &script{in: func(c *actor.Context, f actor.Frame) error {
		for i := range 6 {
			if err := c.Push(actor.Text(fmt.Sprint("r", i))); err != nil {
				return err
			}
		}
		return nil
	}}
	tr := newStepTransport()
	tr.slow = func(f actor.Frame) time.Duration {
		if string(f.Data) == "r4" { // the writer goroutine's first frame
			return 100 * time.Millisecond
		}
		return 0
	}
	_, sup := quietSystem(t)
	cfg, err := conn.NewConfig()
	require.NoError(t, err)
	tr.steps <- readStep{frame: actor.Text("burst")}
	tr.steps <- readStep{protocolError: true, end: &actor.ProtocolError{Code: actor.CloseInvalidPayload}}
	_, err = sup.Spawn(cfg.Props(h, tr))
	require.NoError(t, err)
	tr.expectClosed(t)
	assert.Equal(t, []string{"text r0", "text r1", "text r2", "text r3", "text r4", "text r5", "own close"}, tr.written())
}

// The actor is busy on another goroutine (a message from another actor)
// when the reader delivers a frame: the reader queues it and reads on, to
// a frame that breaks the protocol. The reply to the queued frame goes out
// before the transport's own close: drain waits for the actor to have
// handled what the reader queued.
func TestRepliesToQueuedFramesBeforeTheTransportCloses(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	h := busyScript(entered, release)
	tr := newStepTransport()
	_, sup := quietSystem(t)
	cfg, err := conn.NewConfig()
	require.NoError(t, err)
	_, err = sup.Spawn(cfg.Props(h, tr))
	require.NoError(t, err)
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the actor did not get busy")
	}
	tr.step(t, readStep{frame: actor.Text("a")}) // queued: the actor is busy
	tr.step(t, readStep{protocolError: true, end: &actor.ProtocolError{Code: actor.CloseProtocolError}})
	select {
	case <-tr.draining:
	case <-time.After(5 * time.Second):
		t.Fatal("the transport did not drain")
	}
	releaseOnce.Do(func() { close(release) })
	tr.expectWrite(t, "text a")
	tr.expectWrite(t, "own close")
}

// busyScript is a handler that, once started, sends itself a message
// (handled on a goroutine of its own) and stays in that turn, having
// closed entered, until release is closed: the actor is busy elsewhere
// than on its reader.
func busyScript(entered, release chan struct{}) *script {
	return &script{
		init: func(c *actor.Context) error {
			c.SendAfter(time.Millisecond, "busy")
			return nil
		},
		info: func(c *actor.Context, msg any) error {
			close(entered)
			select {
			case <-release:
				return nil
			case <-time.After(10 * time.Second):
				return fmt.Errorf("never released")
			}
		},
	}
}
