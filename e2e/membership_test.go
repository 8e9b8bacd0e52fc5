package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestMemberAddJoinPromoteRemove: etcdctl member add --learner, start the
// new member with --initial-cluster-state existing, watch it catch up,
// promote it, then remove it, as an operator grows and shrinks a cluster.
func TestMemberAddJoinPromoteRemove(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("pre/%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	j := newJoiner(t, c, "m1")
	out := c.Etcdctl(t, "member", "add", "m1", "--learner", "--peer-urls="+j.PeerURL)
	m := regexp.MustCompile(`^Member +([0-9a-f]+) added as learner to cluster +([0-9a-f]+)\n`).FindStringSubmatch(out)
	ic := regexp.MustCompile(`ETCD_INITIAL_CLUSTER="([^"]*)"`).FindStringSubmatch(out)
	if m == nil || ic == nil || !strings.Contains(out, `ETCD_INITIAL_CLUSTER_STATE="existing"`) ||
		!strings.Contains(ic[1], "m0="+c.Members[0].PeerURL) || !strings.Contains(ic[1], "m1="+j.PeerURL) {
		t.Fatalf("member add --learner:\n%s", out)
	}
	id, err := strconv.ParseUint(m[1], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	j.join(t, ic[1]) // as an operator copies etcdctl's ETCD_INITIAL_CLUSTER

	members := func() map[string]*clientv3.Member {
		t.Helper()
		ml, err := cli.MemberList(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*clientv3.Member{}
		for _, mm := range ml.Members {
			out[fmt.Sprintf("%x", mm.ID)] = (*clientv3.Member)(mm)
		}
		return out
	}
	if ms := members(); len(ms) != 2 || ms[m[1]] == nil || !ms[m[1]].IsLearner {
		t.Fatalf("member list after add: %v", ms)
	}
	// The learner catches up: its own store holds every key.
	jc := c.MemberClient(t, j)
	eventually(t, 20*time.Second, "the learner to catch up", func() (bool, string) {
		r, err := jc.Get(ctx(t), "pre/", clientv3.WithPrefix(), clientv3.WithSerializable())
		return err == nil && len(r.Kvs) == 20, fmt.Sprint(r, err)
	})
	// A learner refuses membership requests as etcd's does
	// (TestMembershipCompatLearnerRefusesWhatEtcdRefuses): promote
	// through the voter.
	if r := c.etcdctlAt(t, []string{c.Members[0].ClientURL}, "", "member", "promote", m[1]); r.Code != 0 || !regexp.MustCompile(fmt.Sprintf(`^Member +%s promoted in cluster +%s\n`, m[1], m[2])).MatchString(r.Stdout) {
		t.Fatalf("member promote: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if ms := members(); ms[m[1]] == nil || ms[m[1]].IsLearner {
		t.Fatalf("member list after promote: %v", ms)
	}
	// Two voters now: a write needs both, and the new member serves
	// linearizable reads.
	if _, err := cli.Put(ctx(t), "after-promote", "1"); err != nil {
		t.Fatal(err)
	}
	if r, err := jc.Get(ctx(t), "after-promote"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("linearizable read on the promoted member: %v %v", r, err)
	}
	// The member added at run time restarts with the same flags: its ID
	// came from member add, not from --initial-cluster and the token, and
	// it is who its WAL says, as in etcd.
	j.Stop(t)
	if err := j.Start(); err != nil {
		t.Fatal(err)
	}
	j.WaitReady(t)
	if _, err := cli.Put(ctx(t), "after-restart", "1"); err != nil {
		t.Fatalf("a put needing the restarted member: %v", err)
	}
	if r, err := jc.Get(ctx(t), "after-restart"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("linearizable read on the restarted member: %v %v", r, err)
	}
	// With --strict-reconfig-check (on, as etcd's), the removal waits until
	// the promoted member has been connected for 5 s.
	var removed ctlResult
	eventually(t, 20*time.Second, "member remove not refused as unhealthy", func() (bool, string) {
		removed = c.etcdctlAt(t, []string{c.Members[0].ClientURL}, "", "member", "remove", m[1])
		return !strings.Contains(removed.Stderr, "unhealthy cluster"), removed.Stderr
	})
	if out := removed.Stdout; removed.Code != 0 || !regexp.MustCompile(fmt.Sprintf(`^Member +%s removed from cluster +%s\n`, m[1], m[2])).MatchString(out) {
		t.Fatalf("member remove: exit %d %q %s", removed.Code, out, removed.Stderr)
	}
	if ms := members(); len(ms) != 1 {
		t.Fatalf("member list after remove: %v", ms)
	}
	if _, err := cli.Put(ctx(t), "after-remove", "1"); err != nil {
		t.Fatalf("a one-member cluster must accept writes after the removal: %v", err)
	}
	_ = id
}
