package wsactor_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/protows/protows/actor"
)

// burstLen is the number of publishes in one burst of BenchmarkFanoutBurst.
const burstLen = 100

// BenchmarkFanoutBurst: burstLen publishes back to back to a group of 1,000
// connections (64-byte binary messages), and the time from the first
// publish until the last client has the last message; every client must
// have all of them, in order. msgs/s is burstLen*1000 over that time.
//
// The gorilla sibling writes one PreparedMessage per publish, as
// BenchmarkFanout's does, but hands it to a writer goroutine per
// connection (a queue of writerQueue; the publisher blocks when one is
// full, so nothing is dropped) instead of writing it in the publishing
// loop. That is what a careful gorilla user does for bursts (the writePump
// of gorilla's chat example, without its dropping of slow clients): the
// loop would write 100,000 frames one after the other on the publisher's
// goroutine, on one core, and a client whose socket buffer is full would
// hold up every publish to the others; with writers the writes spread
// over the cores and a slow client holds up only itself until its queue is
// full. It is also how protows delivers (each member writes its own
// frames). The writers are also the faster here: 325 and 422 ms for a
// burst (median of 10) in two runs on a shared 2-core machine, against 869
// and 932 ms for the loop, which also took more server CPU (7.9-8.1
// against 4.3-5.0 us per message).
func BenchmarkFanoutBurst(b *testing.B) {
	const conns = 1000
	for _, impl := range impls {
		b.Run(fmt.Sprintf("conns=%d/impl=%s", conns, impl), func(b *testing.B) {
			s := newBenchServer(b, impl, serverConfig{fanout: true, writers: true})
			g := startLoadgen(b, loadJob{URL: s.url, Conns: conns})
			waitConns(b, s, conns)
			g.send(b, loadCmd{Cmd: "burst", N: b.N, K: burstLen})
			elapsed := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := range b.N {
				for j := range burstLen {
					mt, msg := binaryFanoutMsg(i*burstLen+j, time.Now())
					if err := s.publish(mt, msg); err != nil {
						b.Fatal(err)
					}
				}
				ev := g.next(b)
				if ev.Event != "burst" || ev.Seq != i || ev.Msgs != burstLen*conns {
					b.Fatalf("load generator: %+v, want burst %d of %d messages", ev, i, burstLen*conns)
				}
				elapsed = append(elapsed, time.Duration(ev.AllNS))
			}
			cpu := cpuTime() - cpu0
			b.StopTimer()
			slices.Sort(elapsed)
			med := elapsed[len(elapsed)/2]
			b.ReportMetric(float64(burstLen*conns)/med.Seconds(), "msgs/s")
			b.ReportMetric(float64(med.Nanoseconds())/1e6, "ms-all-received")
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N*burstLen*conns), "cpu-us/msg")
		})
	}
}

// BenchmarkFanoutCompressed: BenchmarkFanout's single publish to 1,000
// connections that negotiated permessage-deflate, with a compressible
// 1 KiB text message (textFanoutMsg). Three implementations: protows,
// gorilla (one PreparedMessage per publish: compressed once) and
// gorilla-percon (WriteMessage to each connection: compressed once per
// connection, the reference for compressing per connection).
func BenchmarkFanoutCompressed(b *testing.B) {
	const conns = 1000
	for _, impl := range withPercon(impls) {
		b.Run(fmt.Sprintf("conns=%d/impl=%s", conns, impl), func(b *testing.B) {
			s := newBenchServer(b, impl, serverConfig{fanout: true, compress: true})
			g := startLoadgen(b, loadJob{URL: s.url, Conns: conns, Compress: true})
			runFanout(b, s, g, conns, textFanoutMsg)
		})
	}
}

// withPercon adds gorilla-percon to the order of impls: last when protows
// runs first, first when gorilla does (the order flips as a whole).
func withPercon(impls []string) []string {
	if impls[0] == "protows" {
		return append(slices.Clone(impls), "gorilla-percon")
	}
	return append([]string{"gorilla-percon"}, impls...)
}

// textFanoutSize is the length of textFanoutMsg's messages.
const textFanoutSize = 1024

// textFanoutItems are the readings a text broadcast lists, as many as fit.
var textFanoutItems = func() []string {
	items := make([]string, 32)
	for i := range items {
		items[i] = fmt.Sprintf(`{"id":%d,"sensor":"greenhouse-%d","state":"ok","unit":"celsius","reading":%d.%d}`,
			i, i%4, 18+i*7%9, i*3%10)
	}
	return items
}()

// textFanoutMsg is a JSON text message of textFanoutSize bytes that opens
// with the sequence number and the time of publishing (Unix ns), as the
// load generator reads them ({"seq":N,"ts":T,...), and goes on with a list
// of sensor readings: repetitive text, which deflate (gorilla's default
// level) shrinks to 224 bytes.
func textFanoutMsg(seq int, sent time.Time) (actor.MessageType, []byte) {
	msg := make([]byte, 0, textFanoutSize)
	msg = fmt.Appendf(msg, `{"seq":%d,"ts":%d,"items":[`, seq, sent.UnixNano())
	for i, item := range textFanoutItems {
		if len(msg)+1+len(item)+len("]}") > textFanoutSize {
			break
		}
		if i > 0 {
			msg = append(msg, ',')
		}
		msg = append(msg, item...)
	}
	for len(msg) < textFanoutSize-len("]}") {
		msg = append(msg, ' ')
	}
	return actor.TextMessage, append(msg, "]}"...)
}
