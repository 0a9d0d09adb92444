package wsactor_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/supervision"
	"github.com/protows/protows/wsactor"
)

// refuser is a server handler whose Connect refuses every handshake with
// status, a header and a message, as a protows server's users do.
type refuser struct {
	actor.BaseHandler
	status int
}

func refusal(status int) string { return fmt.Sprintf("refused with %d: go away", status) }

func (r refuser) Connect(*actor.Handshake) error {
	return &actor.RejectError{Status: r.status, Message: refusal(r.status), Header: http.Header{"X-Refused-By": {"test"}}}
}

// refusingServer is a protows server that refuses every handshake with
// status; it counts the handshakes it gets.
func refusingServer(t *testing.T, sys *protoactor.ActorSystem, status int) (string, *atomic.Int32) {
	t.Helper()
	srv, err := wsactor.NewServer(sys, func() actor.Handler { return refuser{status: status} })
	require.NoError(t, err)
	var attempts atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http"), &attempts
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func TestClient4xxIsTerminal(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			sys := newSystem(t)
			ev := decisions(t, sys)
			url, attempts := refusingServer(t, sys, status)
			f := newFeed()
			c := spawnClient(t, sys, url, f) // the default policy

			// WaitConnected is waiting when the client gives up.
			waited := make(chan error, 1)
			go func() { waited <- c.WaitConnected(waitCtx(t)) }()

			r := recv(t, f.disconnect, "disconnect")
			var de *actor.DialError
			require.ErrorAs(t, r.Err, &de)
			assert.Equal(t, status, de.StatusCode)
			assert.Equal(t, "test", de.Header.Get("X-Refused-By"))
			assert.Equal(t, refusal(status)+"\n", string(de.Body))
			assert.Equal(t, fmt.Sprintf("protows: dial refused with HTTP %d %s: %q", status, http.StatusText(status), refusal(status)), de.Error())

			e := recv(t, ev, "decision")
			assert.Equal(t, supervision.Stop, e.Directive)
			assert.Equal(t, "terminal", e.Why)
			assert.Equal(t, 1, e.Attempt)

			end := recv(t, f.terminated, "terminate")
			assert.Equal(t, actor.ReasonError, end.Kind)
			assert.Equal(t, r, end, "the client ends with the refused dial's reason")
			recv(t, c.Done(), "done")
			assert.Equal(t, end, c.Reason())
			assert.Contains(t, c.Reason().String(), refusal(status))
			assert.EqualValues(t, 1, attempts.Load(), "no second dial")

			err := recv(t, waited, "WaitConnected")
			assert.ErrorIs(t, err, actor.ErrClosed)
			require.ErrorAs(t, err, &de)
			assert.Equal(t, status, de.StatusCode)
			assert.Contains(t, err.Error(), refusal(status))
			// And once more, after the end.
			assert.ErrorIs(t, c.WaitConnected(waitCtx(t)), actor.ErrClosed)
			assert.ErrorIs(t, c.Send(actor.Text("late")), actor.ErrClosed)
		})
	}
}

func TestClientRetriesTimeoutsThrottlingAnd5xx(t *testing.T) {
	for _, status := range []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			sys := newSystem(t)
			ev := decisions(t, sys)
			// Refused twice, then upgraded.
			p := newPeerServer(t, func(n int) int {
				if n <= 2 {
					return status
				}
				return 0
			})
			f := newFeed()
			c := spawnClient(t, sys, p.url, f, wsactor.WithReconnect(fastPolicy()))
			for i := 1; i <= 2; i++ {
				var de *actor.DialError
				require.ErrorAs(t, recv(t, f.disconnect, "disconnect").Err, &de)
				assert.Equal(t, status, de.StatusCode)
				assert.Equal(t, "not now\n", string(de.Body))
				e := recv(t, ev, "decision")
				assert.Equal(t, supervision.Restart, e.Directive)
				assert.Equal(t, "backoff", e.Why)
				assert.Equal(t, i, e.Attempt)
			}
			require.NoError(t, c.WaitConnected(waitCtx(t)))
			srv := p.accept(t)
			assert.Equal(t, "subscribe 1", readText(t, srv))
			assert.EqualValues(t, 3, p.attempts.Load())
		})
	}
}

func TestClientHandlerRetriesA401(t *testing.T) {
	sys := newSystem(t)
	ev := decisions(t, sys)
	p := newPeerServer(t, func(n int) int {
		if n <= 2 {
			return http.StatusUnauthorized
		}
		return 0
	})
	f := newFeed()
	// A handler that would refresh its token here, then retry.
	f.decide = func(r actor.Reason) actor.Decision {
		if de := (*actor.DialError)(nil); errors.As(r.Err, &de) && de.StatusCode == http.StatusUnauthorized {
			return actor.ReconnectNow
		}
		return actor.ReconnectByPolicy
	}
	c := spawnClient(t, sys, p.url, f)
	for i := 1; i <= 2; i++ {
		e := recv(t, ev, "decision")
		assert.Equal(t, supervision.Restart, e.Directive)
		assert.Equal(t, "handler", e.Why)
		assert.Equal(t, time.Duration(0), e.Delay)
	}
	require.NoError(t, c.WaitConnected(waitCtx(t)))
	p.accept(t)
	assert.EqualValues(t, 3, p.attempts.Load())
	assert.Len(t, f.disconnect, 2)
}

func TestClientWaitConnected(t *testing.T) {
	t.Run("connects", func(t *testing.T) {
		sys := newSystem(t)
		p := newPeerServer(t, nil)
		c := spawnClient(t, sys, p.url, newFeed())
		require.NoError(t, c.WaitConnected(waitCtx(t)))
		assert.True(t, c.Connected())
		p.accept(t)
		// Connected already: at once, whatever the context.
		done, cancel := context.WithCancel(context.Background())
		cancel()
		assert.NoError(t, c.WaitConnected(done))
	})
	t.Run("waits for the reconnect", func(t *testing.T) {
		sys := newSystem(t)
		p := newPeerServer(t, nil)
		f := newFeed()
		// The handler holds the client between sockets until the test has
		// looked.
		gate := make(chan struct{})
		f.decide = func(actor.Reason) actor.Decision {
			select {
			case <-gate:
			case <-time.After(wait):
			}
			return actor.ReconnectNow
		}
		c := spawnClient(t, sys, p.url, f)
		require.NoError(t, c.WaitConnected(waitCtx(t)))
		recv(t, f.connected, "connect")
		require.NoError(t, p.accept(t).Close()) // the network drops
		recv(t, f.disconnect, "disconnect")
		assert.False(t, c.Connected())
		short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		assert.ErrorIs(t, c.WaitConnected(short), context.DeadlineExceeded, "between sockets")

		waited := make(chan error, 1)
		go func() { waited <- c.WaitConnected(waitCtx(t)) }()
		close(gate)
		require.NoError(t, recv(t, waited, "WaitConnected"))
		p.accept(t)
		recv(t, f.connected, "reconnect")
	})
	t.Run("deadline", func(t *testing.T) {
		sys := newSystem(t)
		p := newPeerServer(t, func(int) int { return http.StatusServiceUnavailable })
		c := spawnClient(t, sys, p.url, newFeed(), wsactor.WithReconnect(fastPolicy()))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		assert.ErrorIs(t, c.WaitConnected(ctx), context.DeadlineExceeded)
		select {
		case <-c.Done():
			t.Fatal("the client ended")
		default:
		}
	})
	t.Run("closed", func(t *testing.T) {
		sys := newSystem(t)
		p := newPeerServer(t, func(int) int { return http.StatusServiceUnavailable })
		c := spawnClient(t, sys, p.url, newFeed(), wsactor.WithReconnect(fastPolicy()))
		require.NoError(t, c.Close(waitCtx(t)))
		err := c.WaitConnected(waitCtx(t))
		assert.ErrorIs(t, err, actor.ErrClosed)
		assert.Contains(t, err.Error(), "client ended")
	})
}
