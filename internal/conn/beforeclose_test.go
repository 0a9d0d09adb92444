package conn_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/conn"
)

// deliveryTransport is a stepTransport that reports each frame once the
// reader's deliver has returned with it (run, or queued for the actor).
type deliveryTransport struct {
	*stepTransport
	delivered chan string
}

func (d *deliveryTransport) ReadLoop(deliver func(actor.Frame), drain func()) error {
	return d.stepTransport.ReadLoop(func(f actor.Frame) {
		deliver(f)
		d.delivered <- string(f.Data)
	}, drain)
}

// The reader queued a frame while the actor was busy elsewhere; the actor
// has taken it from the mailbox (so it no longer holds a place in the
// inbound window) and is still handling it when the next frame breaks the
// protocol. beforeClose must wait for that handler too: the reply to the
// frame goes out before the transport's own close, as it does for a frame
// still waiting in the mailbox (TestRepliesToQueuedFramesBeforeTheTransportCloses).
func TestReplyToFrameBeingHandledBeforeTheTransportCloses(t *testing.T) {
	busy, releaseBusy := make(chan struct{}), make(chan struct{})
	handling, releaseHandler := make(chan struct{}), make(chan struct{})
	var busyOnce, handlerOnce sync.Once
	h := busyScript(busy, releaseBusy)
	h.in = func(c *actor.Context, f actor.Frame) error {
		close(handling)
		select {
		case <-releaseHandler:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("never released")
		}
		return c.Push(f)
	}
	tr := &deliveryTransport{stepTransport: newStepTransport(), delivered: make(chan string, 16)}
	_, sup := quietSystem(t)
	cfg, err := conn.NewConfig()
	require.NoError(t, err)
	_, err = sup.Spawn(cfg.Props(h, tr))
	require.NoError(t, err)
	t.Cleanup(func() {
		busyOnce.Do(func() { close(releaseBusy) })
		handlerOnce.Do(func() { close(releaseHandler) })
	})
	select {
	case <-busy:
	case <-time.After(5 * time.Second):
		t.Fatal("the actor did not get busy")
	}
	tr.step(t, readStep{frame: actor.Text("a")})
	select {
	case <-tr.delivered: // queued: the actor is busy
	case <-time.After(5 * time.Second):
		t.Fatal("the reader did not deliver the frame")
	}
	busyOnce.Do(func() { close(releaseBusy) })
	select {
	case <-handling: // the actor has taken "a" from the mailbox
	case <-time.After(5 * time.Second):
		t.Fatal("the actor did not get to the queued frame")
	}
	tr.step(t, readStep{protocolError: true, end: &actor.ProtocolError{Code: actor.CloseProtocolError}})
	select {
	case <-tr.draining:
	case <-time.After(5 * time.Second):
		t.Fatal("the transport did not drain")
	}
	// Nothing may be written while "a" is being handled: its reply comes
	// first. (A window, not a synchronisation: a slow reader only lets the
	// bug go unseen.)
	select {
	case w := <-tr.wrote:
		t.Fatalf("%q written while the frame before the protocol error was still being handled", w)
	case <-time.After(200 * time.Millisecond):
	}
	handlerOnce.Do(func() { close(releaseHandler) })
	tr.expectWrite(t, "text a")
	tr.expectWrite(t, "own close")
}
