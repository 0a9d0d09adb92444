package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/leaktest"
	"github.com/protows/protows/supervision"
	"github.com/protows/protows/wsactor"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

const (
	// wait bounds every wait on a channel.
	wait = 10 * time.Second
	// nodeTimeout bounds the life of every Node process; it is killed then.
	nodeTimeout = 20 * time.Second
)

// requireNode returns the path of node, or skips t when node or the ws
// package is missing.
func requireNode(t *testing.T) string {
	t.Helper()
	const enable = "cd interop/node && npm install"
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: install Node.js 18 or later, then run: " + enable)
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "ws")); err != nil {
		t.Skip("interop/node/node_modules/ws is missing: to enable the interop tests, run: " + enable)
	}
	return node
}

// event is one JSON line a Node script reports on stdout.
type event struct {
	Event   string `json:"event"`
	Binary  bool   `json:"binary"`
	Data    string `json:"data"` // text, hex of binary, or a ping or pong payload
	Length  int    `json:"length"`
	SHA256  string `json:"sha256"`
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Port    int    `json:"port"`
	Message string `json:"message"`
}

// nodeProc is a running Node script.
type nodeProc struct {
	cmd    *exec.Cmd
	events chan event    // closed when its stdout ends
	exited chan struct{} // closed once it has exited and been waited for
	err    error         // how it exited; valid after exited
	stderr bytes.Buffer  // valid after exited
}

// startNode runs node/SCRIPT with args. The process is killed at cleanup,
// or after nodeTimeout.
func startNode(t *testing.T, script string, args ...string) *nodeProc {
	t.Helper()
	node := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	p := &nodeProc{
		cmd:    exec.CommandContext(ctx, node, append([]string{filepath.Join("node", script)}, args...)...),
		events: make(chan event, 10000),
		exited: make(chan struct{}),
	}
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = time.Second
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start node: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				e = event{Event: "unparsed", Message: sc.Text()}
			}
			p.events <- e
		}
		close(p.events)
		p.err = p.cmd.Wait() // after the last read from stdout, as os/exec requires
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		cancel()
	})
	return p
}

// kill kills the process and waits until it is gone.
func (p *nodeProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// next returns the next event of kind from a running process, skipping
// others.
func (p *nodeProc) next(t *testing.T, kind string) event {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				<-p.exited
				t.Fatalf("node exited (%v) before reporting %q; stderr:\n%s", p.err, kind, p.stderr.String())
			}
			if e.Event == kind {
				return e
			}
			if e.Event == "error" || e.Event == "unparsed" {
				t.Fatalf("node reported %+v while waiting for %q", e, kind)
			}
		case <-deadline:
			t.Fatalf("node did not report %q within %v", kind, wait)
		}
	}
}

// step is one step of node/client.mjs.
type step map[string]any

func sendText(s string) step { return fragment([]byte(s), false, true) }

func sendBinary(b []byte) step { return fragment(b, true, true) }

// fragment sends b as a text or binary frame; fin false leaves the message
// open for the next fragment.
func fragment(b []byte, binary, fin bool) step {
	return step{"send": hex.EncodeToString(b), "binary": binary, "fin": fin}
}

func sendRandom(n int) step { return step{"random": n} }

func ping(payload string) step { return step{"ping": payload} }

// await waits for count events of kind (message, ping, pong, close).
func await(kind string, count int) step { return step{"await": kind, "count": count} }

func closeWith(code actor.CloseCode, reason string) step {
	return step{"close": int(code), "reason": reason}
}

// runClient runs node/client.mjs against url with steps and returns what it
// reported. It fails t unless the script ran every step and exited 0.
func runClient(t *testing.T, url string, steps ...step) []event {
	t.Helper()
	js, err := json.Marshal(steps)
	require.NoError(t, err)
	p := startNode(t, "client.mjs", url, string(js))
	<-p.exited // within nodeTimeout: the process is killed then
	var events []event
	for e := range p.events {
		events = append(events, e)
	}
	if p.err != nil || len(events) == 0 || events[len(events)-1].Event != "done" {
		t.Fatalf("node client failed (%v; a hung client is killed after %v)\nevents: %+v\nstderr:\n%s", p.err, nodeTimeout, events, p.stderr.String())
	}
	return events
}

// only returns the events of kind.
func only(events []event, kind string) []event {
	var out []event
	for _, e := range events {
		if e.Event == kind {
			out = append(out, e)
		}
	}
	return out
}

// one returns the single event of kind.
func one(t *testing.T, events []event, kind string) event {
	t.Helper()
	got := only(events, kind)
	require.Len(t, got, 1, "%q events in %+v", kind, events)
	return got[0]
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("no %s within %v", what, wait)
	}
	var zero T
	return zero
}

// drain returns what ch holds now.
func drain[T any](ch <-chan T) []T {
	var out []T
	for {
		select {
		case v := <-ch:
			out = append(out, v)
		default:
			return out
		}
	}
}

func newSystem(t *testing.T) *protoactor.ActorSystem {
	sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	t.Cleanup(sys.Shutdown)
	return sys
}

// stopWord makes the echo handler close with 1008 "nope".
const stopWord = "stop"

// recorder is what the echo handler saw, across its connections.
type recorder struct {
	in       chan actor.Frame
	controls chan actor.Frame
	reasons  chan actor.Reason
}

// echo echoes text as text and binary as binary, and records everything.
type echo struct {
	actor.BaseHandler
	rec *recorder
}

func (h echo) HandleIn(c *actor.Context, f actor.Frame) error {
	h.rec.in <- actor.Frame{Type: f.Type, Data: bytes.Clone(f.Data)}
	if f.Type == actor.TextMessage && string(f.Data) == stopWord {
		return actor.Stop(actor.ClosePolicyViolation, "nope")
	}
	return c.Push(f)
}

func (h echo) HandleControl(_ *actor.Context, f actor.Frame) error {
	h.rec.controls <- actor.Frame{Type: f.Type, Data: bytes.Clone(f.Data)}
	return nil
}

func (h echo) Terminate(_ *actor.Context, r actor.Reason) { h.rec.reasons <- r }

// echoServer starts a protows echo server and returns its ws:// URL.
func echoServer(t *testing.T, opts ...wsactor.ServerOption) (*recorder, string) {
	t.Helper()
	rec := &recorder{in: make(chan actor.Frame, 100), controls: make(chan actor.Frame, 10000), reasons: make(chan actor.Reason, 100)}
	sys := newSystem(t)
	srv, err := wsactor.NewServer(sys, func() actor.Handler { return echo{rec: rec} }, opts...)
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.Shutdown(ctx); !errors.Is(err, wsactor.ErrServerClosed) {
			assert.NoError(t, err, "shutdown at cleanup")
		}
		hs.Close()
	})
	return rec, "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestNodeClient runs Node's ws as the client of a protows echo server.
func TestNodeClient(t *testing.T) {
	requireNode(t)

	t.Run("text round trip", func(t *testing.T) {
		rec, url := echoServer(t)
		const msg = "héllo, wörld: ünïcödé — 日本語 🎉"
		events := runClient(t, url, sendText(msg), await("message", 1), closeWith(actor.CloseNormal, ""), await("close", 1))

		got := one(t, events, "message")
		assert.False(t, got.Binary, "echoed as text")
		assert.Equal(t, msg, got.Data)
		f := recv(t, rec.in, "message at the handler")
		assert.Equal(t, actor.Text(msg), f)
		r := recv(t, rec.reasons, "Terminate")
		assert.Equal(t, actor.ReasonRemote, r.Kind)
		assert.Equal(t, actor.CloseNormal, r.Code)
		assert.Equal(t, 1000, one(t, events, "close").Code)
	})

	t.Run("binary round trip", func(t *testing.T) {
		rec, url := echoServer(t)
		msg := make([]byte, 300) // every byte value, most of them not UTF-8
		for i := range msg {
			msg[i] = byte(i)
		}
		events := runClient(t, url, sendBinary(msg), await("message", 1), closeWith(actor.CloseNormal, ""), await("close", 1))

		got := one(t, events, "message")
		assert.True(t, got.Binary, "echoed as binary")
		assert.Equal(t, hex.EncodeToString(msg), got.Data)
		f := recv(t, rec.in, "message at the handler")
		assert.Equal(t, actor.Binary(msg), f)
		assert.Equal(t, actor.ReasonRemote, recv(t, rec.reasons, "Terminate").Kind)
	})

	t.Run("1 MiB message", func(t *testing.T) {
		const size = 1 << 20
		rec, url := echoServer(t, wsactor.WithReadLimit(size+1024))
		events := runClient(t, url, sendRandom(size), await("message", 1), closeWith(actor.CloseNormal, ""), await("close", 1))

		sent := one(t, events, "sent")
		require.Equal(t, size, sent.Length)
		got := one(t, events, "message")
		assert.True(t, got.Binary)
		assert.Equal(t, size, got.Length)
		assert.Equal(t, sent.SHA256, got.SHA256, "the echo is intact")
		f := recv(t, rec.in, "message at the handler")
		assert.Equal(t, actor.BinaryMessage, f.Type)
		assert.Len(t, f.Data, size)
		assert.Equal(t, sent.SHA256, sha(f.Data), "the handler got the bytes Node sent")
		r := recv(t, rec.reasons, "Terminate")
		assert.Equal(t, actor.ReasonRemote, r.Kind, "%v", r)
	})

	t.Run("over the read limit", func(t *testing.T) {
		rec, url := echoServer(t, wsactor.WithReadLimit(1024))
		events := runClient(t, url, sendRandom(1025), await("close", 1))

		assert.Empty(t, only(events, "message"))
		assert.Equal(t, int(actor.CloseMessageTooBig), one(t, events, "close").Code)
		r := recv(t, rec.reasons, "Terminate")
		assert.Equal(t, actor.ReasonError, r.Kind)
		assert.Equal(t, actor.CloseMessageTooBig, r.Code)
		assert.ErrorIs(t, r.Err, actor.ErrMessageTooBig)
		assert.Empty(t, drain(rec.in), "HandleIn saw no part of it")
	})

	t.Run("fragmented message", func(t *testing.T) {
		rec, url := echoServer(t)
		// Three fragments, the middle cut inside the two bytes of "é", with a
		// ping between the first two.
		msg := []byte("fragmented: héllo ✓")
		cut := bytes.Index(msg, []byte("é")) + 1
		events := runClient(t, url,
			fragment(msg[:5], false, false),
			ping("between fragments"),
			fragment(msg[5:cut], false, false),
			fragment(msg[cut:], false, true),
			await("message", 1), await("pong", 1),
			closeWith(actor.CloseNormal, ""), await("close", 1))

		got := one(t, events, "message")
		assert.False(t, got.Binary)
		assert.Equal(t, string(msg), got.Data)
		assert.Equal(t, "between fragments", one(t, events, "pong").Data)
		assert.Equal(t, actor.ReasonRemote, recv(t, rec.reasons, "Terminate").Kind)
		// Terminate has run, so every HandleIn and HandleControl before it has too.
		assert.Equal(t, []actor.Frame{actor.Text(string(msg))}, drain(rec.in), "one whole message")
		assert.Equal(t, []actor.Frame{{Type: actor.PingMessage, Data: []byte("between fragments")}}, drain(rec.controls))
	})

	t.Run("node pings", func(t *testing.T) {
		rec, url := echoServer(t)
		events := runClient(t, url, ping("are you there?"), await("pong", 1), closeWith(actor.CloseNormal, ""), await("close", 1))

		assert.Equal(t, "are you there?", one(t, events, "pong").Data)
		assert.Equal(t, actor.ReasonRemote, recv(t, rec.reasons, "Terminate").Kind)
		assert.Equal(t, []actor.Frame{{Type: actor.PingMessage, Data: []byte("are you there?")}}, drain(rec.controls))
	})

	t.Run("server pings, node pongs", func(t *testing.T) {
		// Node sends no data, only its automatic pongs, and waits for 4
		// pings. protows pings every max(interval, pongTimeout), and a ping
		// after the first only once the one before it was answered in time:
		// the connection outlives 3 pong timeouts on pongs alone. Each pong
		// has 250 ms, which Node on a loaded machine does not miss.
		const interval, pongTimeout, pings = 50 * time.Millisecond, 250 * time.Millisecond, 4
		rec, url := echoServer(t, wsactor.WithKeepalive(interval, pongTimeout))
		events := runClient(t, url, await("ping", pings), closeWith(actor.CloseNormal, ""), await("close", 1))

		assert.GreaterOrEqual(t, len(only(events, "ping")), pings)
		assert.Equal(t, 1000, one(t, events, "close").Code)
		r := recv(t, rec.reasons, "Terminate")
		assert.Equal(t, actor.ReasonRemote, r.Kind, "closed by Node, not by the keepalive: %v", r)
		assert.Equal(t, actor.CloseNormal, r.Code)
		pongs := 0
		for _, f := range drain(rec.controls) {
			assert.Equal(t, actor.PongMessage, f.Type)
			pongs++
		}
		assert.GreaterOrEqual(t, pongs, pings, "HandleControl saw Node's pongs")
	})

	t.Run("node closes with 4000", func(t *testing.T) {
		rec, url := echoServer(t)
		events := runClient(t, url, closeWith(4000, "bye"), await("close", 1))

		r := recv(t, rec.reasons, "Terminate")
		assert.Equal(t, actor.ReasonRemote, r.Kind)
		assert.Equal(t, actor.CloseCode(4000), r.Code)
		assert.Equal(t, "bye", r.Text)
		assert.Equal(t, 4000, one(t, events, "close").Code, "the server echoes the code")
	})

	t.Run("server closes with 1008", func(t *testing.T) {
		rec, url := echoServer(t)
		events := runClient(t, url, sendText(stopWord), await("close", 1))

		c := one(t, events, "close")
		assert.Equal(t, int(actor.ClosePolicyViolation), c.Code)
		assert.Equal(t, "nope", c.Reason)
		assert.Empty(t, only(events, "message"), "nothing echoed")
		r := recv(t, rec.reasons, "Terminate")
		assert.Equal(t, actor.ReasonNormal, r.Kind)
		assert.Equal(t, actor.ClosePolicyViolation, r.Code)
		assert.Equal(t, "nope", r.Text)
	})
}

// connected is what the client handler saw in one HandleConnect.
type connected struct {
	n      int
	pid    *protoactor.PID
	status int
}

// client is a protows client handler that records what happens.
type client struct {
	actor.BaseHandler
	connects    int // handler state: survives reconnects
	connected   chan connected
	in          chan actor.Frame
	disconnects chan actor.Reason
}

func (c *client) HandleConnect(ctx *actor.Context, r *actor.ConnectResponse) error {
	c.connects++
	c.connected <- connected{n: c.connects, pid: ctx.Self(), status: r.StatusCode}
	return nil
}

func (c *client) HandleIn(_ *actor.Context, f actor.Frame) error {
	c.in <- actor.Frame{Type: f.Type, Data: bytes.Clone(f.Data)}
	return nil
}

func (c *client) HandleDisconnect(_ *actor.Context, r actor.Reason) actor.Decision {
	c.disconnects <- r
	return actor.ReconnectByPolicy
}

// TestNodeServerRestart runs a protows client against Node's ws as the
// server, kills the server, and starts a new one on the same port.
func TestNodeServerRestart(t *testing.T) {
	first := startNode(t, "server.mjs", "0")
	port := first.next(t, "listening").Port
	require.NotZero(t, port)

	h := &client{connected: make(chan connected, 100), in: make(chan actor.Frame, 100), disconnects: make(chan actor.Reason, 1000)}
	c, err := wsactor.SpawnClient(newSystem(t), fmt.Sprintf("ws://127.0.0.1:%d/", port), h,
		wsactor.WithReconnect(supervision.Policy{Backoff: supervision.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}}))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = c.Close(ctx)
	})

	roundTrip := func(p *nodeProc, f actor.Frame) {
		t.Helper()
		require.NoError(t, c.Send(f))
		assert.Equal(t, f, recv(t, h.in, "echo"))
		got := p.next(t, "message")
		assert.Equal(t, f.Type == actor.BinaryMessage, got.Binary)
	}

	first.next(t, "connection")
	c1 := recv(t, h.connected, "first HandleConnect")
	assert.Equal(t, 1, c1.n)
	assert.Equal(t, 101, c1.status)
	assert.True(t, c1.pid.Equal(c.PID()), "HandleConnect runs in the client's actor")
	roundTrip(first, actor.Text("héllo from protows"))
	roundTrip(first, actor.Binary([]byte{0, 1, 0xfe, 0xff}))

	first.kill()
	r := recv(t, h.disconnects, "HandleDisconnect after the kill")
	assert.Equal(t, actor.ReasonError, r.Kind, "%v", r)
	assert.Equal(t, actor.CloseAbnormal, r.Code)

	second := startNode(t, "server.mjs", strconv.Itoa(port))
	require.Equal(t, port, second.next(t, "listening").Port)
	second.next(t, "connection")
	c2 := recv(t, h.connected, "HandleConnect after the restart")
	assert.Equal(t, 2, c2.n, "the same handler value, its state kept")
	assert.True(t, c2.pid.Equal(c.PID()), "the PID is unchanged: %v, then %v", c1.pid, c2.pid)
	assert.True(t, c.Connected())
	roundTrip(second, actor.Text("héllo again"))

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, c.Close(ctx))
	end := c.Reason()
	assert.Equal(t, actor.ReasonNormal, end.Kind, "%v", end)
	assert.Equal(t, actor.CloseNormal, end.Code)
	assert.Equal(t, 1000, second.next(t, "close").Code)
	assert.Empty(t, drain(h.connected), "no other connect")
}
