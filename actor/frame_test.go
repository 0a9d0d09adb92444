package actor_test

import (
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
	assert.ErrorContains(t, err, "encoding a JSON frame")
	assert.ErrorIs(t, actor.Binary([]byte(`{}`)).DecodeJSON(&got), actor.ErrNotText)
	assert.ErrorContains(t, actor.Text(`{"X":`).DecodeJSON(&got), "decoding a JSON frame")
	assert.Error(t, actor.Text(`{"X":1} {"X":2}`).DecodeJSON(&got), "anything after the value")
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
