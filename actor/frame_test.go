package actor_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
)

func TestJSONFrames(t *testing.T) {
	type move struct {
		X, Y int
	}
	f, err := actor.JSON(move{1, 2})
	require.NoError(t, err)
	assert.Equal(t, actor.TextMessage, f.Type)
	assert.JSONEq(t, `{"X":1,"Y":2}`, string(f.Data))
	var got move
	require.NoError(t, f.DecodeJSON(&got))
	assert.Equal(t, move{1, 2}, got)

	_, err = actor.JSON(make(chan int))
	assert.ErrorContains(t, err, "protows: encoding a JSON frame")
	var ute *json.UnsupportedTypeError
	assert.ErrorAs(t, err, &ute, "encoding/json's error is wrapped")
}

func TestDecodeJSONErrors(t *testing.T) {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	for _, tc := range []struct {
		name string
		f    actor.Frame
		is   error // errors.Is, or nil
		as   any   // errors.As target, or nil
		text string
	}{
		{"binary", actor.Binary([]byte(`{"X":1}`)), actor.ErrNotText, nil, "protows: not a text frame: binary"},
		{"ping", actor.Frame{Type: actor.PingMessage, Data: []byte(`{}`)}, actor.ErrNotText, nil, "protows: not a text frame: ping"},
		{"cut short", actor.Text(`{"X":`), nil, nil, "protows: decoding a JSON frame: unexpected end of JSON input"},
		{"not JSON", actor.Text(`hello`), nil, &syntax, "protows: decoding a JSON frame: invalid character"},
		{"two values", actor.Text(`{"X":1} {"X":2}`), nil, &syntax, "after top-level value"},
		{"wrong type", actor.Text(`{"X":"one"}`), nil, &typ, "protows: decoding a JSON frame: json: cannot unmarshal"},
		{"empty", actor.Text(``), nil, nil, "protows: decoding a JSON frame: unexpected end of JSON input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v struct{ X int }
			err := tc.f.DecodeJSON(&v)
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.text)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			} else {
				assert.NotErrorIs(t, err, actor.ErrNotText)
			}
			if tc.as != nil {
				assert.ErrorAs(t, err, tc.as)
			}
		})
	}
}

// A handler reads and writes JSON messages.
func ExampleJSON() {
	type chat struct {
		From string `json:"from"`
		Text string `json:"text"`
	}
	in := actor.Text(`{"from":"ann","text":"hi"}`)
	var m chat
	if err := in.DecodeJSON(&m); err != nil {
		fmt.Println(err)
		return
	}
	out, _ := actor.JSON(chat{From: "server", Text: "hello, " + m.From})
	fmt.Println(string(out.Data))
	// Output: {"from":"server","text":"hello, ann"}
}
