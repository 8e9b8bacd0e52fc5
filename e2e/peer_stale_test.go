package e2e

import (
	"fmt"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testutil"
)

// TestPeerStaleMemberLearnsTheNewLeader: a member that was down while a
// member was added restarts knowing only the old membership, and the new
// member leads. The peer listener refuses senders that are not members,
// so the restarted member must find out that the leader is one (its
// known peers list it) to take its stream and catch up.
func TestPeerStaleMemberLearnsTheNewLeader(t *testing.T) {
	t.Parallel()
	c := NewClusterArgs(t, 3, "--strict-reconfig-check=false")
	cli := c.Client(t, c.Members[0], c.Members[1])
	stale := c.Members[2]
	stale.Stop(t)

	j := newJoiner(t, c, "m3")
	var r *clientv3.MemberAddResponse
	testutil.Eventually(t, readyTimeout, "member add (the stopped member may have led)", func() (bool, string) {
		var err error
		r, err = cli.MemberAdd(ctx(t), []string{j.PeerURL})
		return err == nil, fmt.Sprint(err)
	})
	joinMember(t, c, j)
	if _, err := cli.Put(ctx(t), "k", "after"); err != nil {
		t.Fatal(err)
	}
	// The new member leads.
	testutil.Eventually(t, readyTimeout, "leadership moved to the new member", func() (bool, string) {
		st, err := cli.Status(ctx(t), c.Members[0].ClientURL)
		if err != nil {
			return false, err.Error()
		}
		if st.Leader == r.Member.ID {
			return true, ""
		}
		lc := c.MemberClient(t, c.Members[0])
		for _, m := range c.Members[:2] {
			if s, err := c.MemberClient(t, m).Status(ctx(t), m.ClientURL); err == nil && s.Leader == s.Header.MemberId {
				lc = c.MemberClient(t, m)
			}
		}
		_, err = lc.MoveLeader(ctx(t), r.Member.ID)
		return false, fmt.Sprintf("leader %x: %v", st.Leader, err)
	})

	stale.Restart(t)
	stale.WaitReady(t)
	sc := c.MemberClient(t, stale)
	testutil.Eventually(t, readyTimeout, "the restarted member to catch up", func() (bool, string) {
		g, err := sc.Get(ctx(t), "k", clientv3.WithSerializable())
		if err != nil || len(g.Kvs) != 1 {
			return false, fmt.Sprint(err)
		}
		return string(g.Kvs[0].Value) == "after", string(g.Kvs[0].Value)
	})
}
