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
// Writes can be stalled ([Conn.StallWrites]) to test a slow peer. The peer
// answers the connection's close frame in [Conn.ExpectClose], as a browser
// would, so [Conn.Terminated] follows at once ([WithManualCloseAnswer]
// leaves the answer to the test). Each call that waits gives up after
// [Conn.Timeout].
//
// Connections that share a system and a registry ([WithRegistry]) reach
// each other by name. [Connect] runs a handler's Connect on an
// *http.Request as a wsactor server does and returns the server's answer:
//
//	r := httptest.NewRequest("GET", "/ws", nil)
//	res, err := actortest.Connect(&Shout{}, r)
//	// res.StatusCode == 401, err is the *actor.RejectError
package actortest
