package actor

import (
	"context"
	"errors"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/internal/actorhook"
)

// Directory is the registry a connection's [Context] reaches for names and
// groups; package registry implements it, locally or across a cluster.
type Directory interface {
	Register(ctx context.Context, name string, pid *protoactor.PID) error
	Unregister(ctx context.Context, name string, pid *protoactor.PID) error
	SendTo(ctx context.Context, name string, msg any) error
	Join(ctx context.Context, group string, pid *protoactor.PID) error
	Leave(ctx context.Context, group string, pid *protoactor.PID) error
	Publish(ctx context.Context, group string, msg any) error
	PublishFrom(ctx context.Context, group string, from *protoactor.PID, msg any) error
	Lookup(ctx context.Context, name string) (*protoactor.PID, error)
	Members(ctx context.Context, group string) ([]*protoactor.PID, error)
	Track(ctx context.Context, group, key string, pid *protoactor.PID, meta []byte) error
	Presence(ctx context.Context, group string) (map[string][]Presence, error)
	SubscribePresence(ctx context.Context, group string, pid *protoactor.PID) error
	UnsubscribePresence(ctx context.Context, group string, pid *protoactor.PID) error
}

// ErrNoDirectory is returned by the Context's registry methods when the
// connection has none (see wsactor.WithRegistry).
var ErrNoDirectory = errors.New("protows: no registry configured for this connection")

// CloseRequest asks a connection to close with Code and Reason, as if its
// handler had called Close (ReasonNormal). A registry sends it to the
// previous holder of a name it gives to a newcomer.
type CloseRequest struct {
	Code   CloseCode
	Reason string
}

func (c *Context) dir() (Directory, context.Context, context.CancelFunc, error) {
	d, timeout := c.rt.Directory()
	if d == nil {
		return nil, nil, nil, ErrNoDirectory
	}
	ctx, cancel := context.WithTimeout(actorhook.WithStopNotice(context.Background(), c.rt.StopNotice()), timeout)
	return d, ctx, cancel, nil
}

// Register gives this connection a unique name in the registry; it is
// released when the connection ends.
func (c *Context) Register(name string) error {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return err
	}
	defer cancel()
	return d.Register(ctx, name, c.rt.Self())
}

// Unregister releases a name this connection holds.
func (c *Context) Unregister(name string) error {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return err
	}
	defer cancel()
	return d.Unregister(ctx, name, c.rt.Self())
}

// Join adds this connection to group; it leaves when it ends.
func (c *Context) Join(group string) error {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return err
	}
	defer cancel()
	return d.Join(ctx, group, c.rt.Self())
}

// Leave removes this connection from group.
func (c *Context) Leave(group string) error {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return err
	}
	defer cancel()
	return d.Leave(ctx, group, c.rt.Self())
}

// Publish sends msg to every member of group, this connection included if
// it is one. A Frame published reaches each member's HandleInfo as a Frame,
// prepared for sharing when it goes to more than one (see [Prepare]): a
// handler that pushes it writes the encoding made once for all.
func (c *Context) Publish(group string, msg any) error {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return err
	}
	defer cancel()
	return d.Publish(ctx, group, msg)
}

// PublishFrom sends msg to every member of group except this connection,
// on every node (Phoenix's broadcast_from): what one member of a room says
// reaches the others.
func (c *Context) PublishFrom(group string, msg any) error {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return err
	}
	defer cancel()
	return d.PublishFrom(ctx, group, c.rt.Self(), msg)
}

// Lookup returns the actor registered as name, wherever it runs; an
// unknown name is an error (registry.ErrNotFound).
func (c *Context) Lookup(name string) (*protoactor.PID, error) {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return nil, err
	}
	defer cancel()
	return d.Lookup(ctx, name)
}

// Members returns the members of group, on every node, in no particular
// order.
func (c *Context) Members(group string) ([]*protoactor.PID, error) {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return nil, err
	}
	defer cancel()
	return d.Members(ctx, group)
}

// SendTo sends msg to the actor registered as name, wherever it runs; an
// unknown name is an error (registry.ErrNotFound).
func (c *Context) SendTo(name string, msg any) error {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return err
	}
	defer cancel()
	return d.SendTo(ctx, name, msg)
}

// Track joins group as Join does, and makes this connection part of the
// group's presence under key (a user name, say) with meta, a small value
// such as JSON or protobuf bytes. Tracking again changes the key or meta;
// Leave, or the end of the connection, removes it. See
// [Context.SubscribePresence].
func (c *Context) Track(group, key string, meta []byte) error {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return err
	}
	defer cancel()
	return d.Track(ctx, group, key, c.rt.Self(), meta)
}

// Presence returns the presence of group, key -> entries, from this node's
// copy of the registry: every node's tracked members, without a request
// over the network.
func (c *Context) Presence(group string) (map[string][]Presence, error) {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return nil, err
	}
	defer cancel()
	return d.Presence(ctx, group)
}

// SubscribePresence has group's presence sent to this connection's
// HandleInfo: first a *[PresenceState] with everything tracked now, then a
// *[PresenceDiff] for each batch of changes on any node, with no gap and
// no duplicate between them. The subscription ends with the connection,
// or with UnsubscribePresence.
func (c *Context) SubscribePresence(group string) error {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return err
	}
	defer cancel()
	return d.SubscribePresence(ctx, group, c.rt.Self())
}

// UnsubscribePresence ends this connection's subscription to group's
// presence: nothing more is sent, though a diff sent before it may still
// wait in the mailbox.
func (c *Context) UnsubscribePresence(group string) error {
	d, ctx, cancel, err := c.dir()
	if err != nil {
		return err
	}
	defer cancel()
	return d.UnsubscribePresence(ctx, group, c.rt.Self())
}
