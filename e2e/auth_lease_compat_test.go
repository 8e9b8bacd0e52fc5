package e2e

import (
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestAuthCompatLeaseTimeToLiveWithoutKeys: as etcd, a lease's
// time-to-live asked without its keys needs a user only; read permission
// on every attached key is needed to get them (WithAttachedKeys). Cairn
// refused alice the TTL alone of a lease holding a key she may not read,
// which `etcdctl lease timetolive` asks. Against etcd too.
func TestAuthCompatLeaseTimeToLiveWithoutKeys(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	root := authSetup(t, c)
	alice := userClient(t, c, "alice", "alicepw")
	l, err := root.Grant(ctx(t), 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx(t), "other", "v", clientv3.WithLease(l.ID)); err != nil {
		t.Fatal(err)
	}
	resp, err := alice.TimeToLive(ctx(t), l.ID)
	if err != nil || resp.GrantedTTL != 60 || len(resp.Keys) != 0 {
		t.Errorf("alice asking the TTL alone of a lease holding other: %v, %v", resp, err)
	}
	wantErr(t, "alice asking the TTL and keys of a lease holding other", func() error {
		_, err := alice.TimeToLive(ctx(t), l.ID, clientv3.WithAttachedKeys())
		return err
	}(), rpctypes.ErrPermissionDenied)
	// etcdctl, as alice.
	r := c.etcdctlAt(t, c.ClientURLs(), "", "--user", "alice:alicepw", "lease", "timetolive", fmt.Sprintf("%x", l.ID))
	if r.Code != 0 {
		t.Errorf("etcdctl lease timetolive as alice: exit %d %s", r.Code, lastLine(r.Stderr))
	}
	// Without a user it is still refused.
	_, err = c.Client(t).TimeToLive(ctx(t), l.ID)
	wantErr(t, "asking the TTL without a user", err, rpctypes.ErrUserEmpty)
}
