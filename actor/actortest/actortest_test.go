package actortest_test

import (
	"testing"
	"time"

	"github.com/protows/protows/internal/leaktest"
	"github.com/stretchr/testify/assert"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/actor/actortest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// Greeter greets whoever names themselves.
type Greeter struct{ actor.BaseHandler }

func (Greeter) HandleIn(c *actor.Context, f actor.Frame) error {
	return c.Push(actor.Text("hello, " + string(f.Data)))
}

func TestGreeter(t *testing.T) {
	c := actortest.New(t, &Greeter{})
	c.InText("bob")
	c.ExpectText("hello, bob")
	c.PeerClose(actor.CloseNormal, "")
	c.ExpectClose(actor.CloseNormal)
	if r := c.Terminated(); r.Kind != actor.ReasonRemote {
		t.Fatalf("terminated with %v", r)
	}
}

func TestSubprotocolAndAddress(t *testing.T) {
	var proto, addr string
	c := actortest.New(t, &initProbe{fn: func(c *actor.Context) error {
		proto, addr = c.Subprotocol(), c.RemoteAddr().String()
		return c.Push(actor.Text("ready"))
	}}, actortest.WithSubprotocol("chat.v1"))
	c.ExpectText("ready")
	assert.Equal(t, "chat.v1", proto)
	assert.Equal(t, "actortest", addr)
}

func TestNextDataSkipsControlFrames(t *testing.T) {
	c := actortest.New(t, &Greeter{})
	c.Ping("x")
	c.InText("ann")
	c.ExpectText("hello, ann") // the pong before it is skipped
}

// While writes are stalled the peer gets nothing; once resumed it gets
// what was held, in order, and the connection goes on.
func TestStalledWritesHoldFramesInOrder(t *testing.T) {
	c := actortest.New(t, &Greeter{})
	c.StallWrites()
	c.InText("a")
	c.InText("b")
	c.Timeout = 100 * time.Millisecond
	_, err := c.Next()
	assert.Error(t, err, "a frame reached the peer while writes were stalled")
	c.Timeout = actortest.DefaultTimeout
	c.ResumeWrites()
	c.ExpectText("hello, a")
	c.ExpectText("hello, b")
	c.InText("c")
	c.ExpectText("hello, c")
}

type initProbe struct {
	actor.BaseHandler
	fn func(*actor.Context) error
}

func (p *initProbe) Init(c *actor.Context) error { return p.fn(c) }
