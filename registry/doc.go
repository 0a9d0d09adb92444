// Package registry gives actors (websocket connections above all) unique
// names and groups, on one node ([Local]) or across a proto.actor cluster
// ([Cluster]), behind one interface ([Registry]).
//
// Any actor can send to a name or publish to a group without knowing where
// its members run; a send to a name nobody holds is an error
// ([ErrNotFound]), not silence. Names and memberships are released when
// their actors stop, and in a cluster when their member leaves. A registry
// chooses what happens when a name is taken: [Reject] the newcomer, or
// [Replace] the holder, which is sent an *actor.CloseRequest with a close
// code.
//
// Connections use it through their context once the server has it
// (wsactor.WithRegistry):
//
//	func (h *Chatter) Init(c *actor.Context) error {
//		if err := c.Register(h.name); errors.Is(err, registry.ErrNameTaken) {
//			return actor.Stop(4009, "name taken")
//		} else if err != nil {
//			return err // the registry is unreachable or stopped: 1011
//		}
//		return c.Join("room:" + h.room)
//	}
//
//	func (h *Chatter) HandleIn(c *actor.Context, f actor.Frame) error {
//		return c.Publish("room:"+h.room, f) // every member, on every node
//	}
//
// Presence (Phoenix.Presence's model) lists who is in a group: [Registry]
// Track joins a group under a key, such as a user name, with a small meta;
// Presence lists key -> entries from the local copy; SubscribePresence
// sends an actor an *actor.PresenceState and then batched
// *actor.PresenceDiff messages, with no gap and no duplicate, covering
// every member of a cluster (a dead member's entries arrive as leaves):
//
//	func (h *Chatter) Init(c *actor.Context) error {
//		if err := c.Track("room:"+h.room, h.name, nil); err != nil {
//			return err
//		}
//		return c.SubscribePresence("room:" + h.room) // to HandleInfo
//	}
//
// In a cluster, messages cross nodes as protobuf: an actor.Frame, an
// *actor.CloseRequest, or the user's own protobuf messages (carried as Any
// and delivered as themselves; a type the receiving node does not know
// becomes an [UnknownMessage] instead of crashing it). Other values are
// refused with [ErrNotSerializable]. The envelope is defined in
// registrypb/registry.proto; `go generate ./registry/registrypb` rebuilds
// its Go code.
package registry
