package wsactor_test

// The load generator: benchmarks run their clients in a child process (the
// test binary, re-executed with PROTOWS_LOADGEN set), so that the server's
// CPU time can be measured alone (getrusage of the benchmark process) and
// 10,000 client sockets do not count against the server process's
// open-file limit. Parent and child talk in JSON lines: the parent writes
// a job and then commands on the child's stdin, the child answers events
// on its stdout.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const loadgenEnv = "PROTOWS_LOADGEN"

type loadJob struct {
	URL   string `json:"url"`
	Conns int    `json:"conns"`
	Size  int    `json:"size"`
	// Inflight is how many messages each client keeps in flight (1: wait
	// for each echo).
	Inflight int `json:"inflight"`
	// Sources are the local addresses clients dial from (127.0.0.x), so
	// that 10,000 connections do not run out of ephemeral ports.
	Sources []string `json:"sources"`
	// Compress offers permessage-deflate; a server that does not accept
	// it fails the job.
	Compress bool `json:"compress"`
}

type loadCmd struct {
	Cmd string `json:"cmd"` // "run", "expect", "burst", "stop"
	N   int    `json:"n"`
	K   int    `json:"k,omitempty"` // burst: messages per burst
}

type loadEvent struct {
	Event     string  `json:"event"` // "ready", "done", "all", "burst", "error"
	Msgs      int     `json:"msgs,omitempty"`
	ElapsedNS int64   `json:"elapsed_ns,omitempty"`
	P50NS     int64   `json:"p50_ns,omitempty"`
	P99NS     int64   `json:"p99_ns,omitempty"`
	Seq       int     `json:"seq,omitempty"`
	AllNS     int64   `json:"all_ns,omitempty"`
	Error     string  `json:"error,omitempty"`
	Extra     float64 `json:"extra,omitempty"`
}

// loadgenMain is the child's main: it returns the exit status.
func loadgenMain() int {
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	fail := func(err error) int {
		_ = out.Encode(loadEvent{Event: "error", Error: err.Error()})
		return 1
	}
	if !in.Scan() {
		return fail(fmt.Errorf("no job"))
	}
	var job loadJob
	if err := json.Unmarshal(in.Bytes(), &job); err != nil {
		return fail(err)
	}
	conns := make([]*websocket.Conn, job.Conns)
	for i := range conns {
		src := job.Sources[i%len(job.Sources)]
		d := websocket.Dialer{
			NetDialContext:    (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext,
			EnableCompression: job.Compress,
		}
		c, resp, err := d.Dial(job.URL, nil)
		if err != nil {
			return fail(fmt.Errorf("dial %d: %w", i, err))
		}
		conns[i] = c
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); job.Compress && !strings.HasPrefix(ext, "permessage-deflate") {
			return fail(fmt.Errorf("dial %d: compression not negotiated (Sec-WebSocket-Extensions: %q)", i, ext))
		}
	}
	defer func() {
		for _, c := range conns {
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			c.Close()
		}
	}()
	_ = out.Encode(loadEvent{Event: "ready"})
	for in.Scan() {
		var cmd loadCmd
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			return fail(err)
		}
		switch cmd.Cmd {
		case "run":
			ev, err := echoLoad(conns, cmd.N, job.Size, job.Inflight)
			if err != nil {
				return fail(err)
			}
			_ = out.Encode(ev)
		case "expect":
			if err := fanoutLoad(conns, cmd.N, out); err != nil {
				return fail(err)
			}
		case "burst":
			if err := burstLoad(conns, cmd.N, cmd.K, out); err != nil {
				return fail(err)
			}
		case "stop":
			return 0
		}
	}
	return 0
}

// echoLoad sends n messages spread over the connections, each client
// keeping inflight in flight, and measures round trips.
func echoLoad(conns []*websocket.Conn, n, size, inflight int) (loadEvent, error) {
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = 'x'
	}
	lat := make([][]time.Duration, len(conns))
	errs := make(chan error, len(conns))
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		count := n / len(conns)
		if i < n%len(conns) {
			count++
		}
		if count == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A message is sent only with a token, and its time is taken
			// then: at most inflight are outstanding, and each latency is one
			// round trip, not the wait for a token too.
			tokens := make(chan struct{}, inflight)
			for range inflight {
				tokens <- struct{}{}
			}
			sent := make(chan time.Time, inflight)
			writeErr := make(chan error, 1)
			go func() { // writer
				for range count {
					<-tokens
					sent <- time.Now()
					if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
						writeErr <- err
						return
					}
				}
			}()
			for range count {
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, _, err := c.ReadMessage(); err != nil {
					errs <- err
					return
				}
				lat[i] = append(lat[i], time.Since(<-sent))
				tokens <- struct{}{}
			}
			select {
			case err := <-writeErr:
				errs <- err
			default:
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		return loadEvent{}, err
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	ev := loadEvent{Event: "done", Msgs: len(all), ElapsedNS: elapsed.Nanoseconds()}
	if len(all) > 0 {
		ev.P50NS = all[len(all)/2].Nanoseconds()
		ev.P99NS = all[len(all)*99/100].Nanoseconds()
	}
	return ev, nil
}

// fanoutLoad waits for k broadcast messages on every connection, which
// must arrive in order (sequence numbers 0 to k-1). Each carries its
// sequence number and the wall-clock time it was published; for each,
// once every connection has it, the child reports how long that took
// (parent and child share the machine's clock).
func fanoutLoad(conns []*websocket.Conn, k int, out *json.Encoder) error {
	type arrival struct {
		seq  int
		sent int64
		at   int64
	}
	arrivals := make(chan arrival, len(conns))
	done := make(chan struct{})
	go func() {
		defer close(done)
		count := map[int]int{}
		last := map[int]int64{}
		for a := range arrivals {
			count[a.seq]++
			last[a.seq] = max(last[a.seq], a.at)
			if count[a.seq] == len(conns) {
				_ = out.Encode(loadEvent{Event: "all", Seq: a.seq, AllNS: last[a.seq] - a.sent})
				delete(count, a.seq)
				delete(last, a.seq)
			}
		}
	}()
	err := readBroadcasts(conns, k, func(_, seq int, sent, at int64) {
		arrivals <- arrival{seq: seq, sent: sent, at: at}
	})
	close(arrivals)
	<-done
	return err
}

// burstLoad waits for n bursts of k broadcast messages on every
// connection, in order (sequence numbers 0 to n*k-1; burst i is i*k to
// i*k+k-1). For each burst, once every connection has its last message,
// the child reports how long after the publishing of its first message
// the last connection had its last one, and the messages received.
func burstLoad(conns []*websocket.Conn, n, k int, out *json.Encoder) error {
	if k <= 0 {
		return fmt.Errorf("burst of %d messages", k)
	}
	type arrival struct {
		burst int
		first int64 // publishing time of the burst's first message
		at    int64 // when this connection had its last
	}
	arrivals := make(chan arrival, len(conns))
	done := make(chan struct{})
	go func() {
		defer close(done)
		count := map[int]int{}
		last := map[int]int64{}
		for a := range arrivals {
			count[a.burst]++
			last[a.burst] = max(last[a.burst], a.at)
			if count[a.burst] == len(conns) {
				_ = out.Encode(loadEvent{Event: "burst", Seq: a.burst, Msgs: k * len(conns), AllNS: last[a.burst] - a.first})
				delete(count, a.burst)
				delete(last, a.burst)
			}
		}
	}()
	// Per connection (each written by its own reader only): the
	// publishing time of its current burst's first message.
	firsts := make([]int64, len(conns))
	err := readBroadcasts(conns, n*k, func(conn, seq int, sent, at int64) {
		if seq%k == 0 {
			firsts[conn] = sent
		}
		if seq%k == k-1 {
			arrivals <- arrival{burst: seq / k, first: firsts[conn], at: at}
		}
	})
	close(arrivals)
	<-done
	return err
}

// readBroadcasts reads k messages on every connection and calls got(conn,
// seq, sent, at) for each (from the connection's own goroutine), failing
// when one arrives out of order (sequence numbers must be 0, 1, ...). On
// the first error it closes every connection, so that the others stop
// waiting.
func readBroadcasts(conns []*websocket.Conn, k int, got func(conn, seq int, sent, at int64)) error {
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	fail := func(err error) {
		once.Do(func() {
			firstErr = err
			for _, c := range conns {
				c.Close()
			}
		})
	}
	for i, c := range conns {
		wg.Go(func() {
			for want := range k {
				_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
				mt, data, err := c.ReadMessage()
				if err != nil {
					fail(fmt.Errorf("conn %d, message %d: %w", i, want, err))
					return
				}
				at := time.Now().UnixNano()
				seq, sent, err := parseBroadcast(mt, data)
				if err != nil {
					fail(fmt.Errorf("conn %d, message %d: %w", i, want, err))
					return
				}
				if seq != want {
					fail(fmt.Errorf("conn %d: message %d has sequence number %d", i, want, seq))
					return
				}
				got(i, seq, sent, at)
			}
		})
	}
	wg.Wait()
	return firstErr
}

// parseBroadcast reads a broadcast's sequence number and publishing time
// (Unix ns): big-endian in the first 16 bytes of a binary message
// (binaryFanoutMsg), or the "seq" and "ts" that open a text message
// (textFanoutMsg).
func parseBroadcast(mt int, data []byte) (seq int, sent int64, err error) {
	switch mt {
	case websocket.BinaryMessage:
		if len(data) < 16 {
			return 0, 0, fmt.Errorf("binary broadcast of %d bytes", len(data))
		}
		return int(binary.BigEndian.Uint64(data)), int64(binary.BigEndian.Uint64(data[8:])), nil
	case websocket.TextMessage:
		rest, ok := bytes.CutPrefix(data, []byte(`{"seq":`))
		s, rest, ok2 := bytes.Cut(rest, []byte(`,"ts":`))
		t, _, ok3 := bytes.Cut(rest, []byte(`,`))
		if !ok || !ok2 || !ok3 {
			return 0, 0, fmt.Errorf("text broadcast %.40q", data)
		}
		n, err := strconv.Atoi(string(s))
		if err != nil {
			return 0, 0, err
		}
		sent, err := strconv.ParseInt(string(t), 10, 64)
		return n, sent, err
	}
	return 0, 0, fmt.Errorf("broadcast of message type %d", mt)
}

// loadgen is the parent's handle on a child load generator.
type loadgen struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startLoadgen starts a child with job and waits until its clients are
// connected.
func startLoadgen(tb testing.TB, job loadJob) *loadgen {
	tb.Helper()
	if len(job.Sources) == 0 {
		job.Sources = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"}
	}
	if job.Inflight == 0 {
		job.Inflight = 1
	}
	cmd := exec.CommandContext(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), loadgenEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	g := &loadgen{cmd: cmd, in: in, out: bufio.NewScanner(stdout)}
	tb.Cleanup(g.stop)
	g.send(tb, job)
	if ev := g.next(tb); ev.Event != "ready" {
		tb.Fatalf("load generator: %+v", ev)
	}
	return g
}

func (g *loadgen) send(tb testing.TB, v any) {
	b, _ := json.Marshal(v)
	if _, err := g.in.Write(append(b, '\n')); err != nil {
		tb.Fatal(err)
	}
}

func (g *loadgen) next(tb testing.TB) loadEvent {
	if !g.out.Scan() {
		tb.Fatalf("load generator ended: %v", g.out.Err())
	}
	var ev loadEvent
	if err := json.Unmarshal(g.out.Bytes(), &ev); err != nil {
		tb.Fatal(err)
	}
	if ev.Event == "error" {
		tb.Fatalf("load generator: %s", ev.Error)
	}
	return ev
}

func (g *loadgen) stop() {
	if g.cmd.ProcessState != nil {
		return
	}
	b, _ := json.Marshal(loadCmd{Cmd: "stop"})
	_, _ = g.in.Write(append(b, '\n'))
	_ = g.in.Close()
	_ = g.cmd.Wait()
}
