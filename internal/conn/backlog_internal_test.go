package conn

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Senders racing for the last place never pass the count bound, and a
// refused taker leaves the counters as they were.
func TestBacklogTakeKeepsBothBounds(t *testing.T) {
	for range 200 {
		b := backlog{maxBytes: 1 << 20, maxItems: 1}
		var won atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if b.take(itemCost) {
					won.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		assert.Equal(t, int32(1), won.Load())
		assert.Equal(t, int64(1), b.items.Load())
		assert.Equal(t, int64(itemCost), b.bytes.Load())
	}
	b := backlog{maxBytes: 100}
	assert.True(t, b.take(80))
	assert.False(t, b.take(30), "past the byte bound")
	assert.Equal(t, int64(1), b.items.Load())
	b.give(1, 80)
	assert.True(t, b.take(100))
}
