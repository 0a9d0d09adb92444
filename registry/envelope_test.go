package registry

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry/registrypb"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, msg := range []any{
		actor.Text("héllo"),
		actor.Binary([]byte{0, 1}),
		&actor.CloseRequest{Code: 4001, Reason: "replaced"},
		wrapperspb.String("typed"),
	} {
		env, err := wrap(msg)
		require.NoError(t, err)
		got := unwrap(env)
		if p, ok := msg.(*wrapperspb.StringValue); ok {
			assert.Equal(t, p.GetValue(), got.(*wrapperspb.StringValue).GetValue())
			continue
		}
		assert.Equal(t, msg, got)
	}
	_, err := wrap(struct{}{})
	assert.ErrorIs(t, err, ErrNotSerializable)
}

// A protobuf type the receiving node does not know becomes an
// UnknownMessage, not a crash.
func TestUnknownPayloadType(t *testing.T) {
	env := &registrypb.Envelope{Body: &registrypb.Envelope_Payload{Payload: &anypb.Any{
		TypeUrl: "type.googleapis.com/somebody.Else", Value: []byte{1, 2, 3},
	}}}
	got, ok := unwrap(env).(*UnknownMessage)
	require.True(t, ok)
	assert.Equal(t, "type.googleapis.com/somebody.Else", got.TypeURL)
	assert.Error(t, got.Err)
}
