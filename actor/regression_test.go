package actor_test

import (
	"errors"
	"fmt"
	"testing"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"

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
	}}, actortest.WithConnOptions(actor.WithOutboundLimit(10, 10), actor.WithOverflowPolicy(actor.OverflowDropOldest)))
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
