package wsactor

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/protows/protows/supervision"
)

// SystemLogger routes proto.actor's own logging through l, for
// protoactor.NewActorSystem:
//
//	sys := protoactor.NewActorSystem(wsactor.SystemLogger(logger))
//
// proto.actor's default logger writes coloured text to stderr whatever it
// is connected to; l decides the format and the destination (nil:
// slog.Default()). Every record
// carries the actor system's id (attribute "system"). proto.actor logs a
// few normal events as errors; SystemLogger gives them their real level:
//
//   - a cluster member's own health server closing at shutdown, and a
//     remote link closed because this member or the peer is shutting
//     down: INFO;
//   - a health check of a peer that fails because the peer went away (the
//     cluster provider then drops it): WARN;
//   - a supervisor restarting a client connection after a disconnect
//     ("[ACTOR] Recovering"), which protows's supervision already logs as
//     one line per decision: DEBUG. A restart after any other failure (a
//     panic in an actor of yours) keeps its level.
func SystemLogger(l *slog.Logger) protoactor.ConfigOption {
	if l == nil {
		l = slog.Default()
	}
	return protoactor.WithLoggerFactory(func(sys *protoactor.ActorSystem) *slog.Logger {
		return slog.New(&systemHandler{h: l.Handler()}).With(slog.String("system", sys.ID))
	})
}

// systemHandler re-levels proto.actor's records (see SystemLogger).
type systemHandler struct{ h slog.Handler }

func (s *systemHandler) Enabled(ctx context.Context, level slog.Level) bool {
	// A record may be lowered, never raised: ask for the lowest level a
	// record at this level may end at, once it is known.
	return s.h.Enabled(ctx, level) || level >= slog.LevelWarn
}

func (s *systemHandler) Handle(ctx context.Context, r slog.Record) error {
	if level, ok := relevel(r); ok && level != r.Level {
		r = r.Clone()
		r.Level = level
	}
	if !s.h.Enabled(ctx, r.Level) {
		return nil
	}
	return s.h.Handle(ctx, r)
}

func (s *systemHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &systemHandler{h: s.h.WithAttrs(as)}
}

func (s *systemHandler) WithGroup(name string) slog.Handler {
	return &systemHandler{h: s.h.WithGroup(name)}
}

// attr returns the value of a record's attribute key, or nil.
func attr(r slog.Record, key string) any {
	var v any
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.Any()
			return false
		}
		return true
	})
	return v
}

// relevel returns the level a proto.actor record really has, for those
// it logs at the wrong one. Only these messages' attributes are read.
func relevel(r slog.Record) (slog.Level, bool) {
	errText := func() string { return fmt.Sprint(attr(r, "error")) }
	switch r.Message {
	case "Automanaged server stopping..!":
		if strings.Contains(errText(), "Server closed") {
			return slog.LevelInfo, true
		}
	case "EndpointWriter lost connection":
		if e := errText(); strings.Contains(e, "the client connection is closing") || strings.Contains(e, "graceful_stop") {
			return slog.LevelInfo, true
		}
	case "Bad connection to the node health status":
		return slog.LevelWarn, true
	case "[ACTOR] Recovering":
		// A client connection's disconnect, which protows's supervision
		// logs itself; any other failure keeps its level.
		if _, ok := attr(r, "reason").(*supervision.Disconnect); ok {
			return slog.LevelDebug, true
		}
	}
	return r.Level, false
}
