package utf8stream

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// edgeCases are texts with the index of the byte at which a Validator must
// first fail (-1: never), and whether the whole text is complete.
var edgeCases = []struct {
	name     string
	in       string
	failAt   int
	complete bool
}{
	{"empty", "", -1, true},
	{"ascii", "hello", -1, true},
	{"2-byte", "\xc2\x80", -1, true},
	{"2-byte incomplete", "\xc2", -1, false},
	{"2-byte cut by ascii", "\xc2a", 1, false},
	{"3-byte", "\xe2\x82\xac", -1, true},
	{"3-byte incomplete", "\xe2\x82", -1, false},
	{"3-byte cut by ascii", "\xe2\x82a", 2, false},
	{"4-byte", "\xf0\x9f\x98\x80", -1, true},
	{"4-byte incomplete", "\xf0\x9f\x98", -1, false},
	{"4-byte then stray continuation", "\xf0\x9f\x98\x80\x80", 4, false},
	{"C0", "\xc0", 0, false},
	{"C1", "\xc1", 0, false},
	{"C0 overlong NUL", "\xc0\x80", 0, false},
	{"F5", "\xf5", 0, false},
	{"FE", "\xfe", 0, false},
	{"FF", "\xff", 0, false},
	{"stray continuation", "\x80", 0, false},
	{"stray continuation after ascii", "a\xbf", 1, false},
	{"invalid lead after ascii", "hello\xc0", 5, false},
	{"3-byte overlong", "\xe0\x80", 1, false},
	{"smallest 3-byte", "\xe0\xa0\x80", -1, true},
	{"4-byte overlong", "\xf0\x80", 1, false},
	{"4-byte overlong, F0 8F", "\xf0\x8f\xbf\xbf", 1, false},
	{"smallest 4-byte", "\xf0\x90\x80\x80", -1, true},
	{"first surrogate", "\xed\xa0", 1, false},
	{"last surrogate", "\xed\xbf\xbf", 1, false},
	{"U+D7FF", "\xed\x9f\xbf", -1, true},
	{"U+E000", "\xee\x80\x80", -1, true},
	{"U+10FFFF", "\xf4\x8f\xbf\xbf", -1, true},
	{"above U+10FFFF", "\xf4\x90", 1, false},
	{"above U+10FFFF, F4 BF", "\xf4\xbf\xbf\xbf", 1, false},
	// Autobahn 6.3.1: "κόσμε" followed by a surrogate and "edited".
	{"autobahn 6.3.1", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", 12, false},
	{"long ascii then 4-byte incomplete", strings.Repeat("a", 100) + "\xf0\x9f", -1, false},
}

func TestValidatorEdgeCases(t *testing.T) {
	for _, tc := range edgeCases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.complete, utf8.ValidString(tc.in), "table disagrees with utf8.Valid")

			t.Run("one byte per write", func(t *testing.T) {
				var v Validator
				failAt := -1
				for i := range len(tc.in) {
					if !v.Write([]byte{tc.in[i]}) {
						failAt = i
						break
					}
				}
				assert.Equal(t, tc.failAt, failAt)
				assert.Equal(t, tc.complete, v.Complete())
			})

			t.Run("one chunk", func(t *testing.T) {
				// The shortest prefix that a single write rejects ends
				// at the failing byte.
				var v Validator
				failAt := -1
				for k := 1; k <= len(tc.in); k++ {
					v.Reset()
					if !v.Write([]byte(tc.in[:k])) {
						failAt = k - 1
						break
					}
				}
				assert.Equal(t, tc.failAt, failAt)
				v.Reset()
				v.Write([]byte(tc.in))
				assert.Equal(t, tc.complete, v.Complete())
			})
		})
	}
}

func TestValidatorStaysFailed(t *testing.T) {
	var v Validator
	require.False(t, v.Write([]byte("\xff")))
	assert.False(t, v.Write([]byte("valid")))
	assert.False(t, v.Write(nil))
	assert.False(t, v.Complete())

	v.Reset()
	assert.True(t, v.Write([]byte("valid")))
	assert.True(t, v.Complete())
}

func TestValidatorEmptyWrites(t *testing.T) {
	var v Validator
	require.True(t, v.Write([]byte("\xf0\x9f")))
	assert.True(t, v.Write(nil))
	assert.True(t, v.Write([]byte{}))
	assert.False(t, v.Complete())
	assert.True(t, v.Write([]byte("\x98")))
	assert.True(t, v.Write([]byte("\x80")))
	assert.True(t, v.Complete())
}

func TestValidatorWriteDoesNotAllocate(t *testing.T) {
	chunks := [][]byte{[]byte("κόσ"), []byte("\xce"), []byte("\xbc\xf0\x9f"), []byte("\x98\x80ascii")}
	var v Validator
	allocs := testing.AllocsPerRun(100, func() {
		v.Reset()
		for _, c := range chunks {
			v.Write(c)
		}
	})
	assert.Zero(t, allocs)
	assert.True(t, v.Complete())
}

// Example feeds a message in fragments that cut through sequences.
func Example() {
	var v Validator
	for _, fragment := range []string{"κό", "\xcf", "\x83με ", "\xed", "\xa0\x80"} {
		if !v.Write([]byte(fragment)) {
			fmt.Printf("invalid at fragment %q\n", fragment)
			return
		}
	}
	fmt.Println("complete:", v.Complete())
	// Output:
	// invalid at fragment "\xa0\x80"
}

// BenchmarkWrite compares a Write of one whole chunk against utf8.Valid on
// the same bytes: the fixed cost of the chunk boundaries should stay small.
func BenchmarkWrite(b *testing.B) {
	mixed := "Hello, κόσμε! 世界 😀 plain ascii text, "
	texts := []struct {
		name string
		data []byte
	}{
		{"ascii-64B", []byte(strings.Repeat("a", 64))},
		{"ascii-4KiB", []byte(strings.Repeat("a", 4096))},
		{"mixed-64B", cut(mixed, 64)},
		{"mixed-4KiB", cut(mixed, 4096)},
	}
	for _, text := range texts {
		b.Run(text.name+"/Write", func(b *testing.B) {
			b.SetBytes(int64(len(text.data)))
			var v Validator
			for b.Loop() {
				v.Reset()
				v.Write(text.data)
			}
		})
		b.Run(text.name+"/utf8.Valid", func(b *testing.B) {
			b.SetBytes(int64(len(text.data)))
			for b.Loop() {
				utf8.Valid(text.data)
			}
		})
	}
}

// cut repeats s to n bytes; the last sequence may be left incomplete, as
// in a fragment.
func cut(s string, n int) []byte {
	return []byte(strings.Repeat(s, n/len(s)+1)[:n])
}
