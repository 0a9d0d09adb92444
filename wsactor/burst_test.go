package wsactor_test

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// A burst of messages from other actors, sent as fast as several
// goroutines can, reaches a peer that reads at full speed: every frame, in
// each sender's order, and the connection stays open. The backlog bound is
// the default one; the burst is far past the frame counts that used to
// close such a connection.
func TestBurstFromActorsReachesAFastReader(t *testing.T) {
	for _, tc := range []struct {
		conns, perConn, senders int
	}{
		{conns: 1, perConn: 100_000, senders: 4},
		{conns: 20, perConn: 5_000, senders: 4},
	} {
		t.Run(fmt.Sprintf("conns=%d/frames=%d/senders=%d", tc.conns, tc.perConn, tc.senders), func(t *testing.T) {
			ev := newEvents()
			e := newEnv(t, func() actor.Handler {
				return &probe{ev: ev, info: func(c *actor.Context, msg any) error { return c.Push(msg.(actor.Frame)) }}
			})
			clients := make([]*websocket.Conn, tc.conns)
			targets := make([]*protoactor.PID, tc.conns)
			for i := range clients {
				clients[i] = e.dial(t, nil)
				targets[i] = ev.pid(t)
			}
			// Each client reads at full speed from the start.
			type tally struct {
				got  int
				err  error
				last []int // per sender, the last sequence number seen
			}
			tallies := make([]tally, tc.conns)
			var readers sync.WaitGroup
			for i, c := range clients {
				readers.Add(1)
				go func() {
					defer readers.Done()
					tl := &tallies[i]
					tl.last = make([]int, tc.senders)
					for s := range tl.last {
						tl.last[s] = -1
					}
					_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
					for tl.got < tc.perConn {
						_, data, err := c.ReadMessage()
						if err != nil {
							tl.err = err
							return
						}
						s, seq := int(data[0]), int(binary.BigEndian.Uint32(data)&0xffffff)
						if seq != tl.last[s]+1 {
							tl.err = fmt.Errorf("sender %d: frame %d after %d", s, seq, tl.last[s])
							return
						}
						tl.last[s] = seq
						tl.got++
					}
				}()
			}
			// Each sender sends its own numbered stream to every connection.
			var senders sync.WaitGroup
			for s := range tc.senders {
				senders.Add(1)
				go func() {
					defer senders.Done()
					for seq := range tc.perConn / tc.senders {
						for _, pid := range targets {
							f := make([]byte, 4)
							binary.BigEndian.PutUint32(f, uint32(s)<<24|uint32(seq))
							e.sys.Root.Send(pid, actor.Binary(f))
						}
					}
				}()
			}
			senders.Wait()
			readers.Wait()
			for i, tl := range tallies {
				require.NoError(t, tl.err, "connection %d after %d frames", i, tl.got)
				assert.Equal(t, tc.perConn, tl.got, "connection %d", i)
			}
			// Every connection is still open and answers.
			for i, c := range clients {
				require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("still there?")), "connection %d", i)
				_, s := read(t, c)
				assert.Equal(t, "still there?", s, "connection %d", i)
			}
			select {
			case r := <-ev.reasons:
				t.Fatalf("a connection ended during the burst: %v", r)
			default:
			}
		})
	}
}

// The default bound still stops a backlog for a peer that never reads:
// the connection closes with 1013, and senders are never blocked.
func TestNonReaderOverflowsTheDefaultBacklog(t *testing.T) {
	ev := newEvents()
	e := newEnv(t, func() actor.Handler {
		return &probe{ev: ev, info: func(c *actor.Context, msg any) error { return c.Push(msg.(actor.Frame)) }}
	}, wsactor.WithCloseTimeout(200*time.Millisecond))
	c := e.dial(t, nil) // and never read
	pid := ev.pid(t)
	payload := actor.Binary(make([]byte, 16<<10))
	// 4,000 x 16 KiB is 62.5 MiB: past the 16 MiB bound and what socket
	// buffers hold.
	for range 4000 {
		e.sys.Root.Send(pid, payload)
	}
	r := ev.reason(t)
	assert.Equal(t, actor.ReasonError, r.Kind)
	assert.Equal(t, actor.CloseTryAgainLater, r.Code)
	assert.ErrorIs(t, r.Err, actor.ErrOutboxFull)
	_ = c
}
