package node

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
)

// The cluster version and the downgrade job are applied from etcd's
// requests into etcd's keys of the "cluster" bucket, and the storage
// version into meta; all three survive a restart.
func TestApplyClusterVersionAndDowngrade(t *testing.T) {
	cfg := authTestConfig(t, nil)
	c := startAuthCore(t, cfg)
	if got := c.ClusterVersion(); got != "3.7.0" {
		t.Fatalf("cluster version of a new cluster = %q, want 3.7.0", got)
	}
	if got := c.Downgrade(); got != (DowngradeInfo{}) {
		t.Fatalf("downgrade of a new cluster = %+v, want none", got)
	}
	if got := c.StorageVersion(); got != "3.7.0" {
		t.Fatalf("storage version of a new member = %q, want 3.7.0", got)
	}

	mustApply(t, c, &pb.InternalRaftRequest{DowngradeInfoSet: &membershippb.DowngradeInfoSetRequest{Enabled: true, Ver: "3.6.0"}})
	if got, want := c.Downgrade(), (DowngradeInfo{TargetVersion: "3.6.0", Enabled: true}); got != want {
		t.Fatalf("downgrade = %+v, want %+v", got, want)
	}
	if b, _ := c.kv.AuxGet(clusterBucket, downgradeKey); string(b) != `{"target-version":"3.6.0","enabled":true}` {
		t.Fatalf("cluster/downgrade = %s, want etcd's JSON", b)
	}
	mustApply(t, c, &pb.InternalRaftRequest{ClusterVersionSet: &membershippb.ClusterVersionSetRequest{Ver: "3.6.0"}})
	if got := c.ClusterVersion(); got != "3.6.0" {
		t.Fatalf("cluster version = %q, want 3.6.0", got)
	}
	c.SetStorageVersion("3.6.0")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c = startAuthCore(t, cfg)
	if got := c.ClusterVersion(); got != "3.6.0" {
		t.Fatalf("cluster version after restart = %q, want 3.6.0", got)
	}
	if got := c.StorageVersion(); got != "3.6.0" {
		t.Fatalf("storage version after restart = %q, want 3.6.0", got)
	}
	if got := c.Downgrade(); !got.Enabled || got.TargetVersion != "3.6.0" {
		t.Fatalf("downgrade after restart = %+v, want enabled to 3.6.0", got)
	}
	mustApply(t, c, &pb.InternalRaftRequest{DowngradeInfoSet: &membershippb.DowngradeInfoSetRequest{Enabled: false}})
	if got := c.Downgrade(); got != (DowngradeInfo{}) {
		t.Fatalf("downgrade after cancel = %+v, want none", got)
	}
	if b, _ := c.kv.AuxGet(clusterBucket, downgradeKey); string(b) != `{"target-version":"","enabled":false}` {
		t.Fatalf("cluster/downgrade after cancel = %s, want etcd's JSON", b)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
