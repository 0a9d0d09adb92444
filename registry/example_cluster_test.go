package registry_test

import (
	"context"
	"log"
	"net/http"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/protows/protows/actor"
	"github.com/protows/protows/registry"
	"github.com/protows/protows/wsactor"
)

// One member of a three-node cluster (run the same program on each node
// with its own address): connections served here reach, by name and by
// group, connections served on the other nodes. examples/chat is the whole
// program.
func ExampleNewCluster() {
	sys := protoactor.NewActorSystem()
	provider := automanaged.NewWithConfig(time.Second, 6331, "10.0.0.1:6331", "10.0.0.2:6331", "10.0.0.3:6331")
	c := cluster.New(sys, cluster.Configure("chat", provider, disthash.New(), remote.Configure("10.0.0.1", 6330)))
	c.StartMember()
	defer c.Shutdown(true)

	reg, err := registry.NewCluster(c)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := reg.WaitSynced(ctx); err != nil {
		log.Print("serving before every member's entries are here: ", err)
	}

	srv, err := wsactor.NewServer(sys, func() actor.Handler { return &actor.BaseHandler{} }, wsactor.WithRegistry(reg))
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		// The cluster dropped this member (it hung for too long): it is
		// never let back in. Close the connections with 1012 and restart.
		<-reg.Expelled()
		_ = srv.ShutdownForRestart(context.Background())
		log.Fatal("dropped from the cluster; restarting")
	}()
	log.Fatal(http.ListenAndServe(":8080", srv))
}
