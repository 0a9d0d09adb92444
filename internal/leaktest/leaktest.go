// Package leaktest holds the goroutine-leak check every test package of
// protows runs in its TestMain.
package leaktest

import (
	"testing"

	"go.uber.org/goleak"
)

// ignored are proto.actor goroutines that outlive a test by design:
//
//   - the dead-letter throttle: the first dead letter of each period (1 s by
//     default) starts a goroutine that sleeps out the period to count what
//     it throttled. A message to a stopped actor, or a Watch of one, is
//     enough to start it.
var ignored = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
}

// clusterIgnored are the goroutines proto.actor's cluster and remote
// packages leave behind after Cluster.Shutdown, checked against
// github.com/asynkron/protoactor-go v0.0.0-20240822202345-3c0e61ca19c9:
//
//   - gossip throttles (Gossiper.StartGossiping, NewGossipActor): like the
//     dead-letter throttle, they sleep out their period;
//   - the in-memory test provider's TTL loop: Shutdown stops its ticker,
//     which does not end a `for range ticker.C`, so it never returns;
//   - gRPC client connections of remote endpoints, which Remote.Shutdown
//     does not close: their callback serializers, and their reconnect loops
//     towards members that are gone;
//   - the etcd provider's etcd client, which it creates and never closes
//     (the field is unexported): its lease loops and its gRPC connection;
//     and its keepalive loop, which sleeps out its 1 s retry interval
//     before it sees the shutdown.
var clusterIgnored = append([]goleak.Option{
	goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd.(*Provider).startKeepAlive.func1"),
	goleak.IgnoreTopFunction("go.etcd.io/etcd/client/v3.(*lessor).deadlineLoop"),
	goleak.IgnoreTopFunction("go.etcd.io/etcd/client/v3.(*lessor).sendKeepAliveLoop"),
	goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/transport.(*http2Client).reader"),
	goleak.IgnoreTopFunction("google.golang.org/grpc/internal/transport.(*controlBuffer).get"),
	goleak.IgnoreTopFunction("google.golang.org/grpc/internal/transport.(*recvBufferReader).readClient"),
	goleak.IgnoreTopFunction("google.golang.org/grpc.newClientStreamWithParams.func4"),
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster.(*Gossiper).StartGossiping.NewThrottle.func3.1"),
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster.NewGossipActor.NewThrottleWithLogger.func2.1"),
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster/clusterproviders/test.(*Provider).startTtlReport.func1"),
	goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	goleak.IgnoreTopFunction("google.golang.org/grpc.(*addrConn).resetTransport"),
}, ignored...)

// VerifyTestMain runs the package's tests, then fails if goroutines other
// than the documented proto.actor ones are left.
func VerifyTestMain(m *testing.M) { goleak.VerifyTestMain(m, ignored...) }

// VerifyClusterTestMain is VerifyTestMain for packages whose tests start
// proto.actor clusters: it also allows the cluster's documented leftovers.
func VerifyClusterTestMain(m *testing.M) { goleak.VerifyTestMain(m, clusterIgnored...) }
