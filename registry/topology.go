package registry

import (
	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"
)

// eventstreamSub is an actor's subscription to cluster topology events,
// which arrive in its mailbox as *topology.
type eventstreamSub struct {
	es  *eventstream.EventStream
	sub *eventstream.Subscription
}

func subscribeTopology(ctx protoactor.Context) *eventstreamSub {
	sys, self := ctx.ActorSystem(), ctx.Self()
	es := sys.EventStream
	sub := es.Subscribe(func(evt any) {
		if t, ok := evt.(*cluster.ClusterTopology); ok {
			sys.Root.Send(self, &topology{t: t})
		}
	})
	return &eventstreamSub{es: es, sub: sub}
}

func (s *eventstreamSub) stop() {
	if s != nil {
		s.es.Unsubscribe(s.sub)
	}
}
