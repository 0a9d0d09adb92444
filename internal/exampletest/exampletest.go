// Package exampletest helps the tests of the example programs: it builds a
// program and collects what it prints, line by line.
package exampletest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Lines is an io.Writer that passes what is written to it on as lines.
type Lines chan string

// Write splits p into lines.
func (l Lines) Write(p []byte) (int, error) {
	for _, s := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		l <- s
	}
	return len(p), nil
}

// Next returns the next value from ch, failing the test after 10 s.
func Next[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting")
	}
	var zero T
	return zero
}

// Build compiles the program in the current directory and returns the
// binary's path. It skips the test under -short.
func Build(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the program")
	}
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// Help builds the program in the current directory, runs it with -h, and
// checks that it prints its usage and exits with status 0.
func Help(t *testing.T, name string) {
	t.Helper()
	bin := Build(t, name)
	cmd := exec.Command(bin, "-h")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s -h: %v (want exit status 0); stderr:\n%s", name, err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "Usage of "+name) {
		t.Fatalf("%s -h printed no usage; stderr:\n%s", name, stderr.String())
	}
}
