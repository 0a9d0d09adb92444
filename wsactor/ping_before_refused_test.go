package wsactor_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// A message, a ping, then a frame gorilla refuses by its header, in one
// segment. The message's replies are deferred (the ping is buffered
// behind it) and written when the ping is delivered; there are more of
// them than the reader writes inline, so a writer goroutine takes the
// rest. The ping is delivered from inside gorilla's NextReader, which goes
// on to the bad frame and writes its 1002 at once: ReadLoop's drain, at
// the top of its loop, never runs. Every reply must still reach the peer
// before the close frame.
func TestRepliesBeforeProtocolErrorWithAPingBetween(t *testing.T) {
	const replies = 200
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev,
			in: func(c *actor.Context, f actor.Frame) error {
				if string(f.Data) != "burst" {
					return c.Push(f)
				}
				for i := range replies {
					if err := c.Push(actor.Text(fmt.Sprintf("r%03d %s", i, bytes.Repeat([]byte{'x'}, 1000)))); err != nil {
						return err
					}
				}
				return nil
			},
			control: func(*actor.Context, actor.Frame) error { return nil },
		}
	}, wsactor.WithCloseTimeout(2*time.Second))
	nc, br, _ := idleRawConn(t, e, "")
	var burst []byte
	burst = append(burst, masked(0x81, []byte("burst"))...)
	burst = append(burst, masked(0x89, []byte("p"))...)            // ping
	burst = append(burst, masked(0x80|0x20|0x1, []byte("bad"))...) // RSV2: gorilla's 1002
	_, err := nc.Write(burst)
	require.NoError(t, err)
	var texts []string
	var closeFrame []byte
	for _, f := range framesUntilClose(t, br) {
		switch f.op {
		case 0x1:
			texts = append(texts, string(f.payload[:4]))
		case 0x8:
			closeFrame = f.payload
		}
	}
	// Answer the close, so that the server need not wait out its timeout.
	_, err = nc.Write(masked(0x88, []byte{0x03, 0xea}))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(closeFrame), 2)
	assert.Equal(t, 1002, int(closeFrame[0])<<8|int(closeFrame[1]))
	assert.Len(t, texts, replies, "replies before the close")
	assert.Equal(t, actor.CloseProtocolError, ev.reason(t).Code)
}
