package wsactor_test

import (
	"os"
	"testing"

	"github.com/protows/protows/internal/leaktest"
)

func TestMain(m *testing.M) {
	if os.Getenv(loadgenEnv) != "" {
		// Re-executed by a benchmark as its load generator (loadgen_test.go).
		os.Exit(loadgenMain())
	}
	leaktest.VerifyTestMain(m)
}
