package protows_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadmeCodeCompiles vets every Go block of the README that is a whole
// file (it starts with a package clause), inside this module.
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
		out, err := exec.Command("go", "vet", "./"+dir).CombinedOutput()
		require.NoError(t, err, "README block %d:\n%s\n%s", i, out, code)
		checked++
	}
	require.GreaterOrEqual(t, checked, 3)
}
