package wsactor_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/wsactor"
)

type echoHandler struct{ actor.BaseHandler }

func (echoHandler) HandleIn(c *actor.Context, f actor.Frame) error { return c.Push(f) }

// gorillaEcho is the hand-written baseline: a goroutine per connection that
// reads a message and writes it back.
func gorillaEcho() http.Handler {
	up := websocket.Upgrader{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, data); err != nil {
				return
			}
		}
	})
}

func benchServer(b *testing.B, impl string) string {
	var h http.Handler
	switch impl {
	case "gorilla":
		h = gorillaEcho()
	case "protows":
		sys := newSystem(b)
		srv, err := wsactor.NewServer(sys, func() actor.Handler { return echoHandler{} }, wsactor.WithKeepalive(0, 0))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = srv.Shutdown(b.Context()) })
		h = srv
	}
	hs := httptest.NewServer(h)
	b.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

// BenchmarkEcho: each client sends a 64-byte text message and waits for
// its echo; b.N round trips are spread over the clients.
func BenchmarkEcho(b *testing.B) {
	for _, conns := range []int{1, 64} {
		for _, impl := range []string{"protows", "gorilla"} {
			b.Run(fmt.Sprintf("conns=%d/impl=%s", conns, impl), func(b *testing.B) {
				url := benchServer(b, impl)
				clients := make([]*websocket.Conn, conns)
				for i := range clients {
					c, _, err := websocket.DefaultDialer.Dial(url, nil)
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					clients[i] = c
				}
				msg := []byte(strings.Repeat("x", 64))
				lat := make([][]time.Duration, conns)
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for i, c := range clients {
					n := b.N / conns
					if i < b.N%conns {
						n++
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range n {
							t0 := time.Now()
							if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
								b.Error(err)
								return
							}
							if _, _, err := c.ReadMessage(); err != nil {
								b.Error(err)
								return
							}
							lat[i] = append(lat[i], time.Since(t0))
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				all := slices.Concat(lat...)
				slices.Sort(all)
				if len(all) > 0 {
					b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
					b.ReportMetric(float64(all[len(all)/2].Nanoseconds())/1e3, "p50-us")
					b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds())/1e3, "p99-us")
				}
			})
		}
	}
}
