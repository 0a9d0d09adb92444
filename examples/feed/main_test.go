package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/internal/exampletest"
	"github.com/protows/protows/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// server hands each accepted connection to the test.
func server(t *testing.T) (string, <-chan *websocket.Conn) {
	conns := make(chan *websocket.Conn, 10)
	var up websocket.Upgrader
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			conns <- c
		}
	}))
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http"), conns
}

func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, data, err := c.ReadMessage()
	require.NoError(t, err)
	return string(data)
}

func TestFeedReconnectsAndStopsOnPolicyViolation(t *testing.T) {
	url, conns := server(t)
	out := make(exampletest.Lines, 100)
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"-url", url, "-subscribe", "sub!", "-backoff-min", "1ms", "-backoff-max", "5ms"}, out, io.Discard)
	}()

	c := exampletest.Next(t, conns)
	defer c.Close()
	assert.Equal(t, "sub!", readText(t, c))
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("first")))
	require.NoError(t, c.WriteMessage(websocket.BinaryMessage, []byte("not printed")))
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("second")))
	assert.Equal(t, "first", exampletest.Next(t, out))
	assert.Equal(t, "second", exampletest.Next(t, out))

	// The server goes away: the feed comes back and subscribes again.
	require.NoError(t, c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second)))
	c = exampletest.Next(t, conns)
	defer c.Close()
	assert.Equal(t, "sub!", readText(t, c))
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("third")))
	assert.Equal(t, "third", exampletest.Next(t, out))

	// 1008 is final.
	require.NoError(t, c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "banned"), time.Now().Add(time.Second)))
	err := exampletest.Next(t, done)
	assert.ErrorIs(t, err, errEnded)
	assert.ErrorContains(t, err, "1008")
	select {
	case c := <-conns:
		c.Close()
		t.Fatal("reconnected after 1008")
	default:
	}
}

func TestBadFlag(t *testing.T) {
	assert.Error(t, run(context.Background(), []string{"-backoff-min", "soon"}, io.Discard, io.Discard))
	assert.Error(t, run(context.Background(), []string{"-url", "http://x"}, io.Discard, io.Discard))
}

// TestProgram runs the built program: exit 0 with a 1000 close on SIGINT,
// exit 1 when the server closes with 1008.
func TestProgram(t *testing.T) {
	bin := exampletest.Build(t, "feed")

	start := func(t *testing.T) (*exec.Cmd, *websocket.Conn, <-chan string) {
		url, conns := server(t)
		cmd := exec.Command(bin, "-url", url)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		out := make(chan string, 10)
		go func() {
			s := bufio.NewScanner(stdout)
			for s.Scan() {
				out <- s.Text()
			}
		}()
		c := exampletest.Next(t, conns)
		t.Cleanup(func() { c.Close() })
		assert.Equal(t, `{"action":"subscribe"}`, readText(t, c))
		require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("hello")))
		assert.Equal(t, "hello", exampletest.Next(t, out))
		return cmd, c, out
	}
	wait := func(t *testing.T, cmd *exec.Cmd) error {
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			return err
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("still running")
		}
		return nil
	}

	t.Run("SIGINT", func(t *testing.T) {
		cmd, c, _ := start(t)
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, websocket.CloseNormalClosure, ce.Code)
		assert.NoError(t, wait(t, cmd))
	})
	t.Run("1008", func(t *testing.T) {
		cmd, c, _ := start(t)
		require.NoError(t, c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, ""), time.Now().Add(time.Second)))
		err := wait(t, cmd)
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "exit: %v", err)
		assert.Equal(t, 1, ee.ExitCode())
	})
}

// -h prints the usage and exits with status 0.
func TestHelp(t *testing.T) { exampletest.Help(t, "feed") }
