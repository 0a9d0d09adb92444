package protows_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exported returns the exported package-level names of the package in dir,
// as go doc lists them: constants, variables, functions (constructors
// included) and types.
func exported(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	require.NoError(t, err)
	require.Len(t, pkgs, 1)
	var files []*ast.File
	for _, p := range pkgs {
		for _, f := range p.Files {
			files = append(files, f)
		}
	}
	p, err := doc.NewFromFiles(fset, files, "example.com/"+dir)
	require.NoError(t, err)
	var names []string
	values := func(vs []*doc.Value) {
		for _, v := range vs {
			names = append(names, v.Names...)
		}
	}
	values(p.Consts)
	values(p.Vars)
	for _, f := range p.Funcs {
		names = append(names, f.Name)
	}
	for _, ty := range p.Types {
		names = append(names, ty.Name)
		values(ty.Consts)
		values(ty.Vars)
		for _, f := range ty.Funcs {
			names = append(names, f.Name)
		}
	}
	sort.Strings(names)
	return names
}

// Package actor holds what handler authors use and nothing else: the
// connection runtime (settings, supervisor, transport, client plumbing,
// metrics) lives in internal/conn, and connection options in wsactor. A
// name added to actor has to be added here, on purpose.
func TestActorPackageListsOnlyHandlerAPI(t *testing.T) {
	want := []string{
		// Handlers and their context.
		"BaseHandler", "ClientHandler", "Connector", "Context", "Handler", "Handshake",
		// Frames.
		"Binary", "BinaryMessage", "ErrNotText", "Frame", "JSON", "MessageType", "PingMessage", "PongMessage", "Prepare", "Text", "TextMessage",
		// Closing, and why a connection ended.
		"CloseAbnormal", "CloseBadGateway", "CloseCode", "CloseError", "CloseGoingAway", "CloseInternalError",
		"CloseInvalidPayload", "CloseMandatoryExtension", "CloseMessageTooBig", "CloseNoStatus", "CloseNormal",
		"ClosePolicyViolation", "CloseProtocolError", "CloseRequest", "CloseServiceRestart", "CloseStatus",
		"CloseTLSHandshake", "CloseTryAgainLater", "CloseUnsupportedData", "PanicError", "ProtocolError",
		"Reason", "ReasonError", "ReasonKind", "ReasonNormal", "ReasonRemote", "ReasonShutdown", "ReasonTimeout",
		"Reject", "RejectError", "Shutdown", "Stop",
		// Errors a callback sees.
		"ErrAborted", "ErrCloseTimeout", "ErrClosed", "ErrDisconnected", "ErrInvalidUTF8", "ErrKeepaliveTimeout",
		"ErrMessageTooBig", "ErrNoDirectory", "ErrOutboxFull",
		// Clients.
		"ConnectResponse", "Decision", "DialError", "DialErrorBodyLimit", "ReconnectAfter", "ReconnectByPolicy",
		"ReconnectNow", "StopReconnecting",
		// The registry as a handler reaches it, and the presence it sends.
		"Directory", "Presence", "PresenceDiff", "PresenceState",
	}
	sort.Strings(want)
	assert.Equal(t, want, exported(t, "actor"))
}

// Each option is defined in one place: connection options in wsactor, none
// in actor; the test kit's own options only say how to run the test, and
// its WithRegistry is wsactor.WithRegistry plus a check.
func TestOptionsDefinedOnce(t *testing.T) {
	options := func(dir string) []string {
		var with []string
		for _, n := range exported(t, dir) {
			if strings.HasPrefix(n, "With") {
				with = append(with, n)
			}
		}
		return with
	}
	assert.Empty(t, options("actor"), "package actor defines options")
	ws := options("wsactor")
	assert.Contains(t, ws, "WithKeepalive")
	for _, dir := range []string{"actor/actortest", "supervision", "registry"} {
		for _, n := range options(dir) {
			if dir == "actor/actortest" && n == "WithRegistry" {
				continue
			}
			assert.False(t, slices.Contains(ws, n), "%s.%s is also wsactor.%s", dir, n, n)
		}
	}
}
