package e2e

import (
	"fmt"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// leaderOf asks each running member for its status and returns the index
// of the member every one of them names as leader, or -1 if they do not
// agree or some have none.
func (c *Cluster) leaderOf(t *testing.T, members []*Member) int {
	t.Helper()
	var lead uint64
	for _, m := range members {
		st, err := c.MemberClient(t, m).Status(ctx(t), m.ClientURL)
		if err != nil || st.Leader == 0 || (lead != 0 && st.Leader != lead) {
			return -1
		}
		lead = st.Leader
	}
	ml, err := c.MemberClient(t, members[0]).MemberList(ctx(t))
	if err != nil {
		return -1
	}
	for _, mm := range ml.Members {
		if mm.ID == lead {
			for i, m := range c.Members {
				if m.Name == mm.Name {
					return i
				}
			}
		}
	}
	return -1
}

// waitLeader waits until members agree on a leader among them, not old.
func (c *Cluster) waitLeader(t *testing.T, members []*Member, old int) int {
	t.Helper()
	l := -1
	eventually(t, readyTimeout, fmt.Sprintf("members %v to agree on a new leader", names(members)), func() (bool, string) {
		l = c.leaderOf(t, members)
		return l >= 0 && l != old, fmt.Sprintf("leader index %d, old %d", l, old)
	})
	return l
}

func names(ms []*Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

func TestThreeNodeCluster(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 3)

	// The cluster formed: every member lists the same three members with
	// their peer and client URLs. A member publishes its client URLs
	// through raft after it starts serving (etcd publishes before it
	// serves), so wait for the list to be complete.
	for _, m := range c.Members {
		eventually(t, readyTimeout, "the three members in the member list from "+m.Name, func() (bool, string) {
			ml, err := c.MemberClient(t, m).MemberList(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, mm := range ml.Members {
				got[mm.Name] = fmt.Sprintf("%v %v learner=%v", mm.PeerURLs, mm.ClientURLs, mm.IsLearner)
			}
			for _, w := range c.Members {
				if got[w.Name] != fmt.Sprintf("[%s] [%s] learner=false", w.PeerURL, w.ClientURL) {
					return false, fmt.Sprint(got)
				}
			}
			return len(got) == 3, fmt.Sprint(got)
		})
	}

	// Writes through every member are visible on every member. acked maps
	// each acknowledged key to its value and revision.
	type ack struct {
		value string
		rev   int64
	}
	acked := map[string]ack{}
	var lastRev int64 = 1
	put := func(via *Member, key, value string) {
		t.Helper()
		r, err := c.MemberClient(t, via).Put(ctx(t), key, value)
		if err != nil {
			t.Fatalf("put %s through %s: %v", key, via.Name, err)
		}
		if r.Header.Revision != lastRev+1 {
			t.Fatalf("put %s through %s: revision %d, want %d", key, via.Name, r.Header.Revision, lastRev+1)
		}
		lastRev = r.Header.Revision
		acked[key] = ack{value, lastRev}
	}
	for i, m := range c.Members {
		for j := 0; j < 5; j++ {
			put(m, fmt.Sprintf("k/%d/%d", i, j), fmt.Sprintf("from %s #%d", m.Name, j))
		}
	}
	// checkAll reads every acknowledged key on each member.
	checkAll := func(what string, members []*Member, opts ...clientv3.OpOption) {
		t.Helper()
		for _, m := range members {
			g, err := c.MemberClient(t, m).Get(ctx(t), "k/", append([]clientv3.OpOption{clientv3.WithPrefix()}, opts...)...)
			if err != nil {
				t.Fatalf("%s: get on %s: %v", what, m.Name, err)
			}
			if g.Header.Revision != lastRev || int(g.Count) != len(acked) || len(g.Kvs) != len(acked) {
				t.Errorf("%s: %s has rev=%d count=%d, want rev=%d count=%d", what, m.Name, g.Header.Revision, g.Count, lastRev, len(acked))
			}
			for _, kv := range g.Kvs {
				a, ok := acked[string(kv.Key)]
				if !ok || string(kv.Value) != a.value || kv.ModRevision != a.rev || kv.CreateRevision != a.rev || kv.Version != 1 {
					t.Errorf("%s: %s has %s, want value %q at rev %d", what, m.Name, kvString(kv), a.value, a.rev)
				}
			}
		}
	}
	checkAll("linearizable reads after writes through every member", c.Members)

	// SIGKILL the leader: the others elect a new one and keep serving writes.
	oldLeader := c.waitLeader(t, c.Members, -1)
	dead := c.Members[oldLeader]
	dead.Kill(t)
	var alive []*Member
	for i, m := range c.Members {
		if i != oldLeader {
			alive = append(alive, m)
		}
	}
	newLeader := c.waitLeader(t, alive, oldLeader)
	t.Logf("killed leader %s; new leader %s", dead.Name, c.Members[newLeader].Name)
	for _, m := range alive {
		for j := 0; j < 10; j++ {
			put(m, fmt.Sprintf("k/after-kill/%s/%d", m.Name, j), "x")
		}
	}
	checkAll("linearizable reads on the two survivors", alive)

	// Restart it: it catches up and serves every acknowledged write.
	dead.Restart(t)
	dead.WaitReady(t)
	// Caught up: its applied index reaches the leader's commit index as it
	// was after the last acknowledged write.
	lst, err := c.MemberClient(t, c.Members[newLeader]).Status(ctx(t), c.Members[newLeader].ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, readyTimeout, fmt.Sprintf("restarted %s to apply up to index %d", dead.Name, lst.RaftIndex), func() (bool, string) {
		st, err := c.MemberClient(t, dead).Status(ctx(t), dead.ClientURL)
		return err == nil && st.RaftAppliedIndex >= lst.RaftIndex, fmt.Sprint(st, err)
	})
	checkAll("serializable reads after the old leader caught up", c.Members, clientv3.WithSerializable())
	checkAll("linearizable reads after the old leader caught up", c.Members)

	// One more write through the restarted member reaches everyone.
	put(dead, "k/last", "through the restarted member")
	checkAll("linearizable reads after a write through the restarted member", c.Members)
	if c.waitLeader(t, c.Members, -1) < 0 {
		t.Fatal("no leader at the end")
	}
}
