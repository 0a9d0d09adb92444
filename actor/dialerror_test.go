package actor_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/protows/protows/supervision"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
)

func TestDialErrorString(t *testing.T) {
	bad := errors.New("websocket: bad handshake")
	for _, tc := range []struct {
		name string
		err  *actor.DialError
		want string
	}{
		{"body", &actor.DialError{StatusCode: 401, Body: []byte("user required\n"), Err: bad},
			`protows: dial refused with HTTP 401 Unauthorized: "user required"`},
		{"no body", &actor.DialError{StatusCode: 503, Err: bad},
			`protows: dial refused with HTTP 503 Service Unavailable: websocket: bad handshake`},
		{"unknown status", &actor.DialError{StatusCode: 499, Body: []byte("x")},
			`protows: dial refused with HTTP 499: "x"`},
		{"white space collapsed", &actor.DialError{StatusCode: 403, Body: []byte("  <h1>\r\n\tForbidden</h1>\n\n  go away ")},
			`protows: dial refused with HTTP 403 Forbidden: "<h1> Forbidden</h1> go away"`},
		{"control characters and invalid UTF-8 dropped", &actor.DialError{StatusCode: 400, Body: []byte("\x1b[31mred\x1b[0m \xff\xfeok\x00 é")},
			`protows: dial refused with HTTP 400 Bad Request: "[31mred[0m ok é"`},
		{"only white space", &actor.DialError{StatusCode: 404, Body: []byte(" \n "), Err: bad},
			`protows: dial refused with HTTP 404 Not Found: websocket: bad handshake`},
		{"network", &actor.DialError{Err: errors.New("connection refused")},
			`protows: dial failed: connection refused`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.err.Error())
		})
	}
}

func TestDialErrorExcerptIsShort(t *testing.T) {
	body := []byte(strings.Repeat("é", actor.DialErrorBodyLimit/2))
	msg := (&actor.DialError{StatusCode: 401, Body: body}).Error()
	assert.Less(t, len(msg), 200)
	assert.True(t, strings.HasSuffix(msg, `..."`), msg)
	assert.NotContains(t, msg, "\uFFFD", "cut at a rune boundary")
}

func TestDialErrorUnwraps(t *testing.T) {
	cause := errors.New("bad handshake")
	d := &supervision.Disconnect{Reason: actor.Reason{Kind: actor.ReasonError, Code: actor.CloseAbnormal,
		Err: &actor.DialError{StatusCode: 401, Err: cause}}}
	var err error = fmt.Errorf("wrapped: %w", d)
	var de *actor.DialError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 401, de.StatusCode)
	assert.ErrorIs(t, err, cause)
}
