package actor

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/protows/protows/internal/actorhook"
)

func init() {
	actorhook.FrameEncoding = func(f any) *atomic.Value {
		fr := f.(*Frame)
		if e := fr.enc; e != nil && e.of(*fr) {
			return &e.v
		}
		return nil
	}
}

// MessageType is the kind of a websocket frame, with the RFC 6455 opcode as
// its value.
type MessageType uint8

// Message types. Text and binary frames carry application data; ping and
// pong are control frames seen by [Handler.HandleControl].
const (
	TextMessage   MessageType = 1
	BinaryMessage MessageType = 2
	PingMessage   MessageType = 9
	PongMessage   MessageType = 10
)

// String returns "text", "binary", "ping" or "pong".
func (t MessageType) String() string {
	switch t {
	case TextMessage:
		return "text"
	case BinaryMessage:
		return "binary"
	case PingMessage:
		return "ping"
	case PongMessage:
		return "pong"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Frame is one whole websocket message: fragments are already joined, and a
// text message received from a peer is valid UTF-8. A Frame handed to
// [Context.Push] is written later by another goroutine, so its Data must not
// be modified afterwards; the same Frame may be pushed to many connections
// (see [Prepare]).
type Frame struct {
	Type MessageType
	Data []byte

	enc *encoding // the wire encoding shared by every connection (Prepare)
}

// encoding holds a prepared frame's wire encoding, made by the first
// server connection that writes it (wsactor keeps a gorilla
// PreparedMessage here) and read by every other. It is the encoding of the
// Type and Data the frame had when it was prepared: a copy of the frame
// whose Data was replaced (a handler adding a prefix to a published frame,
// say) no longer matches it and is written as any other frame.
type encoding struct {
	v    atomic.Value
	typ  MessageType
	data []byte // the prepared Data
}

// of reports whether e is the encoding of f's Type and Data: the same
// bytes in memory, not merely equal ones (comparing those would cost what
// the encoding saves).
func (e *encoding) of(f Frame) bool {
	if e.typ != f.Type || len(e.data) != len(f.Data) {
		return false
	}
	return len(f.Data) == 0 || &e.data[0] == &f.Data[0]
}

// Prepare returns f marked for sharing its wire encoding: the first server
// connection that writes it frames it, and compresses it if that
// connection uses permessage-deflate, and every other connection writes
// the same bytes (for each compression setting in use, the work is done
// once). Use it for a frame pushed to many connections. A registry's
// Publish prepares the frames it sends to more than one connection itself.
// Client connections write a prepared frame as any other (each masks its
// frames with a key of its own). Preparing costs a little for a frame
// written once; a frame already prepared is returned as it is.
//
// The prepared frame has the same Type and Data; it differs from f only to
// reflect.DeepEqual (and testify's Equal): compare Type and Data instead.
// Changing the Type or Data of a copy undoes the preparation for that copy
// (its bytes are framed anew); the bytes of Data must not be modified.
func Prepare(f Frame) Frame {
	if f.enc == nil || !f.enc.of(f) {
		f.enc = &encoding{typ: f.Type, data: f.Data}
	}
	return f
}

// Text returns a text frame holding s.
func Text(s string) Frame { return Frame{Type: TextMessage, Data: []byte(s)} }

// Binary returns a binary frame holding b (not copied).
func Binary(b []byte) Frame { return Frame{Type: BinaryMessage, Data: b} }

// JSON encodes v (encoding/json, which escapes <, > and & in strings) as a
// text frame.
func JSON(v any) (Frame, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Frame{}, fmt.Errorf("protows: encoding a JSON frame: %w", err)
	}
	return Frame{Type: TextMessage, Data: b}, nil
}

// ErrNotText is returned by [Frame.DecodeJSON] for a frame that is not a
// text frame.
var ErrNotText = errors.New("protows: not a text frame")

// DecodeJSON decodes the frame's JSON into v (encoding/json). A binary or
// control frame is an error (ErrNotText), and so is anything after the
// JSON value.
func (f Frame) DecodeJSON(v any) error {
	if f.Type != TextMessage {
		return fmt.Errorf("%w: %s", ErrNotText, f.Type)
	}
	if err := json.Unmarshal(f.Data, v); err != nil {
		return fmt.Errorf("protows: decoding a JSON frame: %w", err)
	}
	return nil
}

// IsData reports whether f is a text or binary frame.
func (f Frame) IsData() bool { return f.Type == TextMessage || f.Type == BinaryMessage }

// String formats the frame for logs and test failures.
func (f Frame) String() string {
	if f.Type == TextMessage {
		return fmt.Sprintf("text %q", f.Data)
	}
	return fmt.Sprintf("%s %d bytes", f.Type, len(f.Data))
}
