package e2e

import (
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestAuthCompatPromoteThroughFollower: with auth on, root promotes a
// learner through a follower, which asks the leader on the caller's
// behalf; a user without the root role is refused there with etcd's
// error. Passes against etcd 3.7.3.
func TestAuthCompatPromoteThroughFollower(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 2)
	root := authSetup(t, c)
	j := newJoiner(t, c, "m2")
	var added *clientv3.MemberAddResponse
	if err := untilHealthy(t, func() error {
		var err error
		added, err = root.MemberAddAsLearner(ctx(t), []string{j.PeerURL})
		return err
	}); err != nil {
		t.Fatalf("member add --learner: %v", err)
	}
	joinMember(t, c, j)
	lead := -1
	eventually(t, readyTimeout, "a leader", func() (bool, string) {
		for i, m := range c.Members {
			st, err := root.Status(ctx(t), m.ClientURL)
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				lead = i
			}
		}
		return lead >= 0, "no member says it leads"
	})
	follower := c.Members[1-lead]
	id := added.Member.ID

	alice := userClient(t, c, "alice", "alicepw", follower)
	if _, err := alice.MemberPromote(ctx(t), id); rpctypes.Error(err) != rpctypes.ErrPermissionDenied {
		t.Fatalf("alice promoting through follower %s: %v, want permission denied", follower.Name, err)
	}
	fr := userClient(t, c, "root", "rootpw", follower)
	var err error
	eventually(t, 20*time.Second, "the learner ready to promote", func() (bool, string) {
		_, err = fr.MemberPromote(ctx(t), id)
		return rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(rpctypes.ErrGRPCLearnerNotReady), fmt.Sprint(err)
	})
	if err != nil {
		t.Fatalf("root promoting through follower %s: %v", follower.Name, err)
	}
	ml, err := root.MemberList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ml.Members {
		if m.ID == id && m.IsLearner {
			t.Fatalf("member %x is still a learner after its promotion", id)
		}
	}
}
