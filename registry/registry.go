package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/internal/actorhook"
)

// Errors, compared with errors.Is.
var (
	// ErrNotFound: no actor holds the name. The error returned names it
	// (protows: no such name "alice"); compare with errors.Is.
	ErrNotFound = errors.New("protows: no such name")
	// ErrNameTaken: the name is held by another actor and the registry
	// rejects newcomers.
	ErrNameTaken = errors.New("protows: name already taken")
	// ErrNotOwner: Unregister by an actor that does not hold the name.
	ErrNotOwner = errors.New("protows: name held by another actor")
	// ErrStopped: the registry has been stopped.
	ErrStopped = errors.New("protows: registry stopped")
	// ErrInvalidName: a name or group is empty or longer than [MaxNameLen].
	ErrInvalidName = errors.New("protows: invalid name")
	// ErrNotLocal: a cluster registry registers, and adds to groups, only
	// actors of its own member (the member that speaks for an actor's
	// entries is the one it runs on). Call the registry of the actor's
	// member.
	ErrNotLocal = errors.New("protows: the actor runs on another member")
	// ErrExpelled: the cluster dropped this member (it was unreachable for
	// longer than the cluster provider allows) and will not let it back
	// in; the registry takes no new names or memberships. Restart the
	// member. See [Cluster.Expelled].
	ErrExpelled = errors.New("protows: this member was dropped from the cluster")
	// ErrTooLarge: a message for an actor on another member is larger
	// than [MaxMessageSize] once encoded; it was not sent.
	ErrTooLarge = errors.New("protows: message too large to cross members")
	// ErrBacklog: a cluster registry holds too many messages (16 MB) for
	// a member that has not acknowledged the earlier ones (it hangs, or
	// its link is down); the message was not sent. See [Cluster].
	ErrBacklog = errors.New("protows: too many messages wait for a member")
	// ErrMetaTooLarge: a presence meta is longer than [MaxMetaSize].
	ErrMetaTooLarge = errors.New("protows: presence meta too large")
)

// MaxNameLen is the longest name or group, in bytes.
const MaxNameLen = 512

// DefaultConflictCode is the close code a cluster registry sends, in an
// *actor.CloseRequest, to the holder of a name that loses a concurrent
// claim under [Reject].
const DefaultConflictCode actor.CloseCode = 4009

// Registry holds unique names and groups of actors. A name or membership is
// released when its actor stops. Every method may be called from any
// goroutine; those that wait take a context.
type Registry interface {
	// Register gives pid the name. When another live actor holds it, the
	// conflict policy decides: ErrNameTaken, or the other actor is asked to
	// close (see [Replace]) and pid takes the name.
	Register(ctx context.Context, name string, pid *protoactor.PID) error
	// Unregister releases the name if pid holds it.
	Unregister(ctx context.Context, name string, pid *protoactor.PID) error
	// Lookup returns the holder of name, or ErrNotFound.
	Lookup(ctx context.Context, name string) (*protoactor.PID, error)
	// SendTo delivers msg to the holder of name, or returns ErrNotFound.
	SendTo(ctx context.Context, name string, msg any) error
	// Join adds pid to group. An actor may be in many groups.
	Join(ctx context.Context, group string, pid *protoactor.PID) error
	// Leave removes pid from group.
	Leave(ctx context.Context, group string, pid *protoactor.PID) error
	// Publish sends msg to every member of group. Messages published by one
	// caller reach each member in the order they were published. An
	// actor.Frame sent to more than one actor of a node is prepared
	// (actor.Prepare): server connections that push it write one shared
	// encoding, framed and compressed once. Members receive it with the
	// same Type and Data; reflect.DeepEqual tells it from the frame
	// published.
	Publish(ctx context.Context, group string, msg any) error
	// PublishFrom sends msg to every member of group except from (Phoenix's
	// broadcast_from: a connection tells the others in its room). from is
	// matched by address and id, may run on any member, and may be nil
	// (then it is Publish); a caller's Publish and PublishFrom reach each
	// member in the order they were made.
	PublishFrom(ctx context.Context, group string, from *protoactor.PID, msg any) error
	// Members returns the members of group.
	Members(ctx context.Context, group string) ([]*protoactor.PID, error)

	// Track adds pid to group as Join does, and to the group's presence
	// under key (a user name, for example) with meta, a small value (JSON
	// or protobuf bytes, at most [MaxMetaSize]) copied to every member of
	// a cluster. One key may hold several actors, each with its meta.
	// Tracking an actor again changes its key or meta (subscribers see
	// its old entry leave and the new one join); Leave, or the actor's
	// stop, removes it. Members joined with Join are in the group but not
	// in its presence; Join of a tracked member leaves it tracked.
	Track(ctx context.Context, group, key string, pid *protoactor.PID, meta []byte) error
	// Presence returns group's presence: key -> entries, each key's in PID
	// order, in a map of the caller's own. It reads the local copy.
	Presence(ctx context.Context, group string) (map[string][]actor.Presence, error)
	// SubscribePresence has group's presence sent to pid: first an
	// *actor.PresenceState with every entry now tracked, then an
	// *actor.PresenceDiff for each batch of changes, on any member, that
	// follows (at most one every presence interval, see
	// [WithPresenceInterval]), with no gap and no duplicate. Each member's
	// changes are applied in the order they were made; an entry changed
	// more than once within a batch shows its net change. Subscribing
	// again does nothing; the subscription ends when pid stops or
	// unsubscribes.
	SubscribePresence(ctx context.Context, group string, pid *protoactor.PID) error
	// UnsubscribePresence ends pid's subscription to group's presence.
	// Diffs sent before it returns may still wait in pid's mailbox.
	UnsubscribePresence(ctx context.Context, group string, pid *protoactor.PID) error
}

// Conflict is what a registry does when a name is registered that a live
// actor already holds.
type Conflict struct {
	replace bool
	code    actor.CloseCode
	reason  string
}

// Reject refuses the newcomer with ErrNameTaken. The default.
//
// In a cluster, two members can give the same name to two actors at once
// (or on both sides of a partition) before they hear of each other's
// claim. When they do, Reject keeps the claim made earlier (by the
// claiming members' hybrid logical clocks, ties broken by PID), on every
// member alike, and the other holder is sent an *actor.CloseRequest with
// [DefaultConflictCode] and reason "name taken" (see [RejectWith]).
var Reject = Conflict{code: DefaultConflictCode, reason: "name taken"}

// RejectWith is [Reject] with the close code and reason sent to the loser
// of a concurrent claim in a cluster.
func RejectWith(code actor.CloseCode, reason string) Conflict {
	return Conflict{code: code, reason: reason}
}

// Replace gives the name to the newcomer and sends the previous holder an
// *actor.CloseRequest with code and reason: a connection closes with them
// (a Terminate with ReasonNormal). In a cluster the newer claim wins, by
// the claiming members' hybrid logical clocks: a claim made after its
// member has heard of another is always newer.
func Replace(code actor.CloseCode, reason string) Conflict {
	return Conflict{replace: true, code: code, reason: reason}
}

// String describes the policy.
func (c Conflict) String() string {
	if c.replace {
		return fmt.Sprintf("replace (close %v %q)", c.code, c.reason)
	}
	return "reject"
}

// Option configures a registry.
type Option func(*config)

type config struct {
	conflict Conflict
	digest   time.Duration
	presence time.Duration
}

// WithConflict sets the conflict policy for names (default Reject).
func WithConflict(c Conflict) Option { return func(cfg *config) { cfg.conflict = c } }

// WithSyncInterval sets how often a cluster registry tells the other
// members how far its changes have got (default 1 s). A member that missed
// a change, because a connection between members broke, asks for a full
// copy when it hears this: the interval bounds how long a lost change goes
// unnoticed. The local registry ignores it.
func WithSyncInterval(d time.Duration) Option { return func(cfg *config) { cfg.digest = d } }

// WithPresenceInterval sets how often, at most, a presence subscriber
// receives a diff of one group (default [DefaultPresenceInterval], 50 ms).
// A change made after a quiet interval of its group is sent at once;
// changes that follow it within the interval are batched into the next
// diff. Shorter intervals deliver sooner and send more messages.
func WithPresenceInterval(d time.Duration) Option {
	return func(cfg *config) { cfg.presence = d }
}

func newConfig(opts []Option) (*config, error) {
	cfg := &config{conflict: Reject, digest: time.Second, presence: DefaultPresenceInterval}
	for _, o := range opts {
		o(cfg)
	}
	if cfg.digest <= 0 {
		return nil, fmt.Errorf("protows: sync interval %v is not positive", cfg.digest)
	}
	if cfg.presence <= 0 {
		return nil, fmt.Errorf("protows: presence interval %v is not positive", cfg.presence)
	}
	if !cfg.conflict.replace && cfg.conflict.code == 0 {
		cfg.conflict = Reject
	}
	if !cfg.conflict.code.Sendable() {
		return nil, fmt.Errorf("protows: close code %d cannot be sent", cfg.conflict.code)
	}
	return cfg, nil
}

// key identifies a PID in maps.
type key struct{ address, id string }

func keyOf(pid *protoactor.PID) key { return key{pid.Address, pid.Id} }

func validName(kind, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidName, kind)
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%w: %s of %d bytes (at most %d)", ErrInvalidName, kind, len(s), MaxNameLen)
	}
	return nil
}

// validEntry checks a name or group and the PID it is for.
func validEntry(kind, s string, pid *protoactor.PID) error {
	if pid == nil {
		return fmt.Errorf("protows: nil PID for %s %q", kind, s)
	}
	return validName(kind, s)
}

// holdings are the names and groups one actor has in a registry.
type holdings struct {
	pid    *protoactor.PID
	names  strSet
	groups strSet
	subs   strSet // groups whose presence it subscribes to
}

// strSet is a set of strings that costs a slice while it is small (an
// actor holds a name or two and a few groups) and a map past smallSet
// members. The zero value is an empty set.
type strSet struct {
	list []string
	m    map[string]struct{}
}

const smallSet = 8

func (s *strSet) add(v string) {
	switch {
	case s.m != nil:
		s.m[v] = struct{}{}
	case slices.Contains(s.list, v):
	case len(s.list) < smallSet:
		s.list = append(s.list, v)
	default:
		s.m = make(map[string]struct{}, 2*smallSet)
		for _, x := range s.list {
			s.m[x] = struct{}{}
		}
		s.m[v] = struct{}{}
		s.list = nil
	}
}

func (s *strSet) remove(v string) {
	if s.m != nil {
		delete(s.m, v)
		return
	}
	if i := slices.Index(s.list, v); i >= 0 {
		last := len(s.list) - 1
		s.list[i] = s.list[last]
		s.list[last] = ""
		s.list = s.list[:last]
	}
}

func (s *strSet) empty() bool { return len(s.m) == 0 && len(s.list) == 0 }

// all returns the members, in a slice of their own: the set may change
// while the caller goes through them.
func (s *strSet) all() []string {
	if s.m != nil {
		return slices.Collect(maps.Keys(s.m))
	}
	return slices.Clone(s.list)
}

// ledger records what each actor a registry actor knows holds, and learns
// once of each actor when it stops, so that all of it is released then.
// It belongs to the registry actor.
type ledger map[key]*holdings

// of returns pid's holdings, and the first time pid is seen arranges to
// hear of its stop: from the actor's stop notice when the request came
// with one (a protows connection's, for itself: see actorhook.StopNotice),
// else by watching it. Either way the registry actor gets a
// *protoactor.Terminated for pid.
func (l ledger) of(ctx protoactor.Context, pid *protoactor.PID, notice *actorhook.StopNotice) *holdings {
	k := keyOf(pid)
	h, ok := l[k]
	if !ok {
		h = &holdings{pid: pid}
		l[k] = h
		sys, self := ctx.ActorSystem(), ctx.Self()
		if notice == nil || !notice.Add(self, func() { sys.Root.Send(self, &protoactor.Terminated{Who: pid}) }) {
			ctx.Watch(pid)
		}
	}
	return h
}

// noticeFor returns the stop notice ctx carries when it is pid's own (a
// connection registering itself; see actorhook.StopNotice), or nil.
func noticeFor(ctx context.Context, pid *protoactor.PID) *actorhook.StopNotice {
	n := actorhook.StopNoticeOf(ctx)
	if n == nil || !n.For(pid) {
		return nil
	}
	return n
}

// notFound is ErrNotFound for name.
func notFound(name string) error { return fmt.Errorf("%w %q", ErrNotFound, name) }
