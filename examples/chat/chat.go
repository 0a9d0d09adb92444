package main

import (
	"encoding/json"
	"errors"
	"net/http"
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
	From  string `json:"from,omitempty"`
	Room  string `json:"room,omitempty"`
	To    string `json:"to,omitempty"`
	Text  string `json:"text,omitempty"`
	Error string `json:"error,omitempty"`
}

func frame(o out) actor.Frame {
	b, _ := json.Marshal(o)
	return actor.Frame{Type: actor.TextMessage, Data: b}
}

// Chatter is one chat connection: registered under its name, a member of
// its room, wherever in the cluster the others are.
type Chatter struct {
	actor.BaseHandler
	reg        registry.Registry
	name, room string
}

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
// here, with close code 4009) and joins the room. In a cluster, two
// members can give the name out at once; when they hear of each other the
// registry keeps one and closes the other with 4009 too.
func (c *Chatter) Init(ctx *actor.Context) error {
	if err := ctx.Register(c.name); err != nil {
		if errors.Is(err, registry.ErrNameTaken) {
			return actor.Stop(4009, "name taken: "+c.name)
		}
		return actor.Stop(1013, "the registry is unavailable; try again")
	}
	if err := ctx.Join("room:" + c.room); err != nil {
		return actor.Stop(1013, "the registry is unavailable; try again")
	}
	return nil
}

// HandleIn routes a message to the room, or to one user.
func (c *Chatter) HandleIn(ctx *actor.Context, f actor.Frame) error {
	var m in
	if err := json.Unmarshal(f.Data, &m); err != nil || m.Text == "" {
		return ctx.Push(frame(out{Error: `send {"text":"…"} or {"to":"name","text":"…"}`}))
	}
	if m.To != "" {
		err := ctx.SendTo(m.To, frame(out{From: c.name, To: m.To, Text: m.Text}))
		switch {
		case errors.Is(err, registry.ErrNotFound):
			return ctx.Push(frame(out{Error: "no such user: " + m.To}))
		case err != nil:
			// The registry failed, not this user: say so, keep the connection.
			return ctx.Push(frame(out{Error: "not sent: " + err.Error()}))
		}
		return nil
	}
	if err := ctx.Publish("room:"+c.room, frame(out{From: c.name, Room: c.room, Text: m.Text})); err != nil {
		return ctx.Push(frame(out{Error: "not sent: " + err.Error()}))
	}
	return nil
}

// HandleInfo passes on what the room and other users send.
func (c *Chatter) HandleInfo(ctx *actor.Context, msg any) error {
	if f, ok := msg.(actor.Frame); ok {
		return ctx.Push(f)
	}
	return nil
}
