// Package actor is what a websocket connection's behaviour is written
// against: the [Handler] contract (and [ClientHandler] for dialled
// connections), the [Context] its callbacks act through, frames, close
// codes and the [Reason] a connection ended with. Package wsactor runs
// handlers as proto.actor actors, one per connection, that map socket
// events and actor messages to these callbacks.
//
// # The callbacks
//
//	Connect(h)            before the upgrade (server): authenticate, pick a subprotocol; Reject(status, msg) refuses
//	Init(c)               the actor started with a live socket
//	HandleIn(c, frame)    one whole text or binary message from the peer; text is valid UTF-8
//	HandleInfo(c, msg)    any message another actor sent to the connection's PID
//	HandleControl(c, f)   a ping or pong from the peer (pongs to pings are already sent)
//	Terminate(c, reason)  exactly once, when the connection has ended
//
// A callback returns nil to go on, [Stop](code, reason) to close with that
// code, or another error to fail: the supervisor stops the actor and the
// socket closes with 1011. A panic is a failure of that connection only.
//
// # How a connection runs
//
// Each connection has one reader goroutine, which reads whole messages
// from the socket and posts them to the actor's mailbox. When the
// mailbox is idle the reader runs the actor on its own stack, so a message
// from the peer costs no goroutine switch. The actor never writes to the
// socket inside Receive: [Context.Push] queues a frame, and the goroutine
// that has just drained the mailbox writes the queue after marking the
// mailbox idle; during a long run of messages, frames already pushed are
// handed to a writer goroutine between two messages, so writing keeps pace
// with the actor. A peer that reads slowly therefore never blocks the actor
// or the actors sending to it. What waits for the peer, queued frames and
// unhandled messages from other actors, is bounded in bytes
// (wsactor.WithOutboundLimit); a full backlog closes the connection with
// 1013 unless another overflow policy is chosen (wsactor.WithOverflowPolicy).
//
// Closing follows RFC 6455: the close frame goes out after the frames
// already queued, nothing pushed later is sent, the peer's close is awaited
// up to the close timeout, then the socket is closed and Terminate runs with
// a [Reason]: Normal, Remote(code, text), Timeout, Shutdown or Error.
//
// # Example
//
//	type Echo struct{ actor.BaseHandler }
//
//	func (Echo) HandleIn(c *actor.Context, f actor.Frame) error { return c.Push(f) }
//
// Serve it with wsactor.NewServer, or test it with actortest.New.
package actor
