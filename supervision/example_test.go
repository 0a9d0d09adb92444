package supervision_test

import (
	"fmt"
	"time"

	"github.com/protows/protows/supervision"
)

func ExampleBackoff_Ceiling() {
	b := supervision.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	for attempt := 1; attempt <= 6; attempt++ {
		fmt.Println(attempt, b.Ceiling(attempt))
	}
	// Output:
	// 1 100ms
	// 2 200ms
	// 3 400ms
	// 4 800ms
	// 5 1.6s
	// 6 2s
}
