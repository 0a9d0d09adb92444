package actor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// Counter counts messages and stops talking to peers that swear.
type Counter struct {
	actor.BaseHandler
	n int
}

func (h *Counter) HandleIn(c *actor.Context, f actor.Frame) error {
	if strings.Contains(string(f.Data), "darn") {
		return actor.Stop(actor.ClosePolicyViolation, "language")
	}
	h.n++
	return c.Push(actor.Text(fmt.Sprint(h.n)))
}

func ExampleStop() {
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer sys.Shutdown()
	srv, _ := wsactor.NewServer(sys, func() actor.Handler { return &Counter{} })
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	for _, msg := range []string{"hi", "hello", "darn"} {
		_ = c.WriteMessage(websocket.TextMessage, []byte(msg))
		_, reply, err := c.ReadMessage()
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println(string(reply))
	}
	// Output:
	// 1
	// 2
	// websocket: close 1008 (policy violation): language
}

func ExampleCloseStatus() {
	err := fmt.Errorf("handling order: %w", actor.Stop(actor.CloseTryAgainLater, "busy"))
	fmt.Println(actor.CloseStatus(err))
	fmt.Println(actor.CloseStatus(errors.New("other")))
	// Output:
	// 1013 (try again later)
	// 0
}

func ExampleReason_String() {
	r := actor.Reason{Kind: actor.ReasonRemote, Code: actor.CloseGoingAway, Text: "tab closed"}
	fmt.Println(r)
	// Output: remote 1001 (going away) "tab closed"
}
