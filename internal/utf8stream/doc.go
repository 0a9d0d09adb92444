// Package utf8stream checks the UTF-8 of a websocket text message while it
// arrives, one chunk at a time.
//
// RFC 6455 requires a text message to be valid UTF-8, and conformance
// suites (Autobahn 6.x) expect the endpoint to close with 1007 at the first
// fragment that can no longer begin valid UTF-8, not once the whole message
// has been read. A [Validator] gives that answer after every chunk, with
// the rules of [unicode/utf8.Valid]: no surrogates, no overlong encodings,
// nothing above U+10FFFF. A sequence may be split across any number of
// chunks.
//
//	var v utf8stream.Validator
//	for each chunk of the message {
//		if !v.Write(chunk) {
//			// close with 1007: the text can no longer be valid
//		}
//	}
//	if !v.Complete() {
//		// close with 1007: the message ends inside a sequence
//	}
//	v.Reset() // before the next message
package utf8stream
