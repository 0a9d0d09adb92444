package wsactor_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// countingListener counts the writes to every socket it accepts: one per
// system call, as the server's sockets are written through Write only.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// A burst pushed in one callback leaves in a few writes, and the peer
// reads every frame whole and in order: text, binary, large frames past
// the coalescing buffer, pings and pongs between them, compressed or not,
// and the close frame queued last.
func TestCoalescedBurstKeepsOrderAndBoundaries(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compression=%v", compress), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			big := make([]byte, 100<<10) // over the 64 KiB a write holds
			for i := range big {
				big[i] = byte(rng.IntN(256))
			}
			type item struct {
				kind string // "text", "binary", "ping", "pong"
				data []byte
			}
			var want []item
			for i := range 300 {
				switch {
				case i == 100:
					want = append(want, item{"binary", big})
				case i == 200:
					want = append(want, item{"text", []byte(strings.Repeat("x", 60<<10))})
				case i%50 == 25:
					want = append(want, item{"ping", []byte(fmt.Sprintf("ping %d", i))}, item{"pong", []byte(fmt.Sprintf("pong %d", i))})
				case i%2 == 0:
					want = append(want, item{"text", []byte(fmt.Sprintf("text %d", i))})
				default:
					want = append(want, item{"binary", bytes.Repeat([]byte{byte(i)}, i%17)})
				}
			}

			ev := newEvents()
			sys := newSystem(t)
			srv, err := wsactor.NewServer(sys, func() actor.Handler {
				return &probe{ev: ev, in: func(c *actor.Context, f actor.Frame) error {
					for _, it := range want {
						var err error
						switch it.kind {
						case "text":
							err = c.Push(actor.Frame{Type: actor.TextMessage, Data: it.data})
						case "binary":
							err = c.Push(actor.Binary(it.data))
						case "ping":
							err = c.Ping(it.data)
						case "pong":
							err = c.Pong(it.data)
						}
						if err != nil {
							return err
						}
					}
					return c.Close(actor.CloseNormal, "done")
				}}
			}, wsactor.WithKeepalive(0, 0), wsactor.WithCompression(compress))
			require.NoError(t, err)
			ln := &countingListener{Listener: newLocalListener(t)}
			hs := httptest.NewUnstartedServer(srv)
			hs.Listener = ln
			hs.Start()
			t.Cleanup(hs.Close)

			d := websocket.Dialer{EnableCompression: compress}
			c, resp, err := d.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
			require.NoError(t, err)
			resp.Body.Close()
			defer c.Close()
			if compress {
				require.Contains(t, resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
			}

			var (
				mu  sync.Mutex
				got []item
			)
			c.SetPingHandler(func(s string) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, item{"ping", []byte(s)})
				return nil
			})
			c.SetPongHandler(func(s string) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, item{"pong", []byte(s)})
				return nil
			})
			before := ln.writes.Load()
			require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("go")))
			require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
			var closeErr *websocket.CloseError
			for {
				mt, data, err := c.ReadMessage()
				if err != nil {
					require.ErrorAs(t, err, &closeErr)
					break
				}
				kind := "text"
				if mt == websocket.BinaryMessage {
					kind = "binary"
				}
				mu.Lock()
				got = append(got, item{kind, data})
				mu.Unlock()
			}
			assert.Equal(t, websocket.CloseNormalClosure, closeErr.Code)
			assert.Equal(t, "done", closeErr.Text)
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, got, len(want))
			for i := range want {
				if want[i].kind != got[i].kind || !bytes.Equal(want[i].data, got[i].data) {
					t.Fatalf("frame %d: got %s of %d bytes, want %s of %d bytes", i, got[i].kind, len(got[i].data), want[i].kind, len(want[i].data))
				}
			}
			// Written one by one, the burst would take a write per frame
			// (over 300); coalesced, the small frames share writes and only
			// the large ones (written in pieces of 4 KiB by gorilla when
			// compressed) take several.
			writes := ln.writes.Load() - before
			t.Logf("%d frames in %d writes", len(want)+1, writes)
			assert.Less(t, writes, int64(80), "the burst was not coalesced")
		})
	}
}

func newLocalListener(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// batchConn is a client socket whose writes can be gathered and sent in
// one system call, so that the server reads many frames at once.
type batchConn struct {
	net.Conn
	mu    sync.Mutex
	batch bool
	buf   []byte
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batch {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *batchConn) start() {
	c.mu.Lock()
	c.batch = true
	c.mu.Unlock()
}

func (c *batchConn) send(t testing.TB) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batch = false
	_, err := c.Conn.Write(c.buf)
	require.NoError(t, err)
	c.buf = nil
}

// pipelinedEnv serves echo behind a counting listener and dials it with a
// client whose frames can be sent in one write.
func pipelinedEnv(t *testing.T) (*countingListener, *websocket.Conn, *batchConn) {
	ev := newEvents()
	return pipelinedServer(t, func() actor.Handler { return &probe{ev: ev} })
}

// pipelinedServer serves h (keepalive off, then opts) behind a counting
// listener and dials it with a client whose frames can be sent in one
// write.
func pipelinedServer(t *testing.T, h func() actor.Handler, opts ...wsactor.ServerOption) (*countingListener, *websocket.Conn, *batchConn) {
	srv, err := wsactor.NewServer(newSystem(t), h, append([]wsactor.ServerOption{wsactor.WithKeepalive(0, 0)}, opts...)...)
	require.NoError(t, err)
	ln := &countingListener{Listener: newLocalListener(t)}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	var bc *batchConn
	d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err != nil {
			return nil, err
		}
		bc = &batchConn{Conn: c}
		return bc, nil
	}}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return ln, c, bc
}

// Messages that arrive together are answered together: the echoes of a
// pipelined run leave in a few writes, whole and in order.
func TestPipelinedRepliesCoalesced(t *testing.T) {
	ln, c, bc := pipelinedEnv(t)
	const n = 200
	before := ln.writes.Load()
	bc.start()
	for i := range n {
		require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("m%d", i))))
	}
	bc.send(t)
	for i := range n {
		mt, data := read(t, c)
		require.Equal(t, websocket.TextMessage, mt)
		require.Equal(t, fmt.Sprintf("m%d", i), data)
	}
	writes := ln.writes.Load() - before
	t.Logf("%d echoes in %d writes", n, writes)
	assert.Less(t, writes, int64(n/4), "the replies were not coalesced")
}

// A close frame behind a pipelined run: every echo goes out before the
// answer to the close, though no message follows to flush them.
func TestPipelinedRunThenClose(t *testing.T) {
	_, c, bc := pipelinedEnv(t)
	bc.start()
	for i := range 10 {
		require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("m%d", i))))
	}
	require.NoError(t, c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(wait)))
	bc.send(t)
	for i := range 10 {
		_, data := read(t, c)
		require.Equal(t, fmt.Sprintf("m%d", i), data)
	}
	ce := readClose(t, c)
	assert.Equal(t, websocket.CloseNormalClosure, ce.Code)
}
