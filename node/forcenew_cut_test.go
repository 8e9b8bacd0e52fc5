package node

import (
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/vfs"
)

// A lone voter acknowledges a write once it applies it, and saves the
// commit index that lets it apply without an fsync (as etcd does): a power
// cut may leave the entry above the synced commit index. Restarted with
// ForceNewCluster still set (an operator who did not drop the flag), it
// must keep the entry, not drop it as never committed: it is the only
// voter, what it saved was committed. Found by the simulator's exhaustive
// power cuts (sim/exhaustive_test.go, force-new-cluster/flag-kept).
func TestForceNewClusterAfterACutKeepsALoneVotersAcknowledgedWrite(t *testing.T) {
	fs := vfs.NewMem()
	var cfg Config
	c := newTestCoreWith(t, 1, func(cf *Config) { cf.WALFS = fs; cf.ForceNewCluster = true; cfg = *cf })
	if n := ticksToLead(t, c, 10); n > 10 {
		t.Fatal("the member did not lead")
	}
	acked := false
	if _, err := c.Propose(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}}, func(r Result) { acked = r.Err == nil }); err != nil {
		t.Fatal(err)
	}
	for c.HasReady() {
		if err := c.Process(); err != nil {
			t.Fatal(err)
		}
	}
	if !acked {
		t.Fatal("the put was not acknowledged")
	}
	c.Crash() // the power cut: unsynced WAL bytes and the open database batch are lost
	cfg.WALFS = fs.Crash(nil, false)
	cfg.Clock = clock.NewFake(time.Unix(200, 0))
	c2, err := NewCore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if n := ticksToLead(t, c2, 40); n > 40 {
		t.Fatal("the forced member did not lead")
	}
	r, err := c2.KV().Range(&pb.RangeRequest{Key: []byte("k")})
	if err != nil || len(r.GetKvs()) != 1 || string(r.GetKvs()[0].GetValue()) != "v" {
		t.Fatalf("the acknowledged put after a forced restart: %v %v", r.GetKvs(), err)
	}
}
