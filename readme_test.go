package protows_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/internal/syncbuf"
)

// TestReadmeCodeCompiles vets every Go block of the README that is a whole
// file (it starts with a package clause), inside this module, and runs the
// tests among them; TestReadmeCodeRuns runs the programs.
func TestReadmeCodeCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go vet")
	}
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	require.NotEmpty(t, blocks)
	checked := 0
	for i, b := range blocks {
		code := b[1]
		if !strings.HasPrefix(code, "package ") {
			continue
		}
		// A directory whose name starts with "." is invisible to ./... patterns.
		dir, err := os.MkdirTemp(".", ".readme-")
		require.NoError(t, err)
		defer os.RemoveAll(dir)
		name := "main.go"
		if strings.Contains(code, "testing.T") {
			name = "example_test.go"
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(code), 0o644))
		cmd := exec.Command("go", "vet", "./"+dir)
		if name == "example_test.go" {
			cmd = exec.Command("go", "test", "-count=1", "./"+dir) // vets, and runs it
		}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "README block %d:\n%s\n%s", i, out, code)
		checked++
	}
	require.GreaterOrEqual(t, checked, 3)
}

// readmePrograms are the README's whole-file Go programs, in order.
func readmePrograms(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	var progs []string
	for _, b := range regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.HasPrefix(b[1], "package main\n") {
			progs = append(progs, b[1])
		}
	}
	return progs
}

// readmeProgram is one of the README's programs, built with its address
// moved to a free port, and running.
type readmeProgram struct {
	addr   string
	cmd    *exec.Cmd
	stdout *syncbuf.Buffer
	exited chan error
}

// runReadmeProgram builds code with 127.0.0.1:8080 replaced by addr (a
// free port if empty) and starts it; it is killed with the test.
func runReadmeProgram(t *testing.T, code, addr string) *readmeProgram {
	t.Helper()
	if addr == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr = l.Addr().String()
		require.NoError(t, l.Close())
	}
	dir, err := os.MkdirTemp(".", ".readme-run-") // inside the module, invisible to ./...
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(strings.ReplaceAll(code, "127.0.0.1:8080", addr)), 0o644))
	bin := filepath.Join(t.TempDir(), "prog")
	out, err := exec.Command("go", "build", "-o", bin, "./"+dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	p := &readmeProgram{addr: addr, cmd: exec.Command(bin), stdout: &syncbuf.Buffer{}, exited: make(chan error, 1)}
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stdout
	require.NoError(t, p.cmd.Start())
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// dial connects to the program, waiting for it to listen.
func (p *readmeProgram) dial(t *testing.T, path string) *websocket.Conn {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+p.addr+path, nil)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		select {
		case err := <-p.exited:
			t.Fatalf("the program exited (%v) before it served:\n%s", err, p.stdout.String())
		case <-time.After(20 * time.Millisecond): // polling a port another process opens
		}
		require.True(t, time.Now().Before(deadline), "the program never served %s: %v\n%s", path, err, p.stdout.String())
	}
}

func exchange(t *testing.T, c *websocket.Conn, send, want string) {
	t.Helper()
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(send)))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, got, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, want, string(got))
}

// TestReadmeCodeRuns runs the README's programs and checks that each does
// what the README says.
func TestReadmeCodeRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs programs")
	}
	progs := readmePrograms(t)
	require.Len(t, progs, 5, "the README's programs changed: update this test")

	t.Run("quick start and client", func(t *testing.T) {
		shout := runReadmeProgram(t, progs[0], "")
		c := shout.dial(t, "/ws?user=ann")
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, hello, err := c.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, "hello, ann", string(hello))
		exchange(t, c, "hi", "HI")
		_, resp, err := websocket.DefaultDialer.Dial("ws://"+shout.addr+"/ws", nil)
		assert.ErrorIs(t, err, websocket.ErrBadHandshake, "no ?user=: refused")
		if assert.NotNil(t, resp) {
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		}
		// The client program, pointed at it as user "ticker", prints the
		// greeting, then its subscription and its "hello" shouted back.
		client := runReadmeProgram(t, strings.ReplaceAll(progs[2], "/ws\"", "/ws?user=ticker\""), shout.addr)
		require.Eventually(t, func() bool {
			out := client.stdout.String()
			return strings.Contains(out, "1: hello, ticker") && strings.Contains(out, `{"ACTION":"SUBSCRIBE"}`) && strings.Contains(out, "HELLO")
		}, 30*time.Second, 10*time.Millisecond, "client output:\n%s", client.stdout.String())
	})
	t.Run("graceful shutdown", func(t *testing.T) {
		echo := runReadmeProgram(t, progs[1], "")
		c := echo.dial(t, "/")
		exchange(t, c, "x", "x")
		require.NoError(t, echo.cmd.Process.Signal(os.Interrupt))
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, _, err := c.ReadMessage()
		assert.True(t, websocket.IsCloseError(err, websocket.CloseGoingAway), "want 1001, got %v", err)
		select {
		case err := <-echo.exited:
			require.NoError(t, err, "%s", echo.stdout.String())
			echo.exited <- err // for the cleanup
		case <-time.After(10 * time.Second):
			t.Fatal("the program did not exit after SIGINT")
		}
	})
	t.Run("names and groups", func(t *testing.T) {
		reg := runReadmeProgram(t, progs[3], "")
		bob := reg.dial(t, "/?name=bob")
		exchange(t, bob, "anyone?", "anyone?") // no alice: published to everyone, bob included
		alice := reg.dial(t, "/?name=alice")
		exchange(t, alice, "me?", "me?") // alice's own send reaches her once she holds the name
		require.NoError(t, bob.WriteMessage(websocket.TextMessage, []byte("hi alice")))
		require.NoError(t, alice.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, got, err := alice.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, "hi alice", string(got))
	})
	t.Run("presence", func(t *testing.T) {
		p := runReadmeProgram(t, progs[4], "")
		read := func(c *websocket.Conn) string {
			t.Helper()
			require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
			_, got, err := c.ReadMessage()
			require.NoError(t, err)
			return string(got)
		}
		ann := p.dial(t, "/?name=ann")
		assert.Equal(t, `{"here":["ann"]}`, read(ann))
		bob := p.dial(t, "/?name=bob")
		assert.Equal(t, `{"here":["ann","bob"]}`, read(bob))
		assert.Equal(t, `{"joined":"bob"}`, read(ann))
		require.NoError(t, bob.Close())
		assert.Equal(t, `{"left":"bob"}`, read(ann))
	})
}

// An option for one side only, passed to the other, does not compile.
func TestWrongSideOptionDoesNotCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the compiler")
	}
	const program = `package main

import (
	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/supervision"
	"github.com/protows/protows/wsactor"
)

func main() {
	sys := protoactor.NewActorSystem()
	_, _ = wsactor.NewServer(sys, func() actor.Handler { return actor.BaseHandler{} }, %s)
	_, _ = wsactor.SpawnClient(sys, "ws://127.0.0.1:1/", actor.BaseHandler{}, %s)
	_ = supervision.Policy{}
}
`
	compile := func(server, client string) (string, error) {
		dir, err := os.MkdirTemp(".", ".options-")
		require.NoError(t, err)
		defer os.RemoveAll(dir)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(fmt.Sprintf(program, server, client)), 0o644))
		out, err := exec.Command("go", "build", "-o", os.DevNull, "./"+dir).CombinedOutput()
		return string(out), err
	}
	both := "wsactor.WithKeepalive(0, 0), wsactor.WithReadLimit(1 << 10)"
	out, err := compile(both+", wsactor.WithMaxConnections(10)", both+", wsactor.WithReconnect(supervision.Policy{})")
	require.NoError(t, err, "options on their own side:\n%s", out)

	out, err = compile("wsactor.WithReconnect(supervision.Policy{})", both)
	require.Error(t, err, "a client option given to NewServer compiled")
	assert.Contains(t, out, "ServerOption")
	out, err = compile(both, "wsactor.WithAllowedOrigins(\"example.com\")")
	require.Error(t, err, "a server option given to SpawnClient compiled")
	assert.Contains(t, out, "ClientOption")
}
