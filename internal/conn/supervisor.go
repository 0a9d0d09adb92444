package conn

import (
	"context"
	"errors"

	protoactor "github.com/asynkron/protoactor-go/actor"
)

// ErrSupervisorStopped is returned by [Supervisor.Spawn] once the
// supervisor has stopped.
var ErrSupervisorStopped = errors.New("protows: supervisor stopped")

// StopOnFailure is the supervisor strategy for connection actors: a
// connection whose callback failed is stopped, which closes its socket with
// 1011 and calls Terminate with ReasonError. Its siblings are not touched.
// The decision is published on the event stream as a
// *protoactor.SupervisorEvent.
var StopOnFailure protoactor.SupervisorStrategy = stopOnFailure{}

type stopOnFailure struct{}

func (stopOnFailure) HandleFailure(sys *protoactor.ActorSystem, sup protoactor.Supervisor, child *protoactor.PID, _ *protoactor.RestartStatistics, reason, _ any) {
	sys.EventStream.Publish(&protoactor.SupervisorEvent{Child: child, Reason: reason, Directive: protoactor.StopDirective})
	sup.StopChildren(child)
}

// Supervisor is a parent actor for connection actors: it spawns them as its
// children under a strategy ([StopOnFailure] unless told otherwise), sends
// messages to all of them, and stops them with itself. proto.actor ignores
// a supervisor strategy for actors spawned at the root, hence this parent.
type Supervisor struct {
	sys  *protoactor.ActorSystem
	pid  *protoactor.PID
	done chan struct{}

	// Owned by receive.
	drainMsg      any             // sent to every child, also those spawned later
	drained       []chan struct{} // closed once there are no children
	stopWhenEmpty bool
}

type (
	spawnChild struct {
		props *protoactor.Props
		reply chan *protoactor.PID
	}
	broadcast struct{ msg any }
	countAsk  struct{ reply chan int }
	drainReq  struct {
		msg   any
		reply chan struct{}
	}
	stopWhenEmpty struct{}
)

// NewSupervisor spawns a supervisor in sys. A nil strategy means
// [StopOnFailure].
func NewSupervisor(sys *protoactor.ActorSystem, strategy protoactor.SupervisorStrategy) *Supervisor {
	if strategy == nil {
		strategy = StopOnFailure
	}
	s := &Supervisor{sys: sys, done: make(chan struct{})}
	props := protoactor.PropsFromFunc(s.receive, protoactor.WithSupervisor(strategy))
	s.pid = sys.Root.SpawnPrefix(props, "protows")
	return s
}

func (s *Supervisor) receive(ctx protoactor.Context) {
	switch m := ctx.Message().(type) {
	case *spawnChild:
		pid := ctx.Spawn(m.props)
		if s.drainMsg != nil {
			ctx.Send(pid, s.drainMsg)
		}
		m.reply <- pid
	case *drainReq:
		s.drainMsg = m.msg
		s.drained = append(s.drained, m.reply)
		for _, pid := range ctx.Children() {
			ctx.Send(pid, m.msg)
		}
		s.checkDrained(ctx)
	case *protoactor.Terminated:
		s.checkDrained(ctx)
	case stopWhenEmpty:
		s.stopWhenEmpty = true
		s.checkDrained(ctx)
	case *broadcast:
		for _, pid := range ctx.Children() {
			ctx.Send(pid, m.msg)
		}
	case *countAsk:
		m.reply <- len(ctx.Children())
	case *protoactor.Stopped:
		close(s.done)
	}
}

func (s *Supervisor) checkDrained(ctx protoactor.Context) {
	if len(ctx.Children()) > 0 {
		return
	}
	for _, ch := range s.drained {
		close(ch)
	}
	s.drained = nil
	if s.stopWhenEmpty {
		ctx.Stop(ctx.Self())
	}
}

// StopWhenEmpty makes the supervisor stop itself once it has no children
// (at once if it has none now), as a parent dedicated to one actor should.
func (s *Supervisor) StopWhenEmpty() { s.sys.Root.Send(s.pid, stopWhenEmpty{}) }

// Drain sends msg to every child, and to every child spawned from now on,
// then waits until no child is left or ctx expires. Send a message that
// makes connections close, such as *[actor.Shutdown].
func (s *Supervisor) Drain(ctx context.Context, msg any) error {
	req := &drainReq{msg: msg, reply: make(chan struct{})}
	s.sys.Root.Send(s.pid, req)
	select {
	case <-req.reply:
		return nil
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PID returns the supervisor's PID.
func (s *Supervisor) PID() *protoactor.PID { return s.pid }

// Spawn starts props as a child and returns its PID.
func (s *Supervisor) Spawn(props *protoactor.Props) (*protoactor.PID, error) {
	req := &spawnChild{props: props, reply: make(chan *protoactor.PID, 1)}
	s.sys.Root.Send(s.pid, req)
	select {
	case pid := <-req.reply:
		return pid, nil
	case <-s.done:
		return nil, ErrSupervisorStopped
	}
}

// Broadcast sends msg to every child.
func (s *Supervisor) Broadcast(msg any) { s.sys.Root.Send(s.pid, &broadcast{msg: msg}) }

// Children returns how many children are alive.
func (s *Supervisor) Children(ctx context.Context) (int, error) {
	req := &countAsk{reply: make(chan int, 1)}
	s.sys.Root.Send(s.pid, req)
	select {
	case n := <-req.reply:
		return n, nil
	case <-s.done:
		return 0, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Stop stops every child (each closes its socket, with 1001 unless it was
// closing already) and then the supervisor, and waits until that is done or
// ctx expires.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.sys.Root.Stop(s.pid)
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed once the supervisor and all its children have stopped.
func (s *Supervisor) Done() <-chan struct{} { return s.done }
