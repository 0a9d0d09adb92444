package wsactor_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

// recorder is a client handler that pushes the frames cast to it and
// reports the frames it receives.
type recorder struct {
	actor.BaseHandler
	got chan actor.Frame
}

func (r *recorder) HandleIn(_ *actor.Context, f actor.Frame) error {
	r.got <- f
	return nil
}

func (r *recorder) HandleInfo(c *actor.Context, msg any) error {
	if f, ok := msg.(actor.Frame); ok {
		return c.Push(f)
	}
	return nil
}

// Messages of every size around the read buffers (gorilla's 125 bytes,
// the pooled 4 KiB, and far past both) are echoed whole and in order
// between a protows client and a protows server, over plain TCP (pooled
// reads) and over TLS (crypto/tls's buffers), compressed or not; pings
// between them are answered.
func TestEchoAcrossReadBuffers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var want []actor.Frame
	for _, n := range []int{0, 1, 2, 124, 125, 126, 127, 4094, 4095, 4096, 4097, 8192, 70000, 300000} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		want = append(want, actor.Text(string(b)), actor.Binary(b))
	}
	for _, useTLS := range []bool{false, true} {
		for _, compress := range []bool{false, true} {
			t.Run(fmt.Sprintf("tls=%v/compression=%v", useTLS, compress), func(t *testing.T) {
				sys := newSystem(t)
				ev := newEvents()
				srv, err := wsactor.NewServer(sys, func() actor.Handler {
					return &probe{ev: ev, control: func(*actor.Context, actor.Frame) error { return nil }}
				},
					wsactor.WithKeepalive(0, 0), wsactor.WithCompression(compress), wsactor.WithReadLimit(2<<20))
				require.NoError(t, err)
				var hs *httptest.Server
				var opts []wsactor.ClientOption
				if useTLS {
					hs = httptest.NewTLSServer(srv)
					opts = append(opts, wsactor.WithTLSConfig(&tls.Config{RootCAs: hs.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}))
				} else {
					hs = httptest.NewServer(srv)
				}
				t.Cleanup(hs.Close)
				url := "ws" + strings.TrimPrefix(hs.URL, "http")
				r := &recorder{got: make(chan actor.Frame, len(want))}
				c := spawnClient(t, sys, url, r, append(opts, wsactor.WithCompression(compress), wsactor.WithReadLimit(2<<20))...)
				require.NoError(t, c.WaitConnected(waitCtx(t)))
				for round := range 2 {
					for _, f := range want {
						c.Cast(f)
					}
					require.NoError(t, c.Ping([]byte("between")))
					for i, f := range want {
						select {
						case got := <-r.got:
							require.Equal(t, f.Type, got.Type, "round %d, frame %d", round, i)
							require.True(t, bytes.Equal(f.Data, got.Data), "round %d, frame %d: %d bytes, want %d", round, i, len(got.Data), len(f.Data))
						case <-time.After(wait):
							t.Fatalf("round %d: frame %d of %d was not echoed", round, i, len(want))
						}
					}
				}
			})
		}
	}
}
