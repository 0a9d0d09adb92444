package actor_test

import (
	"errors"
	"testing"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/actor/actortest"
)

// noDirectory calls every registry method of its context on a connection
// without a registry and pushes the name of each that does not return
// ErrNoDirectory, then "done".
type noDirectory struct{ actor.BaseHandler }

func (noDirectory) HandleIn(c *actor.Context, f actor.Frame) error {
	_, lookupErr := c.Lookup("alice")
	_, membersErr := c.Members("room")
	for name, err := range map[string]error{
		"Register":    c.Register("alice"),
		"Unregister":  c.Unregister("alice"),
		"Join":        c.Join("room"),
		"Leave":       c.Leave("room"),
		"SendTo":      c.SendTo("alice", f),
		"Publish":     c.Publish("room", f),
		"PublishFrom": c.PublishFrom("room", f),
		"Lookup":      lookupErr,
		"Members":     membersErr,
	} {
		if !errors.Is(err, actor.ErrNoDirectory) {
			if err := c.Push(actor.Text(name)); err != nil {
				return err
			}
		}
	}
	return c.Push(actor.Text("done"))
}

func TestContextWithoutDirectory(t *testing.T) {
	c := actortest.New(t, noDirectory{})
	c.InText("hi")
	c.ExpectText("done")
}
