package registry

import (
	"strings"
	"testing"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"google.golang.org/protobuf/proto"

	"github.com/protows/protows/registry/registrypb"
)

// The pacing between members (the delta window, the bytes queued for a
// member, the deltas kept during a snapshot) counts a Track's presence key
// and meta: a delta of large metas is not taken for a small one.
func TestTrackDeltaSizeCounted(t *testing.T) {
	pid := protoactor.NewPID("127.0.0.1:1234", "$42")
	tr := newTracked(strings.Repeat("k", MaxNameLen), pid, make([]byte, MaxMetaSize))
	op := &registrypb.Op{Entry: groupEntry("room", pid, tr)}
	d := &registrypb.Delta{Member: "m", Address: pid.Address, Seq: 1, Ops: []*registrypb.Op{op}}
	assert.GreaterOrEqual(t, entrySize(op.GetEntry()), proto.Size(d)-32)
}
