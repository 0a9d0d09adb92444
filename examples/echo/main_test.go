package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/protows/protows/internal/exampletest"
	"github.com/protows/protows/internal/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func listeningAddr(t *testing.T, out <-chan string) string {
	t.Helper()
	select {
	case s := <-out:
		require.True(t, strings.HasPrefix(s, "listening on http://"), "first line: %q", s)
		return strings.TrimPrefix(s, "listening on http://")
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not say where it listens")
	}
	return ""
}

func closeCode(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	for {
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		require.NoError(t, err)
	}
}

func TestEcho(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(exampletest.Lines, 10)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-max-message", "100", "-ping-interval", "1m"}, out, io.Discard)
	}()
	url := "ws://" + listeningAddr(t, out) + "/ws"

	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	defer c.Close()
	for _, m := range []struct {
		typ  int
		data string
	}{{websocket.TextMessage, "hello"}, {websocket.BinaryMessage, "\x00\x01"}} {
		require.NoError(t, c.WriteMessage(m.typ, []byte(m.data)))
		typ, data, err := c.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, m.typ, typ)
		assert.Equal(t, m.data, string(data))
	}

	big, _, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	defer big.Close()
	require.NoError(t, big.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 101))))
	assert.Equal(t, websocket.CloseMessageTooBig, closeCode(t, big))

	cancel()
	assert.Equal(t, websocket.CloseGoingAway, closeCode(t, c))
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not stop")
	}
}

func TestBadFlag(t *testing.T) {
	err := run(context.Background(), []string{"-max-message", "lots"}, io.Discard, io.Discard)
	assert.Error(t, err)
}

// TestSignal runs the built program and interrupts it, as a person would.
func TestSignal(t *testing.T) {
	bin := exampletest.Build(t, "echo")

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
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
			url := "ws://" + listeningAddr(t, out) + "/ws"
			c, _, err := websocket.DefaultDialer.Dial(url, nil)
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("up")))
			_, _, err = c.ReadMessage()
			require.NoError(t, err)

			start := time.Now()
			require.NoError(t, cmd.Process.Signal(sig))
			assert.Equal(t, websocket.CloseGoingAway, closeCode(t, c))
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				assert.NoError(t, err, "exit status")
				assert.Less(t, time.Since(start), 5*time.Second)
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("still running 5 s after the signal")
			}
		})
	}
}

// -h prints the usage and exits with status 0.
func TestHelp(t *testing.T) { exampletest.Help(t, "echo") }
