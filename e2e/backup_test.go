package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/node"
)

// The backup and restore procedure of docs/backup.md, with the real
// binaries: etcdctl snapshot save, cairnctl snapshot restore once per
// member, cairn started on the results.

func cairnctlBin(t testing.TB) string {
	t.Helper()
	p := os.Getenv(envCtlBin)
	if p == "" {
		t.Fatalf("%s is not set: TestMain did not build cairnctl", envCtlBin)
	}
	return p
}

// runCairnctl runs cairnctl with args to completion and fails the test
// unless it exits 0; it returns stdout.
func runCairnctl(t testing.TB, args ...string) string {
	t.Helper()
	cx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cx, cairnctlBin(t), args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		t.Fatalf("cairnctl %v: %v\nstdout: %s\nstderr: %s", args, err, so.String(), se.String())
	}
	return so.String()
}

// clusterState is what a restore must bring back.
type clusterState struct {
	rev        int64
	kvs        []*mvccpb.KeyValue // every key at rev
	prev       []*mvccpb.KeyValue // every key at rev-1
	lease      clientv3.LeaseID
	leaseKeys  []string
	memberIDs  []uint64
	compactRev int64
}

func readState(t *testing.T, cli *clientv3.Client, lease clientv3.LeaseID, rev int64) clusterState {
	t.Helper()
	st := clusterState{lease: lease}
	opts := []clientv3.OpOption{clientv3.WithFromKey()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	r, err := cli.Get(ctx(t), "\x00", opts...)
	if err != nil {
		t.Fatal(err)
	}
	st.rev, st.kvs = r.Header.Revision, r.Kvs
	if rev > 0 {
		st.rev = rev
	}
	if p, err := cli.Get(ctx(t), "\x00", clientv3.WithFromKey(), clientv3.WithRev(st.rev-1)); err == nil {
		st.prev = p.Kvs
	} else if !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatal(err)
	}
	ttl, err := cli.TimeToLive(ctx(t), lease, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ttl.Keys {
		st.leaseKeys = append(st.leaseKeys, string(k))
	}
	slices.Sort(st.leaseKeys)
	if ttl.TTL <= 0 || ttl.GrantedTTL != 600 {
		t.Errorf("lease %x: TTL %d granted %d, want alive with 600", lease, ttl.TTL, ttl.GrantedTTL)
	}
	ml, err := cli.MemberList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ml.Members {
		if m.Name == "" {
			t.Errorf("member %x has not started (no name)", m.ID)
		}
		st.memberIDs = append(st.memberIDs, m.ID)
	}
	slices.Sort(st.memberIDs)
	return st
}

func sameKVs(a, b []*mvccpb.KeyValue) bool {
	return slices.EqualFunc(a, b, func(x, y *mvccpb.KeyValue) bool {
		return string(x.Key) == string(y.Key) && string(x.Value) == string(y.Value) &&
			x.CreateRevision == y.CreateRevision && x.ModRevision == y.ModRevision &&
			x.Version == y.Version && x.Lease == y.Lease
	})
}

// fillCluster writes keys (overwritten, deleted), a lease with keys and a
// compaction, and returns the lease and the compacted revision.
func fillCluster(t *testing.T, cli *clientv3.Client) (clientv3.LeaseID, int64) {
	t.Helper()
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("k%02d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := cli.Put(ctx(t), "k00", "again")
	if err != nil {
		t.Fatal(err)
	}
	compactRev := r.Header.Revision
	if _, err := cli.Delete(ctx(t), "k01"); err != nil {
		t.Fatal(err)
	}
	l, err := cli.Grant(ctx(t), 600)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"leased/a", "leased/b"} {
		if _, err := cli.Put(ctx(t), k, "v", clientv3.WithLease(l.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Compact(ctx(t), compactRev); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx(t), "k02", "after compaction"); err != nil {
		t.Fatal(err)
	}
	return l.ID, compactRev
}

// TestBackupRestoreCluster is the documented procedure: a 3-member
// cluster with keys, a lease and a compaction is saved with etcdctl
// snapshot save, every member is stopped and its data dir deleted, each is
// restored with one cairnctl snapshot restore, and the members started
// again with the same flags serve every key with its revisions, the lease
// with its keys and the same member IDs, and take writes.
func TestBackupRestoreCluster(t *testing.T) {
	testRestoreCluster(t, 0, false)
}

// TestBackupRestoreClusterOnNewURLs: the same, restored onto other
// machines (every member on new URLs): the members get the IDs etcd gives
// the new URLs, and serve the same data.
func TestBackupRestoreClusterOnNewURLs(t *testing.T) {
	testRestoreCluster(t, 0, true)
}

// TestBackupRestoreClusterBumpRevision: with --bump-revision N
// --mark-compacted the keys keep their revisions, the store's revision is
// N higher, reads and watches of the old revisions get ErrCompacted.
func TestBackupRestoreClusterBumpRevision(t *testing.T) {
	testRestoreCluster(t, 1000, false)
}

// testRestoreCluster runs the procedure, with --bump-revision bump (0:
// none), restoring every member onto new URLs if move.
func testRestoreCluster(t *testing.T, bump int64, move bool) {
	var extra []string
	if bump > 0 {
		// Raft snapshots: the stopped members' WALs, which check data-dir
		// reads, hold snapshot markers.
		extra = []string{"--snapshot-count", "10"}
	}
	c := NewClusterArgs(t, 3, extra...)
	cli := c.Client(t)
	lease, compactRev := fillCluster(t, cli)
	before := readState(t, cli, lease, 0)
	if _, err := cli.Get(ctx(t), "k00", clientv3.WithRev(compactRev-1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("read below the compaction before the backup: %v, want ErrCompacted", err)
	}

	snap := filepath.Join(t.TempDir(), "backup.db")
	if r := c.etcdctlAt(t, []string{c.Members[0].ClientURL}, "", "snapshot", "save", snap); r.Code != 0 {
		t.Fatalf("etcdctl snapshot save: exit %d\n%s", r.Code, r.Stderr)
	}
	var status struct {
		Revision int64 `json:"revision"`
		TotalKey int   `json:"totalKey"`
	}
	if out := runCairnctl(t, "snapshot", "status", snap, "-w", "json"); json.Unmarshal([]byte(out), &status) != nil ||
		status.Revision != before.rev || status.TotalKey != len(before.kvs) {
		t.Fatalf("cairnctl snapshot status: %s; want revision %d and %d keys", out, before.rev, len(before.kvs))
	}

	for _, m := range c.Members {
		m.Stop(t)
	}
	// A cleanly stopped member's files pass the offline check.
	for _, m := range c.Members {
		out := runCairnctl(t, "check", "data-dir", m.DataDir)
		if !strings.Contains(out, "no problem found") {
			t.Fatalf("check data-dir of stopped member %s:\n%s", m.Name, out)
		}
		if bump > 0 && strings.Contains(out, "snapshot marker 0 ") {
			t.Fatalf("member %s: no raft snapshot in its WAL with --snapshot-count 10:\n%s", m.Name, out)
		}
	}
	wantIDs := before.memberIDs
	for attempt := 0; ; attempt++ {
		for _, m := range c.Members {
			if err := os.RemoveAll(m.DataDir); err != nil {
				t.Fatal(err)
			}
		}
		if move {
			// New machines: every member on other URLs, so other IDs.
			urls := freeURLs(t, 2*len(c.Members))
			var peers []proc.Peer
			wantIDs = nil
			for i, m := range c.Members {
				m.ClientURL, m.PeerURL = urls[2*i], urls[2*i+1]
				peers = append(peers, m.Peer())
				wantIDs = append(wantIDs, node.MemberID([]string{m.PeerURL}, m.Token))
			}
			slices.Sort(wantIDs)
			for _, m := range c.Members {
				m.InitialCluster = proc.InitialCluster(peers...)
			}
		}
		for _, m := range c.Members {
			args := []string{"snapshot", "restore", snap,
				"--name", m.Name, "--data-dir", m.DataDir,
				"--initial-cluster", m.InitialCluster, "--initial-cluster-token", m.Token,
				"--initial-advertise-peer-urls", m.AdvertisedPeerURL()}
			if bump > 0 {
				args = append(args, "--bump-revision", fmt.Sprint(bump), "--mark-compacted")
			}
			runCairnctl(t, args...)
			if out := runCairnctl(t, "check", "data-dir", m.DataDir); !strings.Contains(out, "no problem found") {
				t.Fatalf("check data-dir after restore:\n%s", out)
			}
		}
		for _, m := range c.Members {
			if err := m.Start(); err != nil {
				t.Fatal(err)
			}
		}
		err := c.waitReadyAll()
		if err == nil {
			break
		}
		if !move || attempt == 3 || !errors.Is(err, proc.ErrAddrInUse) {
			t.Fatalf("restored members did not start: %v", err)
		}
		t.Logf("port collision, restoring on other ports: %v", err)
		c.killAll()
	}

	cli = c.Client(t)
	at := before.rev
	if bump > 0 {
		at = 0 // the snapshot's revision is compacted
	}
	after := readState(t, cli, lease, at)
	if !sameKVs(after.kvs, before.kvs) {
		t.Errorf("keys after restore:\n%v\nwant\n%v", after.kvs, before.kvs)
	}
	if !slices.Equal(after.leaseKeys, before.leaseKeys) || !slices.Equal(after.leaseKeys, []string{"leased/a", "leased/b"}) {
		t.Errorf("lease keys after restore %v, want %v", after.leaseKeys, before.leaseKeys)
	}
	if !slices.Equal(after.memberIDs, wantIDs) {
		t.Errorf("member IDs after restore %x, want %x (etcd's IDs for the restore's URLs and token)", after.memberIDs, wantIDs)
	}
	latest, err := cli.Get(ctx(t), "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	if latest.Header.Revision != before.rev+bump {
		t.Errorf("revision after restore %d, want %d", latest.Header.Revision, before.rev+bump)
	}
	if !sameKVs(latest.Kvs, before.kvs) {
		t.Errorf("latest keys after restore:\n%v\nwant\n%v", latest.Kvs, before.kvs)
	}
	if bump == 0 {
		if len(before.prev) == 0 || !sameKVs(after.prev, before.prev) {
			t.Errorf("keys at revision %d after restore differ: the history is not the same", before.rev-1)
		}
		if _, err := cli.Get(ctx(t), "k00", clientv3.WithRev(compactRev-1)); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Errorf("read below the compaction after restore: %v, want ErrCompacted", err)
		}
	} else {
		if _, err := cli.Get(ctx(t), "k00", clientv3.WithRev(before.rev)); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Errorf("read at the snapshot's revision after a bump: %v, want ErrCompacted", err)
		}
		wctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		wr := <-cli.Watch(wctx, "k", clientv3.WithPrefix(), clientv3.WithRev(before.rev))
		if wr.CompactRevision != before.rev+bump {
			t.Errorf("watch from the snapshot's revision after a bump: %+v, want cancelled as compacted at %d", wr, before.rev+bump)
		}
	}
	p, err := cli.Put(ctx(t), "new", "write")
	if err != nil || p.Header.Revision != before.rev+bump+1 {
		t.Fatalf("write after restore: %v %v, want revision %d", p, err, before.rev+bump+1)
	}
	// Every member serves the same data.
	var hashes []uint32
	for _, m := range c.Members {
		eventually(t, 20*time.Second, "member "+m.Name+" applied the write", func() (bool, string) {
			r, err := c.MemberClient(t, m).Get(ctx(t), "new", clientv3.WithSerializable())
			return err == nil && len(r.Kvs) == 1, fmt.Sprint(r, err)
		})
		h, err := c.MemberClient(t, m).HashKV(ctx(t), m.ClientURL, p.Header.Revision)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h.Hash)
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Errorf("HashKV differs between restored members: %v", hashes)
	}
}

// TestBackupForceNewClusterThenMemberAdded: a 3-member cluster loses two
// members for good; the survivor, restarted with --force-new-cluster,
// serves its data as a one-member cluster, and a new member added with
// member add and started with --initial-cluster-state existing catches up
// with every key.
func TestBackupForceNewClusterThenMemberAdded(t *testing.T) {
	c := NewCluster(t, 3)
	cli := c.Client(t)
	lease, _ := fillCluster(t, cli)
	before := readState(t, cli, lease, 0)
	survivor := c.Members[0]
	c.Members[1].Kill(t)
	c.Members[2].Kill(t)
	survivor.Stop(t)
	survivor.Extra = append(slices.Clone(survivor.Extra), "--force-new-cluster")
	survivor.Restart(t)
	survivor.WaitReady(t)
	sc := c.MemberClient(t, survivor)
	eventually(t, 20*time.Second, "the survivor serves linearizable reads", func() (bool, string) {
		_, err := sc.Get(ctx(t), "k00")
		return err == nil, fmt.Sprint(err)
	})

	j := newJoiner(t, c, "m3")
	var added *clientv3.MemberAddResponse
	if err := untilHealthy(t, func() (err error) {
		added, err = sc.MemberAdd(ctx(t), []string{j.AdvertisedPeerURL()})
		return err
	}); err != nil {
		t.Fatalf("member add after --force-new-cluster: %v", err)
	}
	j.join(t, proc.InitialCluster(survivor.Peer(), j.Peer()))
	jc := c.MemberClient(t, j)
	eventually(t, 30*time.Second, "the new member holds every key", func() (bool, string) {
		r, err := jc.Get(ctx(t), "\x00", clientv3.WithFromKey(), clientv3.WithSerializable(), clientv3.WithRev(before.rev))
		return err == nil && sameKVs(r.Kvs, before.kvs), fmt.Sprint(r, err)
	})
	ml, err := jc.MemberList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 2 || !slices.ContainsFunc(ml.Members, func(m *pb.Member) bool { return m.ID == added.Member.ID }) {
		t.Fatalf("members %v, want the survivor and %x", ml.Members, added.Member.ID)
	}
	if _, err := jc.Put(ctx(t), "after-join", "1"); err != nil {
		t.Fatalf("a write through the new member: %v", err)
	}
}
