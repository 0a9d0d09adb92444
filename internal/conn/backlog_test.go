package conn_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/protows/protows/wsactor"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/actor/actortest"
)

// fillBacklog pushes frames until the backlog refuses one.
func fillBacklog(c *actor.Context) error {
	for i := 0; ; i++ {
		if err := c.Push(actor.Text(fmt.Sprint(i))); err != nil {
			return err
		}
	}
}

// The actor's own timers and proto.actor's Poison are not messages that
// wait on the peer: a full backlog refuses neither. The backlog is filled
// twice: once the writer (stalled) has taken its first frame out, the
// second fill takes that place too.
func TestFullBacklogRefusesNoTimerOrPoison(t *testing.T) {
	limit := actortest.WithConnOptions(wsactor.WithOutboundLimit(0, 8*64), wsactor.WithOverflowPolicy(wsactor.OverflowDropNewest))
	t.Run("SendAfter", func(t *testing.T) {
		ticks := make(chan struct{}, 2)
		c := actortest.New(t, &script{info: func(c *actor.Context, msg any) error {
			switch msg {
			case "fill":
				if err := fillBacklog(c); err != actor.ErrOutboxFull {
					return err
				}
				c.SendAfter(time.Millisecond, "tick")
			case "tick":
				ticks <- struct{}{}
			}
			return nil
		}}, limit)
		c.StallWrites()
		defer c.ResumeWrites()
		c.Send("fill")
		c.Send("fill")
		for range 2 {
			select {
			case <-ticks:
			case <-time.After(5 * time.Second):
				t.Fatal("a timer's message was refused by the full backlog")
			}
		}
	})
	t.Run("Poison", func(t *testing.T) {
		filled := make(chan error, 2)
		c := actortest.New(t, &script{info: func(c *actor.Context, msg any) error {
			filled <- fillBacklog(c)
			return nil
		}}, limit)
		c.StallWrites()
		defer c.ResumeWrites()
		c.Send("fill")
		c.Send("fill")
		for range 2 {
			select {
			case err := <-filled:
				require.ErrorIs(t, err, actor.ErrOutboxFull)
			case <-time.After(5 * time.Second):
				t.Fatal("the backlog did not fill")
			}
		}
		c.System().Root.Poison(c.PID())
		r := c.Terminated()
		assert.Equal(t, actor.ReasonShutdown, r.Kind, "stopped by the poison pill, not by an overflow: %v", r)
	})
}
