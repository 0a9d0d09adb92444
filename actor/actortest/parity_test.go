package actortest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/actor/actortest"
)

type extHeader struct{ actor.BaseHandler }

func (extHeader) Connect(h *actor.Handshake) error {
	h.Header.Set("Sec-WebSocket-Extensions", "x-custom")
	return nil
}

// A Sec-WebSocket-Extensions header set by Connect: 500 from both.
func TestConnectParityExtensionsHeader(t *testing.T) {
	got, err := actortest.Connect(extHeader{}, httptest.NewRequest(http.MethodGet, "/ws", nil))
	require.NotNil(t, got)
	srv := serve(t, extHeader{})
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, derr := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if ws != nil {
		ws.Close()
	}
	require.NotNil(t, resp, "%v", derr)
	assert.Equal(t, resp.StatusCode, got.StatusCode, "err %v", err)
}

// A nil handler: 500 from both.
func TestConnectParityNilHandler(t *testing.T) {
	got, err := actortest.Connect(nil, httptest.NewRequest(http.MethodGet, "/ws", nil))
	assert.Error(t, err)
	assert.Equal(t, 500, got.StatusCode)
}
