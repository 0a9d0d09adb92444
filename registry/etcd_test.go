package registry_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// TestClusterOnEtcd runs the two-member checks with a real etcd server as
// the cluster provider. bash .ci/run installs Debian's etcd-server, starts
// it on loopback and sets PROTOWS_ETCD.
func TestClusterOnEtcd(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // each test has its own cluster; most of their time is proto.actor sleeping at start and stop
	endpoint := os.Getenv("PROTOWS_ETCD")
	if endpoint == "" {
		t.Skip("needs an etcd server: apt-get install etcd-server, start it, and set PROTOWS_ETCD=127.0.0.1:2379 (bash .ci/run does all three)")
	}
	base := fmt.Sprintf("/protows-test/%d", time.Now().UnixNano())
	provider := func() *etcd.Provider {
		p, err := etcd.NewWithConfig(base, clientv3.Config{
			Endpoints:   []string{endpoint},
			DialTimeout: 5 * time.Second,
			// Without blocking, an unreachable etcd makes StartMember hang.
			DialOptions: []grpc.DialOption{grpc.WithBlock()},
		})
		require.NoError(t, err)
		return p
	}
	a := startMember(t, provider())
	b := startMember(t, provider())
	checkTwoMembers(t, a, b)
}
