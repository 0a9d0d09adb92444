package utf8stream

import (
	"testing"
	"unicode/utf8"
)

// isPrefixOfValid is the reference the fuzz target checks Write against,
// written without the Validator's logic: prefix can be continued into
// valid UTF-8 if it is valid, or if it becomes valid once some incomplete
// last sequence is finished. Any continuation byte may be the first needed
// (only that one has a narrowed range), and 0x80 always fits the others.
func isPrefixOfValid(prefix []byte) bool {
	if utf8.Valid(prefix) {
		return true
	}
	buf := append([]byte(nil), prefix...)
	for c1 := 0x80; c1 <= 0xBF; c1++ {
		completion := append(buf[:len(prefix)], byte(c1))
		for range 3 {
			if utf8.Valid(completion) {
				return true
			}
			completion = append(completion, 0x80)
		}
	}
	return false
}

// FuzzValidator writes data in pieces, cuts giving the length of each
// piece (the remainder is written last), and checks every answer against
// utf8.Valid and isPrefixOfValid.
func FuzzValidator(f *testing.F) {
	seeds := []struct {
		data string
		cuts []byte
	}{
		{"", nil},
		{"hello", []byte{2}},
		{"κόσμε", []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{"\xf0\x9f\x98\x80", []byte{1, 1, 1}},
		{"\xf0\x9f\x98\x80\xf0\x9f\x98\x80", []byte{3, 3}},
		{"\xe0\x80\x80", []byte{1}},
		{"\xed\xa0\x80", []byte{1, 1}},
		{"\xf4\x90\x80\x80", []byte{2}},
		{"\xf4\x8f\xbf\xbf", []byte{0, 1, 0, 2}},
		{"a\xc0\x80", nil},
		{"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", []byte{5, 7}},
		{"\xc2", nil},
		{"abc\xe2\x82", []byte{4}},
	}
	for _, s := range seeds {
		f.Add([]byte(s.data), s.cuts)
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		var v Validator
		rest, done := data, 0
		failed := false
		write := func(piece []byte) {
			ok := v.Write(piece)
			done += len(piece)
			if failed && ok {
				t.Fatalf("Write(%q) after a failure = true; data %q cuts %v", piece, data, cuts)
			}
			failed = failed || !ok
			if want := isPrefixOfValid(data[:done]); ok != want {
				t.Fatalf("Write(%q) = %v after %q, want %v; data %q cuts %v", piece, ok, data[:done], want, data, cuts)
			}
		}
		for _, c := range cuts {
			n := min(int(c), len(rest))
			write(rest[:n])
			rest = rest[n:]
		}
		write(rest)
		if got, want := v.Complete(), utf8.Valid(data); got != want {
			t.Fatalf("Complete() = %v, want %v; data %q cuts %v", got, want, data, cuts)
		}

		v.Reset()
		if got, want := v.Write(data) && v.Complete(), utf8.Valid(data); got != want {
			t.Fatalf("after Reset, one write: %v, want %v; data %q", got, want, data)
		}
	})
}
