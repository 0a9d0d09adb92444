package conn_test

import (
	"testing"

	"github.com/protows/protows/internal/leaktest"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}
