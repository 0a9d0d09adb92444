package actor

import (
	"errors"
	"fmt"
	"strconv"
)

// CloseCode is a websocket close status code (RFC 6455 section 7.4).
type CloseCode uint16

// Close codes. CloseNoStatus, CloseAbnormal and CloseTLSHandshake are never
// sent on the wire: they describe a connection that ended without a close
// frame.
const (
	CloseNormal             CloseCode = 1000
	CloseGoingAway          CloseCode = 1001
	CloseProtocolError      CloseCode = 1002
	CloseUnsupportedData    CloseCode = 1003
	CloseNoStatus           CloseCode = 1005
	CloseAbnormal           CloseCode = 1006
	CloseInvalidPayload     CloseCode = 1007
	ClosePolicyViolation    CloseCode = 1008
	CloseMessageTooBig      CloseCode = 1009
	CloseMandatoryExtension CloseCode = 1010
	CloseInternalError      CloseCode = 1011
	CloseServiceRestart     CloseCode = 1012
	CloseTryAgainLater      CloseCode = 1013
	CloseBadGateway         CloseCode = 1014
	CloseTLSHandshake       CloseCode = 1015
)

var closeCodeNames = map[CloseCode]string{
	CloseNormal:             "normal closure",
	CloseGoingAway:          "going away",
	CloseProtocolError:      "protocol error",
	CloseUnsupportedData:    "unsupported data",
	CloseNoStatus:           "no status",
	CloseAbnormal:           "abnormal closure",
	CloseInvalidPayload:     "invalid payload",
	ClosePolicyViolation:    "policy violation",
	CloseMessageTooBig:      "message too big",
	CloseMandatoryExtension: "mandatory extension",
	CloseInternalError:      "internal error",
	CloseServiceRestart:     "service restart",
	CloseTryAgainLater:      "try again later",
	CloseBadGateway:         "bad gateway",
	CloseTLSHandshake:       "TLS handshake",
}

// String returns the code and its name, e.g. "1008 (policy violation)".
func (c CloseCode) String() string {
	if name, ok := closeCodeNames[c]; ok {
		return strconv.Itoa(int(c)) + " (" + name + ")"
	}
	return strconv.Itoa(int(c))
}

// Sendable reports whether c may be sent in a close frame: the defined codes
// other than 1004-1006 and 1015, and the registered (3000-3999) and private
// (4000-4999) ranges.
func (c CloseCode) Sendable() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// Shutdown asks a connection actor to close with Code and Reason, as a
// server does when it shuts down; Terminate sees ReasonShutdown. Any actor
// may send it to a connection's PID.
type Shutdown struct {
	Code   CloseCode
	Reason string
}

// CloseError is a close with a code and reason. A callback returns one (see
// [Stop]) to close its connection; a peer's close arrives as one in
// [Reason].
type CloseError struct {
	Code   CloseCode
	Reason string
}

// Error formats the close, e.g. "protows: close 1008 (policy violation): bad token".
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return "protows: close " + e.Code.String()
	}
	return "protows: close " + e.Code.String() + ": " + e.Reason
}

// Stop returns the error a callback returns to close its connection with
// code and reason. Frames pushed before the call are still sent; frames
// pushed after it are not. The reason is cut to the 123 bytes a close frame
// holds.
func Stop(code CloseCode, reason string) error {
	return &CloseError{Code: code, Reason: reason}
}

// CloseStatus returns the code of the *CloseError in err's chain, or 0 when
// there is none.
func CloseStatus(err error) CloseCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// Errors reported by connections. Compare with errors.Is.
var (
	// ErrClosed is returned by Push and Close once the connection is closing:
	// the frame was not queued and will not be sent.
	ErrClosed = errors.New("protows: connection closed")
	// ErrOutboxFull is returned by Push when the outbound queue is full; the
	// overflow policy says what happened to the frame and the connection.
	ErrOutboxFull = errors.New("protows: outbound queue full")
	// ErrInvalidUTF8 ends a connection whose peer sent a text message that is
	// not valid UTF-8 (close code 1007).
	ErrInvalidUTF8 = errors.New("protows: invalid UTF-8 in text message")
	// ErrMessageTooBig ends a connection whose peer sent a message over the
	// read limit (close code 1009).
	ErrMessageTooBig = errors.New("protows: message exceeds the read limit")
	// ErrKeepaliveTimeout ends a connection that answered no ping with a
	// pong, or any data, within the pong timeout.
	ErrKeepaliveTimeout = errors.New("protows: no pong or data within the pong timeout")
	// ErrAborted is the Err of the Reason of a connection its handler
	// aborted with [Context.Abort]: dropped without a close handshake.
	ErrAborted = errors.New("protows: connection aborted")
	// ErrCloseTimeout is logged when a peer did not answer a close frame
	// within the close timeout; the connection is then dropped.
	ErrCloseTimeout = errors.New("protows: peer did not complete the close handshake in time")
)

// ProtocolError is why a connection ended when the peer broke the
// protocol (a bad frame, invalid UTF-8 in a text message, a message over the
// read limit); a close frame with Code has been sent. Terminate's
// [Reason] carries it as Err.
type ProtocolError struct {
	Code CloseCode
	Err  error
}

// Error describes the violation.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("protows: protocol error (close %s): %v", e.Code, e.Err)
}

// Unwrap returns the underlying error.
func (e *ProtocolError) Unwrap() error { return e.Err }

// PanicError is the failure recorded when a callback panics.
type PanicError struct {
	Value any
	Stack []byte
}

// Error formats the panic value.
func (e *PanicError) Error() string { return fmt.Sprintf("protows: callback panicked: %v", e.Value) }

// ReasonKind says why a connection ended.
type ReasonKind uint8

// Reason kinds, as passed to [Handler.Terminate].
const (
	// ReasonNormal: this side closed the connection: a callback returned a
	// [CloseError] or called [Context.Close].
	ReasonNormal ReasonKind = iota + 1
	// ReasonRemote: the peer sent a close frame with Code and Text.
	ReasonRemote
	// ReasonTimeout: the keepalive saw no pong or data in time.
	ReasonTimeout
	// ReasonShutdown: the server shut down or the actor was stopped from
	// outside.
	ReasonShutdown
	// ReasonError: a callback failed (1011), the peer broke the protocol
	// (1002, 1007, 1009), the outbound queue overflowed (1013), or the
	// network failed (1006). Err says which.
	ReasonError
)

// String returns the kind's name.
func (k ReasonKind) String() string {
	switch k {
	case ReasonNormal:
		return "normal"
	case ReasonRemote:
		return "remote"
	case ReasonTimeout:
		return "timeout"
	case ReasonShutdown:
		return "shutdown"
	case ReasonError:
		return "error"
	}
	return "ReasonKind(" + strconv.Itoa(int(k)) + ")"
}

// Reason is why a connection ended: its kind, the close code that was sent
// or received (CloseAbnormal when there was no close frame), the close
// reason text, and for ReasonError and ReasonTimeout the error.
type Reason struct {
	Kind ReasonKind
	Code CloseCode
	Text string
	Err  error
}

// String formats the reason for logs.
func (r Reason) String() string {
	s := r.Kind.String() + " " + r.Code.String()
	if r.Text != "" {
		s += " " + strconv.Quote(r.Text)
	}
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	return s
}
