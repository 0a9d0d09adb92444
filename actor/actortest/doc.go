// Package actortest runs an [actor.Handler] as a real connection actor
// over an in-memory socket, so handlers can be unit-tested without a
// network: the test plays the peer, sending frames in and expecting frames
// and a close out.
//
//	func TestGreeter(t *testing.T) {
//		c := actortest.New(t, &Greeter{})
//		c.InText("bob")
//		c.ExpectText("hello, bob")
//		c.PeerClose(actor.CloseNormal, "")
//		c.ExpectClose(actor.CloseNormal)
//		if r := c.Terminated(); r.Kind != actor.ReasonRemote {
//			t.Fatalf("terminated with %v", r)
//		}
//	}
//
// The actor runs in a proto.actor system of its own (or one given with
// [WithSystem]) under the same supervisor strategy as on a server, so
// failures, timers, HandleInfo and Terminate behave as in production.
// Writes can be stalled ([Conn.StallWrites]) to test a slow peer.
package actortest
