package registry

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry/registrypb"
)

// ErrNotSerializable: a message sent through a cluster registry is neither
// an actor.Frame, an *actor.CloseRequest nor a protobuf message, so it
// cannot cross nodes.
var ErrNotSerializable = errors.New("protows: message cannot cross cluster nodes")

// UnknownMessage is delivered in place of a protobuf message whose type
// the receiving node does not know (its Go package is not linked in).
// proto.actor would crash on such a message; the cluster registry carries
// user messages as Any so that it can say so instead.
type UnknownMessage struct {
	TypeURL string
	Err     error
}

// systemMessage stands for one of proto.actor's own messages arriving from
// another member: never delivered.
type systemMessage struct{ name string }

// systemPackages are proto.actor's protobuf packages: their messages
// (PoisonPill, Stop, Watch, Terminated, gossip, ...) act on actors or on
// the cluster itself, so they never travel as user messages.
var systemPackages = map[protoreflect.FullName]bool{"actor": true, "remote": true, "cluster": true}

func isSystem(m proto.Message) (protoreflect.FullName, bool) {
	d := m.ProtoReflect().Descriptor()
	return d.FullName(), systemPackages[d.ParentFile().Package()]
}

// sendable checks that msg can cross members, without encoding it.
func sendable(msg any) error {
	switch m := msg.(type) {
	case actor.Frame, *actor.Frame, *actor.CloseRequest:
		return nil
	case proto.Message:
		if name, sys := isSystem(m); sys {
			return fmt.Errorf("%w: %s is a proto.actor system message", ErrNotSerializable, name)
		}
		return nil
	}
	return fmt.Errorf("%w: %T (send an actor.Frame or a protobuf message)", ErrNotSerializable, msg)
}

// wrap puts msg in an envelope for another node.
func wrap(msg any) (*registrypb.Envelope, error) {
	switch m := msg.(type) {
	case actor.Frame:
		return &registrypb.Envelope{Body: &registrypb.Envelope_Frame{Frame: &registrypb.Frame{Type: uint32(m.Type), Data: m.Data}}}, nil
	case *actor.Frame:
		return wrap(*m)
	case *actor.CloseRequest:
		return &registrypb.Envelope{Body: &registrypb.Envelope_Close{Close: &registrypb.CloseRequest{Code: uint32(m.Code), Reason: m.Reason}}}, nil
	case proto.Message:
		if name, sys := isSystem(m); sys {
			return nil, fmt.Errorf("%w: %s is a proto.actor system message", ErrNotSerializable, name)
		}
		a, err := anypb.New(m)
		if err != nil {
			return nil, fmt.Errorf("protows: %w", err)
		}
		return &registrypb.Envelope{Body: &registrypb.Envelope_Payload{Payload: a}}, nil
	}
	return nil, fmt.Errorf("%w: %T (send an actor.Frame or a protobuf message)", ErrNotSerializable, msg)
}

// unwrap turns an envelope back into the message it carries.
func unwrap(env *registrypb.Envelope) any {
	switch b := env.GetBody().(type) {
	case *registrypb.Envelope_Frame:
		return actor.Frame{Type: actor.MessageType(b.Frame.GetType()), Data: b.Frame.GetData()}
	case *registrypb.Envelope_Close:
		return &actor.CloseRequest{Code: actor.CloseCode(b.Close.GetCode()), Reason: b.Close.GetReason()}
	case *registrypb.Envelope_Payload:
		m, err := b.Payload.UnmarshalNew()
		if err != nil {
			return &UnknownMessage{TypeURL: b.Payload.GetTypeUrl(), Err: err}
		}
		if name, sys := isSystem(m); sys {
			return &systemMessage{name: string(name)}
		}
		return m
	}
	return &UnknownMessage{Err: errors.New("protows: empty envelope")}
}
