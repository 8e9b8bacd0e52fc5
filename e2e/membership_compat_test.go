package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/proc"
)

// Membership behaviours as etcd 3.7.3 has them. These tests pass against
// etcd too: CAIRN_E2E_CAIRN=/path/to/etcd go test ./e2e -run TestMembershipCompat.

// wantRPCError fails the test unless err carries want's etcd error message.
func wantRPCError(t *testing.T, what string, err, want error) {
	t.Helper()
	if err == nil || rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(want) {
		t.Fatalf("%s: got error %v, want %q", what, err, rpctypes.ErrorDesc(want))
	}
}

// memberURLs maps member IDs to their peer URLs and learner flag.
func memberURLs(t *testing.T, cli *clientv3.Client) map[uint64]string {
	t.Helper()
	ml, err := cli.MemberList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]string{}
	for _, m := range ml.Members {
		out[m.ID] = fmt.Sprintf("%v learner=%v", m.PeerURLs, m.IsLearner)
	}
	return out
}

// memberID returns the ID of the member named name.
func memberID(t *testing.T, cli *clientv3.Client, name string) uint64 {
	t.Helper()
	ml, err := cli.MemberList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ml.Members {
		if m.Name == name {
			return m.ID
		}
	}
	t.Fatalf("no member named %s in %v", name, ml.Members)
	return 0
}

// newJoiner describes a member to be added to c, its files under a new
// temp dir; start it with joinMember once it has been added.
func newJoiner(t *testing.T, c *Cluster, name string) *Member {
	t.Helper()
	urls := freeURLs(t, 2)
	return c.newMember(t, name, t.TempDir(), urls[0], urls[1])
}

// joinMember starts j, already added to c, with --initial-cluster-state
// existing and waits until it is healthy.
func joinMember(t *testing.T, c *Cluster, j *Member) {
	t.Helper()
	var peers []proc.Peer
	for _, m := range c.Members {
		peers = append(peers, m.Peer())
	}
	j.join(t, proc.InitialCluster(append(peers, j.Peer())...))
}

// untilHealthy runs f until it fails with something other than etcd's
// ErrGRPCUnhealthy: etcd refuses a voter's addition or a removal until
// its peers have been connected for 5 s (--strict-reconfig-check).
func untilHealthy(t *testing.T, f func() error) error {
	t.Helper()
	var err error
	eventually(t, 20*time.Second, "a membership request etcd does not refuse as unhealthy", func() (bool, string) {
		err = f()
		return rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(rpctypes.ErrGRPCUnhealthy), fmt.Sprint(err)
	})
	return err
}

// TestMembershipCompatPeerURLInUseIsRefused: member update to, and member
// add of, a peer URL that another member owns fail with
// ErrGRPCPeerURLExist and change nothing; the member whose URL it is keeps
// serving.
func TestMembershipCompatPeerURLInUseIsRefused(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 2)
	cli := c.Client(t, c.Members[0])
	before := memberURLs(t, cli)
	id1 := memberID(t, cli, "m1")

	_, err := cli.MemberUpdate(ctx(t), id1, []string{c.Members[0].PeerURL})
	wantRPCError(t, "member update to m0's peer URL", err, rpctypes.ErrGRPCPeerURLExist)
	err = untilHealthy(t, func() error {
		_, err := cli.MemberAdd(ctx(t), []string{c.Members[1].PeerURL})
		return err
	})
	wantRPCError(t, "member add of m1's peer URL", err, rpctypes.ErrGRPCPeerURLExist)
	_, err = cli.MemberAddAsLearner(ctx(t), []string{c.Members[0].PeerURL})
	wantRPCError(t, "member add --learner of m0's peer URL", err, rpctypes.ErrGRPCPeerURLExist)
	r := c.etcdctlAt(t, []string{c.Members[0].ClientURL}, "", "member", "update", fmt.Sprintf("%x", id1), "--peer-urls="+c.Members[0].PeerURL)
	if r.Code == 0 || !strings.Contains(r.Stderr, "etcdserver: Peer URLs already exists") {
		t.Fatalf("etcdctl member update to m0's peer URL: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}

	if after := memberURLs(t, cli); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("members changed by refused requests:\nbefore %v\nafter  %v", before, after)
	}
	// Both members still take part: a write needs both, and m1 serves a
	// linearizable read of it.
	if _, err := cli.Put(ctx(t), "after", "1"); err != nil {
		t.Fatal(err)
	}
	if g, err := c.MemberClient(t, c.Members[1]).Get(ctx(t), "after"); err != nil || len(g.Kvs) != 1 {
		t.Fatalf("linearizable read on m1: %v %v", g, err)
	}
	// Updating a member to its own URLs is no conflict.
	if _, err := cli.MemberUpdate(ctx(t), id1, []string{c.Members[1].PeerURL}); err != nil {
		t.Fatalf("member update to its own peer URL: %v", err)
	}
}

// TestMembershipCompatLearnerRefusesWhatEtcdRefuses: a learner answers
// serializable reads and Status, and refuses writes and linearizable
// reads with ErrGRPCNotSupportedForLearner; with the default
// --max-learners=1 a second learner cannot be added.
func TestMembershipCompatLearnerRefusesWhatEtcdRefuses(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)
	if _, err := cli.Put(ctx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	j := newJoiner(t, c, "m1")
	add, err := cli.MemberAddAsLearner(ctx(t), []string{j.PeerURL})
	if err != nil {
		t.Fatal(err)
	}
	j2 := newJoiner(t, c, "m2")
	_, err = cli.MemberAddAsLearner(ctx(t), []string{j2.PeerURL})
	wantRPCError(t, "a second learner with --max-learners=1", err, rpctypes.ErrGRPCTooManyLearners)
	if ms := memberURLs(t, cli); len(ms) != 2 {
		t.Fatalf("members after the refused learner: %v", ms)
	}

	joinMember(t, c, j)
	jc := c.MemberClient(t, j)
	eventually(t, 20*time.Second, "a serializable read of k on the learner", func() (bool, string) {
		g, err := jc.Get(ctx(t), "k", clientv3.WithSerializable())
		return err == nil && len(g.Kvs) == 1 && string(g.Kvs[0].Value) == "v", fmt.Sprint(g, err)
	})
	st, err := jc.Status(ctx(t), j.ClientURL)
	if err != nil || !st.IsLearner || st.Header.MemberId != add.Member.ID {
		t.Fatalf("status of the learner: %v %v", st, err)
	}

	_, err = jc.Get(ctx(t), "k")
	wantRPCError(t, "linearizable read on the learner", err, rpctypes.ErrGRPCNotSupportedForLearner)
	_, err = jc.Put(ctx(t), "k", "w")
	wantRPCError(t, "put on the learner", err, rpctypes.ErrGRPCNotSupportedForLearner)
	_, err = jc.Delete(ctx(t), "k")
	wantRPCError(t, "delete on the learner", err, rpctypes.ErrGRPCNotSupportedForLearner)
	_, err = jc.Txn(ctx(t)).Then(clientv3.OpPut("k", "w")).Commit()
	wantRPCError(t, "txn on the learner", err, rpctypes.ErrGRPCNotSupportedForLearner)
	_, err = jc.Grant(ctx(t), 60)
	wantRPCError(t, "lease grant on the learner", err, rpctypes.ErrGRPCNotSupportedForLearner)
	r := c.etcdctlAt(t, []string{j.ClientURL}, "", "put", "k", "w")
	if r.Code == 0 || !strings.Contains(r.Stderr, "etcdserver: rpc not supported for learner") {
		t.Fatalf("etcdctl put on the learner: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	if g, err := cli.Get(ctx(t), "k"); err != nil || string(g.Kvs[0].Value) != "v" {
		t.Fatalf("the refused writes changed k: %v %v", g, err)
	}
}

// TestMembershipCompatMaxLearners: --max-learners=2 allows a second
// learner, not a third.
func TestMembershipCompatMaxLearners(t *testing.T) {
	t.Parallel()
	c := NewClusterArgs(t, 1, "--max-learners", "2")
	cli := c.Client(t)
	for i := 1; i <= 2; i++ {
		if _, err := cli.MemberAddAsLearner(ctx(t), []string{fmt.Sprintf("http://127.0.0.1:%d", 1000+i)}); err != nil {
			t.Fatalf("learner %d of 2: %v", i, err)
		}
	}
	_, err := cli.MemberAddAsLearner(ctx(t), []string{"http://127.0.0.1:1003"})
	wantRPCError(t, "a third learner with --max-learners=2", err, rpctypes.ErrGRPCTooManyLearners)
}

const (
	removedMsg = "the member has been permanently removed from the cluster"
	dataDirMsg = "data-dir used by this member must be removed"
)

// TestMembershipCompatRemovedMemberStops: a member paused (SIGSTOP) while
// the cluster removes it learns of its removal from its peers once it
// runs again, and exits with etcd's message and status 0; started again on
// its old data dir, it exits the same way instead of running without a
// cluster.
func TestMembershipCompatRemovedMemberStops(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 3)
	victim := c.Members[2]
	cli := c.Client(t, c.Members[0], c.Members[1])
	id := memberID(t, cli, victim.Name)
	if err := victim.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := untilHealthy(t, func() error { _, err := cli.MemberRemove(ctx(t), id); return err }); err != nil {
		t.Fatalf("member remove: %v", err)
	}
	if err := victim.Resume(); err != nil {
		t.Fatal(err)
	}
	waitRemoved := func(what string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		st, out, err := victim.Wait(wctx)
		if err != nil {
			t.Fatalf("%s: %v\nlog:\n%s", what, err, victim.LogTail(30))
		}
		if !st.Success() || !strings.Contains(out, removedMsg) || !strings.Contains(out, dataDirMsg) {
			t.Fatalf("%s: exit %v, want status 0 and the messages %q and %q; output:\n%s", what, st, removedMsg, dataDirMsg, proc.Tail(out, 30))
		}
	}
	waitRemoved("the member removed while paused")
	if _, err := cli.Put(ctx(t), "after-removal", "1"); err != nil {
		t.Fatalf("the two remaining members must accept writes: %v", err)
	}
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	waitRemoved("the removed member restarted on its data dir")
}

// TestMembershipCompatForceNewCluster: a 3-member cluster loses two
// members for good; the survivor, restarted with --force-new-cluster, is a
// one-member cluster with all its data, serves reads and writes, stays one
// when restarted without the flag, and can grow again with member add.
func TestMembershipCompatForceNewCluster(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 3)
	cli := c.Client(t)
	for i := 0; i < 10; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("k%d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	survivor := c.Members[0]
	id := memberID(t, cli, survivor.Name)
	c.Members[1].Kill(t)
	c.Members[2].Kill(t)
	stopCompat(t, survivor)
	survivor.Extra = append(survivor.Extra, "--force-new-cluster")
	survivor.Restart(t)
	survivor.WaitReady(t)
	sc := c.MemberClient(t, survivor)
	check := func(when string) {
		t.Helper()
		ml, err := sc.MemberList(ctx(t))
		if err != nil {
			t.Fatalf("%s: member list: %v", when, err)
		}
		if len(ml.Members) != 1 || ml.Members[0].ID != id {
			t.Fatalf("%s: members %v, want only %x", when, ml.Members, id)
		}
		r, err := sc.Get(ctx(t), "k", clientv3.WithPrefix())
		if err != nil || len(r.Kvs) != 10 {
			t.Fatalf("%s: the survivor's data: %v %v, want 10 keys", when, r, err)
		}
		if _, err := sc.Put(ctx(t), "after-"+when, "1"); err != nil {
			t.Fatalf("%s: a write: %v", when, err)
		}
	}
	check("forced")
	stopCompat(t, survivor)
	survivor.Extra = survivor.Extra[:len(survivor.Extra)-1]
	survivor.Restart(t)
	survivor.WaitReady(t)
	check("restarted")
	// It grows again as any one-member cluster: a learner can be added.
	if _, err := sc.MemberAddAsLearner(ctx(t), []string{"http://127.0.0.1:1"}); err != nil {
		t.Fatalf("member add after --force-new-cluster: %v", err)
	}
}
