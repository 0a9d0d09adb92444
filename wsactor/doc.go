// Package wsactor serves websocket connections as proto.actor actors, with
// gorilla/websocket underneath.
//
// [NewServer] returns an http.Handler. For each request it checks the
// upgrade, the origin and the handler's [actor.Connector] (which may refuse
// with any HTTP status), upgrades, and spawns the connection actor as a
// child of the server's supervisor; then ServeHTTP returns and the
// connection lives in its actor (one reader goroutine, no writer goroutine
// while nothing is queued).
//
//	sys := protoactor.NewActorSystem()
//	srv, err := wsactor.NewServer(sys, func() actor.Handler { return &Echo{} },
//		wsactor.WithReadLimit(64<<10),
//		wsactor.WithKeepalive(30*time.Second, 10*time.Second))
//	if err != nil { ... }
//	http.Handle("GET /ws", srv)
//
// Every option has a safe default: same-origin handshakes only, 1 MiB read
// limit, 10 s write and handshake timeouts, pings every 30 s, a 5 s close
// handshake, 16 MiB of backlog per connection (frames queued for the peer
// and unhandled messages from other actors) that closes with 1013 when
// full. [Server.Shutdown] closes every connection with 1001
// (1012 with [Server.ShutdownForRestart]) and waits for them; call it before
// http.Server.Shutdown, which does not track upgraded connections.
//
// [SpawnClient] dials a server and runs an [actor.ClientHandler] in a
// client connection actor. When the socket drops, the actor's supervisor
// applies a supervision.Policy ([WithReconnect]): the actor is restarted
// after a capped, jittered backoff and dials again, with the same PID and
// the same handler value, or it is stopped. A dial the server refuses is
// an [actor.DialError] with its status, header and the start of its body;
// by default a 4xx other than 408 and 429 stops the client.
//
//	client, err := wsactor.SpawnClient(sys, "wss://example.com/feed", &Ticker{},
//		wsactor.WithHoldWhileDisconnected(100))
//	if err != nil { ... }
//	err = client.WaitConnected(ctx) // errors.As(err, &dialErr) when the server said no for good
//	err = client.Send(actor.Text("hello")) // errors.Is(err, actor.ErrDisconnected) when nothing can hold it
package wsactor
