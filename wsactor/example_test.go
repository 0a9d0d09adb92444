package wsactor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// Shout answers every text message in capitals.
type Shout struct{ actor.BaseHandler }

func (Shout) HandleIn(c *actor.Context, f actor.Frame) error {
	return c.Push(actor.Text(strings.ToUpper(string(f.Data))))
}

func quietSystem() *protoactor.ActorSystem {
	return protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

func ExampleNewServer() {
	sys := quietSystem()
	defer sys.Shutdown()
	srv, err := wsactor.NewServer(sys, func() actor.Handler { return Shout{} })
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_ = c.WriteMessage(websocket.TextMessage, []byte("hello"))
	_, msg, _ := c.ReadMessage()
	fmt.Println(string(msg))
	// Output: HELLO
}

// Members only lets in requests that carry the right token.
type Members struct {
	actor.BaseHandler
	user string
}

func (m *Members) Connect(h *actor.Handshake) error {
	if h.Request.Header.Get("Authorization") != "Bearer s3cret" {
		return actor.Reject(http.StatusUnauthorized, "who are you?")
	}
	m.user = h.Request.URL.Query().Get("user")
	return nil
}

func (m *Members) Init(c *actor.Context) error { return c.Push(actor.Text("welcome, " + m.user)) }

func ExampleServer_connect() {
	sys := quietSystem()
	defer sys.Shutdown()
	srv, _ := wsactor.NewServer(sys, func() actor.Handler { return &Members{} })
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "?user=ada"

	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	fmt.Println(err, resp.StatusCode)

	c, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer s3cret"}})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_, msg, _ := c.ReadMessage()
	fmt.Println(string(msg))
	// Output:
	// websocket: bad handshake 401
	// welcome, ada
}

func ExampleServer_Shutdown() {
	sys := quietSystem()
	defer sys.Shutdown()
	srv, _ := wsactor.NewServer(sys, func() actor.Handler { return Shout{} })
	hs := httptest.NewServer(srv)
	defer hs.Close()

	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	closed := make(chan error, 1)
	go func() {
		// The client reads, so it answers the close handshake.
		_, _, err := c.ReadMessage()
		closed <- err
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(srv.Shutdown(ctx))
	fmt.Println(<-closed)
	// Output:
	// <nil>
	// websocket: close 1001 (going away): server shutting down
}

func ExampleClient_WaitConnected() {
	sys := quietSystem()
	defer sys.Shutdown()
	srv, _ := wsactor.NewServer(sys, func() actor.Handler { return &Members{} })
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "?user=ada"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// Without the token the server answers 401: the client ends at once.
	c, _ := wsactor.SpawnClient(sys, url, actor.BaseHandler{})
	err := c.WaitConnected(ctx)
	var refused *actor.DialError
	if errors.As(err, &refused) {
		fmt.Println(refused.StatusCode, strings.TrimSpace(string(refused.Body)))
		fmt.Println(refused)
	}

	c, _ = wsactor.SpawnClient(sys, url, actor.BaseHandler{},
		wsactor.WithHeader(http.Header{"Authorization": {"Bearer s3cret"}}))
	fmt.Println(c.WaitConnected(ctx))
	_ = c.Close(ctx)
	// Output:
	// 401 who are you?
	// protows: dial refused with HTTP 401 Unauthorized: "who are you?"
	// <nil>
}
