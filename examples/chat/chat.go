package main

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"unicode/utf8"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry"
)

// in is what a browser sends.
type in struct {
	To   string `json:"to,omitempty"`
	Text string `json:"text"`
}

// out is what a browser receives.
type out struct {
	Presence *presence `json:"presence,omitempty"`
	Joined   string    `json:"joined,omitempty"`
	Left     string    `json:"left,omitempty"`
	From     string    `json:"from,omitempty"`
	Room     string    `json:"room,omitempty"`
	To       string    `json:"to,omitempty"`
	Text     string    `json:"text,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// presence is the room as a connection first sees it: every name in it,
// its own included, sorted.
type presence struct {
	Room    string   `json:"room"`
	Members []string `json:"members"`
}

func frame(o out) actor.Frame {
	b, _ := json.Marshal(o)
	return actor.Frame{Type: actor.TextMessage, Data: b}
}

// Chatter is one chat connection: registered under its name, a member of
// its room, wherever in the cluster the others are, and told who is in it.
type Chatter struct {
	actor.BaseHandler
	reg        registry.Registry
	name, room string
	// members is the room's presence, name -> entries, from the
	// subscription's state on; nil until the state has arrived.
	members map[string][]actor.Presence
	// early holds the frames due to the browser before the room's state
	// arrived, in order: the presence message goes first.
	early []actor.Frame
}

func (c *Chatter) group() string { return "room:" + c.room }

func validLabel(s string) bool { return s != "" && utf8.RuneCountInString(s) <= 32 }

// Connect checks the name and room, and refuses a name already in use with
// 409 Conflict.
func (c *Chatter) Connect(h *actor.Handshake) error {
	q := h.Request.URL.Query()
	c.name, c.room = q.Get("name"), q.Get("room")
	if !validLabel(c.name) || !validLabel(c.room) {
		return actor.Reject(http.StatusBadRequest, "name and room are required, 32 characters at most")
	}
	if _, err := c.reg.Lookup(h.Context(), c.name); err == nil {
		return actor.Reject(http.StatusConflict, "name taken: "+c.name)
	} else if !errors.Is(err, registry.ErrNotFound) {
		return actor.Reject(http.StatusServiceUnavailable, "the registry cannot be reached now; try again")
	}
	return nil
}

// Init takes the name (two handshakes racing for it: the second loses
// here, with close code 4009), joins the room's presence under the name and
// subscribes to it. In a cluster, two members can give the name out at
// once; when they hear of each other the registry keeps one and closes the
// other with 4009 too.
//
// Tracking before subscribing puts this connection in the state the
// subscription starts with, so the browser's first message lists it. The
// registry sends that state before SubscribePresence returns, but a room
// message published between Track and SubscribePresence, a direct message
// sent after Register, or an answer to what the browser sent at once can
// come before it in the mailbox: push holds them until the state is out.
func (c *Chatter) Init(ctx *actor.Context) error {
	if err := ctx.Register(c.name); err != nil {
		if errors.Is(err, registry.ErrNameTaken) {
			return actor.Stop(4009, "name taken: "+c.name)
		}
		return actor.Stop(1013, "the registry is unavailable; try again")
	}
	if err := ctx.Track(c.group(), c.name, nil); err != nil {
		return actor.Stop(1013, "the registry is unavailable; try again")
	}
	if err := ctx.SubscribePresence(c.group()); err != nil {
		return actor.Stop(1013, "the registry is unavailable; try again")
	}
	return nil
}

// push sends f to the browser, or keeps it for after the presence message
// while the room's state has not arrived.
func (c *Chatter) push(ctx *actor.Context, f actor.Frame) error {
	if c.members == nil {
		c.early = append(c.early, f)
		return nil
	}
	return ctx.Push(f)
}

// HandleIn routes a message to the room, or to one user.
func (c *Chatter) HandleIn(ctx *actor.Context, f actor.Frame) error {
	var m in
	if err := json.Unmarshal(f.Data, &m); err != nil || m.Text == "" {
		return c.push(ctx, frame(out{Error: `send {"text":"…"} or {"to":"name","text":"…"}`}))
	}
	if m.To != "" {
		err := ctx.SendTo(m.To, frame(out{From: c.name, To: m.To, Text: m.Text}))
		switch {
		case errors.Is(err, registry.ErrNotFound):
			return c.push(ctx, frame(out{Error: "no such user: " + m.To}))
		case err != nil:
			// The registry failed, not this user: say so, keep the connection.
			return c.push(ctx, frame(out{Error: "not sent: " + err.Error()}))
		}
		return nil
	}
	if err := ctx.Publish("room:"+c.room, frame(out{From: c.name, Room: c.room, Text: m.Text})); err != nil {
		return c.push(ctx, frame(out{Error: "not sent: " + err.Error()}))
	}
	return nil
}

// HandleInfo passes on what the room and other users send, and who comes
// and goes.
func (c *Chatter) HandleInfo(ctx *actor.Context, msg any) error {
	switch m := msg.(type) {
	case actor.Frame:
		return c.push(ctx, m)
	case *actor.PresenceState:
		if m.Group != c.group() || c.members != nil {
			return nil
		}
		// The state's map is this connection's own: diffs update it.
		c.members = m.Members
		names := slices.Sorted(maps.Keys(m.Members))
		if err := ctx.Push(frame(out{Presence: &presence{Room: c.room, Members: names}})); err != nil {
			return err
		}
		early := c.early
		c.early = nil
		for _, f := range early {
			if err := ctx.Push(f); err != nil {
				return err
			}
		}
	case *actor.PresenceDiff:
		if m.Group != c.group() || c.members == nil {
			return nil
		}
		joined, left := m.Apply(c.members)
		for _, name := range left {
			if err := ctx.Push(frame(out{Left: name, Room: c.room})); err != nil {
				return err
			}
		}
		for _, name := range joined {
			if err := ctx.Push(frame(out{Joined: name, Room: c.room})); err != nil {
				return err
			}
		}
	}
	return nil
}
