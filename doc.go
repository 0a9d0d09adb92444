// Package protows runs every websocket connection, server side or client
// side, as a supervised [proto.actor] actor.
//
// A connection's actor turns socket events (a message, a ping or pong, the
// peer's close, a network error) and messages from other actors into calls
// on a handler, in the manner of Elixir's WebSock behaviour and Cowboy's
// websocket handlers. A handler is a plain Go value holding the
// connection's state; each callback returns nil to go on, a close error to
// close with a code, or an error that fails the actor, which its supervisor
// then handles.
//
// The packages:
//
//   - [github.com/protows/protows/actor]: what a handler is written
//     against: the [github.com/protows/protows/actor.Handler] contract,
//     [github.com/protows/protows/actor.Context], frames, close
//     codes and reasons. It depends on no websocket library, and
//     [github.com/protows/protows/actor/actortest] drives a handler in
//     memory for unit tests.
//   - [github.com/protows/protows/wsactor]: the server, an http.Handler that
//     authenticates the handshake, upgrades with gorilla/websocket and spawns
//     one actor per connection under a per-server supervisor; and clients,
//     dialled connections that reconnect under a supervision policy.
//   - [github.com/protows/protows/supervision]: restart policies (capped
//     exponential backoff with full jitter, stable-period reset, budget,
//     close-code-aware retries) as proto.actor supervisor strategies.
//   - [github.com/protows/protows/registry]: unique names and groups, on one
//     node or across a proto.actor cluster.
//
// proto.actor's own package is also called actor; this module's code and
// examples import it as protoactor:
//
//	import protoactor "github.com/asynkron/protoactor-go/actor"
//
// [proto.actor]: https://github.com/asynkron/protoactor-go
package protows
