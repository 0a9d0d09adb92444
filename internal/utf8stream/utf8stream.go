package utf8stream

import "unicode/utf8"

// Validator checks text that arrives in pieces. Its zero value is ready to
// use; it does not allocate.
//
// Only the bytes of a sequence left incomplete at the end of a write are
// kept (at most 3); the bulk of every write goes through [utf8.Valid],
// whose ASCII fast path a hand-written state machine would not match.
type Validator struct {
	pending [3]byte // start of a sequence that the next write must finish
	n       uint8   // how many bytes of pending are in use
	failed  bool
}

// Write reports whether everything written so far is still the prefix of
// some valid UTF-8 text. Once it reports false the Validator stays failed
// until [Validator.Reset].
func (v *Validator) Write(p []byte) bool {
	if v.failed {
		return false
	}
	if v.n > 0 {
		// Finish the carried sequence byte by byte, so that the rest of p
		// starts on a sequence boundary.
		need := seqLen(v.pending[0])
		for int(v.n) < need {
			if len(p) == 0 {
				return true
			}
			lo, hi := byte(0x80), byte(0xBF)
			if v.n == 1 {
				lo, hi = secondRange(v.pending[0])
			}
			if p[0] < lo || p[0] > hi {
				v.failed = true
				return false
			}
			if int(v.n)+1 == need {
				v.n = 0
				p = p[1:]
				break
			}
			v.pending[v.n] = p[0]
			v.n++
			p = p[1:]
		}
	}

	// An incomplete sequence can only start in the last 3 bytes: find the
	// last byte there that is not a continuation byte.
	i, stop := len(p)-1, max(len(p)-3, 0)
	for i >= stop && p[i]&0xC0 == 0x80 {
		i--
	}
	if i >= stop && seqLen(p[i]) > len(p)-i {
		if !utf8.Valid(p[:i]) || !validStart(p[i:]) {
			v.failed = true
			return false
		}
		v.n = uint8(copy(v.pending[:], p[i:]))
		return true
	}
	if !utf8.Valid(p) {
		v.failed = true
		return false
	}
	return true
}

// Complete reports whether everything written so far is valid UTF-8 with
// no sequence left incomplete. Call it at the end of the message.
func (v *Validator) Complete() bool {
	return !v.failed && v.n == 0
}

// Reset readies the Validator for a new message.
func (v *Validator) Reset() {
	*v = Validator{}
}

// seqLen is the length of the sequence that lead starts, or 0 if lead
// cannot start one (a continuation byte, 0xC0, 0xC1, 0xF5 and above).
func seqLen(lead byte) int {
	switch {
	case lead < 0x80:
		return 1
	case lead < 0xC2:
		return 0
	case lead < 0xE0:
		return 2
	case lead < 0xF0:
		return 3
	case lead < 0xF5:
		return 4
	}
	return 0
}

// secondRange is the range the byte after lead must fall in. It is
// narrower than 0x80..0xBF after the leads whose sequences could otherwise
// be overlong (E0, F0), a surrogate (ED) or above U+10FFFF (F4).
func secondRange(lead byte) (lo, hi byte) {
	switch lead {
	case 0xE0:
		return 0xA0, 0xBF
	case 0xED:
		return 0x80, 0x9F
	case 0xF0:
		return 0x90, 0xBF
	case 0xF4:
		return 0x80, 0x8F
	}
	return 0x80, 0xBF
}

// validStart reports whether s, shorter than the sequence its first byte
// announces, can still be completed.
func validStart(s []byte) bool {
	if seqLen(s[0]) < 2 {
		return false
	}
	if len(s) > 1 {
		if lo, hi := secondRange(s[0]); s[1] < lo || s[1] > hi {
			return false
		}
	}
	for _, b := range s[min(len(s), 2):] {
		if b&0xC0 != 0x80 {
			return false
		}
	}
	return true
}
