package conn_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/protows/protows/wsactor"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/actor/actortest"
)

// script is a handler whose callbacks are set per test.
type script struct {
	actor.BaseHandler
	init    func(c *actor.Context) error
	in      func(c *actor.Context, f actor.Frame) error
	info    func(c *actor.Context, msg any) error
	control func(c *actor.Context, f actor.Frame) error

	mu       sync.Mutex
	controls []actor.Frame
}

func (s *script) Init(c *actor.Context) error {
	if s.init != nil {
		return s.init(c)
	}
	return nil
}

func (s *script) HandleIn(c *actor.Context, f actor.Frame) error {
	if s.in != nil {
		return s.in(c, f)
	}
	return c.Push(f)
}

func (s *script) HandleInfo(c *actor.Context, msg any) error {
	if s.info != nil {
		return s.info(c, msg)
	}
	return nil
}

func (s *script) HandleControl(c *actor.Context, f actor.Frame) error {
	s.mu.Lock()
	s.controls = append(s.controls, f)
	s.mu.Unlock()
	if s.control != nil {
		return s.control(c, f)
	}
	return nil
}

// recv waits for a value from ch, and fails t if none comes within
// actortest's default timeout.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(actortest.DefaultTimeout):
		t.Fatalf("no %s within %v", what, actortest.DefaultTimeout)
	}
	var zero T
	return zero
}

func TestEchoAndOrder(t *testing.T) {
	c := actortest.New(t, &script{})
	for i := range 100 {
		c.InText(fmt.Sprint(i))
	}
	c.InBinary([]byte{0, 1, 2})
	for i := range 100 {
		c.ExpectText(fmt.Sprint(i))
	}
	c.ExpectFrame(actor.Binary([]byte{0, 1, 2}))
}

func TestInitPushesBeforePeerData(t *testing.T) {
	c := actortest.New(t, &script{init: func(c *actor.Context) error { return c.Push(actor.Text("hello")) }})
	c.InText("x")
	c.ExpectText("hello")
	c.ExpectText("x")
}

func TestHandleInfoAndRespond(t *testing.T) {
	c := actortest.New(t, &script{info: func(c *actor.Context, msg any) error {
		if s, ok := msg.(string); ok {
			c.Respond("ack " + s)
			return c.Push(actor.Text(s))
		}
		return nil
	}})
	res, err := c.System().Root.RequestFuture(c.PID(), "news", time.Second).Result()
	require.NoError(t, err)
	assert.Equal(t, "ack news", res)
	c.ExpectText("news")
}

func TestPingAnsweredAndSeen(t *testing.T) {
	h := &script{}
	c := actortest.New(t, h)
	c.Ping("p1")
	c.Pong("p2")
	got, err := c.Next()
	require.NoError(t, err)
	assert.Equal(t, actor.PongMessage, got.Frame.Type)
	assert.Equal(t, "p1", string(got.Frame.Data))
	c.InText("sync") // processed after both control frames
	c.ExpectText("sync")
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Len(t, h.controls, 2)
	assert.Equal(t, actor.PingMessage, h.controls[0].Type)
	assert.Equal(t, actor.PongMessage, h.controls[1].Type)
	assert.Equal(t, "p2", string(h.controls[1].Data))
}

func TestHandlerStopClosesAfterQueuedFrames(t *testing.T) {
	c := actortest.New(t, &script{in: func(c *actor.Context, f actor.Frame) error {
		if err := c.Push(actor.Text("bye")); err != nil {
			return err
		}
		return actor.Stop(actor.ClosePolicyViolation, "bad input")
	}})
	c.InText("x")
	c.ExpectText("bye")
	assert.Equal(t, "bad input", c.ExpectClose(actor.ClosePolicyViolation))
	c.PeerClose(actor.ClosePolicyViolation, "")
	r := c.Terminated()
	assert.Equal(t, actor.ReasonNormal, r.Kind)
	assert.Equal(t, actor.ClosePolicyViolation, r.Code)
	assert.True(t, c.SocketClosed())
}

func TestPushAfterCloseIsNotSent(t *testing.T) {
	var afterClose error
	c := actortest.New(t, &script{in: func(c *actor.Context, f actor.Frame) error {
		require.NoError(t, c.Close(actor.CloseNormal, "done"))
		afterClose = c.Push(actor.Text("late"))
		return nil
	}})
	c.InText("x")
	c.ExpectClose(actor.CloseNormal)
	c.PeerClose(actor.CloseNormal, "")
	c.Terminated()
	assert.ErrorIs(t, afterClose, actor.ErrClosed)
}

func TestRemoteCloseIsAnsweredAndReported(t *testing.T) {
	c := actortest.New(t, &script{})
	c.PeerClose(4001, "leaving")
	assert.Equal(t, "leaving", c.ExpectClose(4001))
	r := c.Terminated()
	assert.Equal(t, actor.ReasonRemote, r.Kind)
	assert.Equal(t, actor.CloseCode(4001), r.Code)
	assert.Equal(t, "leaving", r.Text)
}

func TestRemoteCloseWithoutStatusAnswersNormal(t *testing.T) {
	c := actortest.New(t, &script{})
	c.PeerClose(actor.CloseNoStatus, "")
	c.ExpectClose(actor.CloseNormal)
	r := c.Terminated()
	assert.Equal(t, actor.ReasonRemote, r.Kind)
	assert.Equal(t, actor.CloseNoStatus, r.Code)
}

func TestInvalidUTF8Closes1007(t *testing.T) {
	c := actortest.New(t, &script{})
	c.In(actor.Frame{Type: actor.TextMessage, Data: []byte{0xff, 0xfe}})
	c.ExpectClose(actor.CloseInvalidPayload)
	c.PeerClose(actor.CloseInvalidPayload, "")
	r := c.Terminated()
	assert.Equal(t, actor.ReasonError, r.Kind)
	assert.ErrorIs(t, r.Err, actor.ErrInvalidUTF8)
}

func TestNetworkDrop(t *testing.T) {
	c := actortest.New(t, &script{})
	c.Drop()
	r := c.Terminated()
	assert.Equal(t, actor.ReasonError, r.Kind)
	assert.Equal(t, actor.CloseAbnormal, r.Code)
	assert.True(t, c.SocketClosed())
}

func TestProtocolErrorFromTransport(t *testing.T) {
	c := actortest.New(t, &script{})
	c.ProtocolError(actor.CloseMessageTooBig, actor.ErrMessageTooBig)
	c.ExpectClose(actor.CloseMessageTooBig)
	r := c.Terminated()
	assert.Equal(t, actor.ReasonError, r.Kind)
	assert.Equal(t, actor.CloseMessageTooBig, r.Code)
	assert.ErrorIs(t, r.Err, actor.ErrMessageTooBig)
}

func TestCloseTimeoutDropsSilentPeer(t *testing.T) {
	c := actortest.New(t, &script{init: func(c *actor.Context) error {
		return actor.Stop(actor.CloseNormal, "")
	}}, actortest.WithManualCloseAnswer(), actortest.WithConnOptions(wsactor.WithCloseTimeout(50*time.Millisecond)))
	c.ExpectClose(actor.CloseNormal)
	// The peer never answers.
	r := c.Terminated()
	assert.Equal(t, actor.ReasonNormal, r.Kind)
	assert.True(t, c.SocketClosed())
}

func TestFailureClosesWith1011(t *testing.T) {
	for name, in := range map[string]func(*actor.Context, actor.Frame) error{
		"error": func(*actor.Context, actor.Frame) error { return errors.New("boom") },
		"panic": func(*actor.Context, actor.Frame) error { panic("boom") },
	} {
		t.Run(name, func(t *testing.T) {
			c := actortest.New(t, &script{in: in})
			c.InText("x")
			c.ExpectClose(actor.CloseInternalError)
			r := c.Terminated()
			assert.Equal(t, actor.ReasonError, r.Kind)
			assert.Equal(t, actor.CloseInternalError, r.Code)
			assert.ErrorContains(t, r.Err, "boom")
			if name == "panic" {
				var pe *actor.PanicError
				require.ErrorAs(t, r.Err, &pe)
				assert.NotEmpty(t, pe.Stack)
			}
			c.WaitSocketClosed()
			assert.Equal(t, 1, c.TerminateCalls())
		})
	}
}

func TestStopFromOutsideIsShutdown(t *testing.T) {
	c := actortest.New(t, &script{})
	c.System().Root.Stop(c.PID())
	c.ExpectClose(actor.CloseGoingAway)
	r := c.Terminated()
	assert.Equal(t, actor.ReasonShutdown, r.Kind)
}

func TestShutdownMessage(t *testing.T) {
	c := actortest.New(t, &script{})
	c.Send(&actor.Shutdown{Code: actor.CloseServiceRestart, Reason: "restarting"})
	assert.Equal(t, "restarting", c.ExpectClose(actor.CloseServiceRestart))
	c.PeerClose(actor.CloseServiceRestart, "")
	r := c.Terminated()
	assert.Equal(t, actor.ReasonShutdown, r.Kind)
	assert.Equal(t, actor.CloseServiceRestart, r.Code)
}

// A peer that does not answer a ping is dropped with a timeout, not before
// its pong was due.
func TestKeepaliveTimeout(t *testing.T) {
	const interval, pongTimeout = 50 * time.Millisecond, 300 * time.Millisecond
	start := time.Now()
	c := actortest.New(t, &script{}, actortest.WithConnOptions(wsactor.WithKeepalive(interval, pongTimeout)))
	got, err := c.Next()
	require.NoError(t, err)
	assert.Equal(t, actor.PingMessage, got.Frame.Type)
	// No pong: the connection gives up. (Next, not ExpectClose, which
	// would skip pings for as long as they come.)
	got, err = c.Next()
	require.NoError(t, err)
	require.True(t, got.Close, "after an unanswered ping: %v", got)
	assert.Equal(t, actor.CloseGoingAway, got.Code)
	assert.Equal(t, "keepalive timeout", got.Reason)
	assert.GreaterOrEqual(t, time.Since(start), interval+pongTimeout, "closed before the pong was due")
	c.PeerClose(actor.CloseGoingAway, "")
	r := c.Terminated()
	assert.Equal(t, actor.ReasonTimeout, r.Kind)
	assert.ErrorIs(t, r.Err, actor.ErrKeepaliveTimeout)
}

// A peer that answers every ping, with a pong or with any other frame,
// keeps its connection through several pong deadlines. A ping after the
// first goes out only once the deadline of the one before it passed with
// an answer seen, so three pings are two deadlines passed; a message then
// still makes the round trip, with no close frame before it.
func TestKeepaliveKeptAlive(t *testing.T) {
	const interval, pongTimeout = 50 * time.Millisecond, 250 * time.Millisecond
	for _, tc := range []struct {
		name   string
		answer func(c *actortest.Conn, ping int)
	}{
		{"pongs", func(c *actortest.Conn, _ int) { c.Pong("") }},
		{"data", func(c *actortest.Conn, ping int) { c.InText(fmt.Sprint("answer ", ping)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := actortest.New(t, &script{}, actortest.WithConnOptions(wsactor.WithKeepalive(interval, pongTimeout)))
			for ping := 1; ping <= 3; {
				got, err := c.Next()
				require.NoError(t, err)
				require.False(t, got.Close, "closed after %d pings: %v", ping-1, got)
				if got.Frame.Type != actor.PingMessage {
					continue // the echo of a data answer
				}
				tc.answer(c, ping)
				ping++
			}
			c.InText("still open")
			for {
				got, err := c.NextData()
				require.NoError(t, err)
				require.False(t, got.Close, "closed after 3 pings: %v", got)
				if string(got.Frame.Data) == "still open" {
					break
				}
				require.True(t, strings.HasPrefix(string(got.Frame.Data), "answer "), "unexpected %v", got)
			}
		})
	}
}

// A backlog that overflows under the default policy closes with 1013,
// whether the handler's pushes or other actors' messages fill it.
func TestOverflowClosesWith1013(t *testing.T) {
	t.Run("pushes", func(t *testing.T) {
		var errs []error
		c := actortest.New(t, &script{info: func(c *actor.Context, msg any) error {
			for i := range 20 {
				errs = append(errs, c.Push(actor.Text(fmt.Sprint(i))))
			}
			return nil
		}}, actortest.WithConnOptions(wsactor.WithOutboundLimit(8, 1<<20), wsactor.WithCloseTimeout(100*time.Millisecond)))
		c.StallWrites()
		c.Send("go")
		r := c.Terminated()
		assert.Equal(t, actor.ReasonError, r.Kind)
		assert.Equal(t, actor.CloseTryAgainLater, r.Code)
		assert.ErrorIs(t, r.Err, actor.ErrOutboxFull)
		require.Len(t, errs, 20)
		for i, err := range errs[:8] {
			assert.NoError(t, err, "push %d fits", i)
		}
		assert.ErrorIs(t, errs[8], actor.ErrOutboxFull, "the ninth push overflows")
		for i, err := range errs[9:] {
			assert.ErrorIs(t, err, actor.ErrClosed, "push %d after the close", i+9)
		}
	})
	t.Run("messages", func(t *testing.T) {
		var handled atomic.Int64
		c := actortest.New(t, &script{info: func(c *actor.Context, msg any) error {
			handled.Add(1)
			return c.Push(actor.Text(msg.(string)))
		}}, actortest.WithConnOptions(wsactor.WithOutboundLimit(8, 1<<20), wsactor.WithCloseTimeout(100*time.Millisecond)))
		c.StallWrites()
		for i := range 1000 {
			c.Send(fmt.Sprint(i))
		}
		r := c.Terminated()
		assert.Equal(t, actor.ReasonError, r.Kind)
		assert.Equal(t, actor.CloseTryAgainLater, r.Code)
		assert.ErrorIs(t, r.Err, actor.ErrOutboxFull)
		assert.Less(t, handled.Load(), int64(1000), "what overflowed was dropped, not handled")
	})
}

func TestOverflowDropPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy wsactor.OverflowPolicy
		want   []string
	}{
		{wsactor.OverflowDropNewest, []string{"0", "1", "2", "3"}},
		{wsactor.OverflowDropOldest, []string{"6", "7", "8", "9"}},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			var errs []error
			c := actortest.New(t, &script{info: func(c *actor.Context, msg any) error {
				// All ten are queued within one callback, before the writer
				// runs: four fit.
				for i := range 10 {
					errs = append(errs, c.Push(actor.Text(fmt.Sprint(i))))
				}
				return nil
			}}, actortest.WithConnOptions(wsactor.WithOutboundLimit(4, 1<<20), wsactor.WithOverflowPolicy(tc.policy)))
			c.StallWrites()
			c.Send("fill")
			c.ResumeWrites()
			for _, w := range tc.want {
				c.ExpectText(w)
			}
			c.InText("end") // echoed: nothing else was queued before it
			c.ExpectText("end")
			failed := 0
			for _, err := range errs {
				if err != nil {
					assert.ErrorIs(t, err, actor.ErrOutboxFull)
					failed++
				}
			}
			if tc.policy == wsactor.OverflowDropNewest {
				assert.Equal(t, 6, failed)
			} else {
				assert.Equal(t, 0, failed)
			}
		})
	}
}

func TestSendAfterAndCancel(t *testing.T) {
	c := actortest.New(t, &script{
		init: func(c *actor.Context) error {
			cancel := c.SendAfter(time.Hour, "never")
			c.SendAfter(10*time.Millisecond, "tick")
			if !cancel() {
				return errors.New("cancel reported nothing pending")
			}
			return nil
		},
		info: func(c *actor.Context, msg any) error { return c.Push(actor.Text(msg.(string))) },
	})
	c.ExpectText("tick")
}

func TestTerminatedWatch(t *testing.T) {
	other := protoactor.PropsFromFunc(func(protoactor.Context) {})
	c := actortest.New(t, &script{
		init: func(c *actor.Context) error {
			pid := c.Actor().Spawn(other)
			c.Watch(pid)
			c.Actor().Stop(pid)
			return nil
		},
		info: func(c *actor.Context, msg any) error {
			if _, ok := msg.(*protoactor.Terminated); ok {
				return c.Push(actor.Text("child gone"))
			}
			return nil
		},
	})
	c.ExpectText("child gone")
}

func TestCloseReasonTruncatedToFrame(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	c := actortest.New(t, &script{init: func(*actor.Context) error { return actor.Stop(4000, long) }})
	got := c.ExpectClose(4000)
	assert.LessOrEqual(t, len(got), 123)
	assert.True(t, strings.HasPrefix(long, got))
}

func TestUnsendableStopCodeIsAFailure(t *testing.T) {
	c := actortest.New(t, &script{init: func(*actor.Context) error { return actor.Stop(actor.CloseAbnormal, "") }})
	c.ExpectClose(actor.CloseInternalError)
	assert.Equal(t, actor.ReasonError, c.Terminated().Kind)
}
