package actortest_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/actor/actortest"
	"github.com/protows/protows/registry"
)

// Auth lets in users who name themselves, speaking chat.v1 if they offer it.
type Auth struct{ actor.BaseHandler }

func (Auth) Connect(h *actor.Handshake) error {
	user := h.Request.URL.Query().Get("user")
	if user == "" {
		return actor.Reject(http.StatusUnauthorized, "user required")
	}
	h.Header.Set("X-User", user)
	return h.SelectSubprotocol("chat.v1")
}

func ExampleConnect() {
	r := httptest.NewRequest("GET", "/ws?user=bob", nil)
	r.Header.Set("Sec-WebSocket-Protocol", "chat.v1")
	res, err := actortest.Connect(Auth{}, r)
	fmt.Println(res.StatusCode, res.Subprotocol, res.Header.Get("X-User"), err)

	res, err = actortest.Connect(Auth{}, httptest.NewRequest("GET", "/ws", nil))
	var re *actor.RejectError
	if errors.As(err, &re) {
		fmt.Println(res.StatusCode, re.Message)
	}
	// Output:
	// 101 chat.v1 bob <nil>
	// 401 user required
}

// Named registers under its name and passes "hi" on to "alice".
type Named struct {
	actor.BaseHandler
	name string
}

func (n *Named) Init(c *actor.Context) error {
	if err := c.Register(n.name); err != nil {
		return err
	}
	return c.Push(actor.Text("ready"))
}

func (n *Named) HandleIn(c *actor.Context, f actor.Frame) error {
	return c.SendTo("alice", actor.Text(n.name+": "+string(f.Data)))
}

func (n *Named) HandleInfo(c *actor.Context, msg any) error {
	if f, ok := msg.(actor.Frame); ok {
		return c.Push(f)
	}
	return nil
}

func ExampleWithRegistry() {
	// In a test, the body of func TestNamed(t *testing.T).
	runTB(func(t testing.TB) {
		sys := protoactor.NewActorSystem() // one system for the registry and both connections
		t.Cleanup(sys.Shutdown)
		reg, err := registry.NewLocal(sys)
		if err != nil {
			t.Fatalf("registry: %v", err)
		}
		t.Cleanup(reg.Stop)

		alice := actortest.New(t, &Named{name: "alice"}, actortest.WithSystem(sys), actortest.WithRegistry(reg))
		alice.ExpectText("ready") // registered
		bob := actortest.New(t, &Named{name: "bob"}, actortest.WithSystem(sys), actortest.WithRegistry(reg))
		bob.ExpectText("ready")

		bob.InText("hi")
		alice.ExpectText("bob: hi") // or, to look at it:
		bob.InText("bye")
		got, err := alice.NextData()
		if err != nil {
			t.Fatalf("alice: %v", err)
		}
		fmt.Printf("%s\n", got.Frame.Data)
	})
	// Output: bob: bye
}
