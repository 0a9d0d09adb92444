package wsactor_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/protows/protows/internal/conn"
	"github.com/protows/protows/wsactor"
)

// wsactor's defaults and overflow policies are the ones the connection
// runtime applies: the values documented are the values used.
func TestDefaultsMatchTheRuntime(t *testing.T) {
	assert.Equal(t, conn.DefaultCloseTimeout, wsactor.DefaultCloseTimeout)
	assert.Equal(t, conn.DefaultPingInterval, wsactor.DefaultPingInterval)
	assert.Equal(t, conn.DefaultOutboundBytes, wsactor.DefaultOutboundBytes)
	// String is the runtime's name for the policy of the same value.
	assert.Equal(t, "close", wsactor.OverflowClose.String())
	assert.Equal(t, "drop-oldest", wsactor.OverflowDropOldest.String())
	assert.Equal(t, "drop-newest", wsactor.OverflowDropNewest.String())
}
