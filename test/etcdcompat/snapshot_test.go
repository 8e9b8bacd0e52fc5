package etcdcompat

import (
	"os"
	"path/filepath"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The history writeHistory writes on a new cluster: its last revision,
// the revision it compacts at, and the keys of its lease.
const (
	historyRevision = 14
	historyCompact  = 3
)

// writeHistory writes, on s's new cluster: overwrites, deletes (one of a
// key, one of a range of two keys in one revision), a txn, keys attached
// to a lease and a lease without keys, an empty value, and then compacts
// at revision 3 (so that the first write's revision, 2, is compacted) and
// waits for the compaction to be done.
func writeHistory(t *testing.T, s *server) {
	t.Helper()
	ctx := opCtx(t)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %s: %v", s, what, err)
		}
	}
	put := func(k, v string, opts ...clientv3.OpOption) {
		t.Helper()
		_, err := s.cli.Put(ctx, k, v, opts...)
		must("put "+k, err)
	}
	put("foo", "bar")                  // 2
	put("foo", "baz")                  // 3
	_, err := s.cli.Delete(ctx, "foo") // 4
	must("delete foo", err)
	held, err := s.cli.Grant(ctx, 300)
	must("grant", err)
	_, err = s.cli.Grant(ctx, 600) // a lease without keys
	must("grant", err)
	put("lk", "held", clientv3.WithLease(held.ID)) // 5
	put("a", "1")                                  // 6
	put("b", "2")                                  // 7
	put("c", "3")                                  // 8
	txn, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value("a"), "=", "1")).
		Then(clientv3.OpPut("a", "11"), clientv3.OpDelete("b"), clientv3.OpPut("d", "4", clientv3.WithLease(held.ID))).
		Else(clientv3.OpPut("z", "never")).
		Commit() // 9
	must("txn", err)
	if !txn.Succeeded {
		t.Fatalf("%s: txn took its else branch", s)
	}
	put("dir/x", "1")                                            // 10
	put("dir/y", "2")                                            // 11
	del, err := s.cli.Delete(ctx, "dir/", clientv3.WithPrefix()) // 12
	must("delete dir/", err)
	if del.Deleted != 2 {
		t.Fatalf("%s: deleted %d keys under dir/, want 2", s, del.Deleted)
	}
	put("c", "33")   // 13
	put("empty", "") // 14
	resp, err := s.cli.Compact(ctx, historyCompact, clientv3.WithCompactPhysical())
	must("compact", err)
	if resp.Header.Revision != historyRevision {
		t.Fatalf("%s: the history ends at revision %d, want %d", s, resp.Header.Revision, historyRevision)
	}
}

// checkHistory checks what a member shows of writeHistory's history.
func checkHistory(t *testing.T, s *server, st state) {
	t.Helper()
	if st.Revision != historyRevision || st.CompactRevision != historyCompact || len(st.Leases) != 2 {
		t.Fatalf("%s: revision %d, compacted %d, %d leases after writeHistory; want %d, %d and 2",
			s, st.Revision, st.CompactRevision, len(st.Leases), historyRevision, historyCompact)
	}
}

// checkWrite checks that s, whose keyspace is at revision rev, takes a
// write at rev+1.
func checkWrite(t *testing.T, s *server, rev int64) {
	t.Helper()
	ctx := opCtx(t)
	put, err := s.cli.Put(ctx, "written-after-restore", "yes")
	if err != nil {
		t.Fatalf("%s refuses a write: %v", s, err)
	}
	if put.Header.Revision != rev+1 {
		t.Errorf("%s: a write after revision %d is at revision %d", s, rev, put.Header.Revision)
	}
	get, err := s.cli.Get(ctx, "written-after-restore")
	if err != nil {
		t.Fatalf("%s: reading the write back: %v", s, err)
	}
	if ks := kvs(get.Kvs); len(ks) != 1 || ks[0] != (kv{Key: "written-after-restore", Value: "yes", CreateRevision: rev + 1, ModRevision: rev + 1, Version: 1}) {
		t.Errorf("%s: the write reads back as %+v", s, ks)
	}
}

// The way back: a Cairn snapshot passes etcdutl's snapshot status and
// hashkv with Cairn's numbers, and restored with etcdutl it starts a real
// etcd 3.7.3 that serves the same keys, history, compaction, leases and
// HashKV, has etcd's member and cluster IDs, and takes writes.
func TestCairnSnapshotRestoresIntoEtcd(t *testing.T) {
	src := startNew(t, cairnKind, "c1")
	checkMembers(t, src)
	writeHistory(t, src)
	want := capture(t, src)
	checkHistory(t, src, want)
	snap := saveSnapshot(t, src)
	checkSnapshotFile(t, snap, want)

	dst := startRestored(t, etcdKind, "r1", snap)
	compareStates(t, src, dst, want, capture(t, dst))
	checkMembers(t, dst)
	checkWrite(t, dst, want.Revision)
}

// The way in: an etcd 3.7.3 snapshot restored with etcdutl starts Cairn,
// which imports etcd's WAL, keeps it aside, and serves what etcd served.
func TestEtcdSnapshotRestoresIntoCairn(t *testing.T) {
	src := startNew(t, etcdKind, "e1")
	writeHistory(t, src)
	want := capture(t, src)
	checkHistory(t, src, want)
	snap := saveSnapshot(t, src)
	checkSnapshotFile(t, snap, want)

	dst := startRestored(t, cairnKind, "r1", snap)
	// HashKV at the compaction revision is not compared: there etcd, which
	// compacted, answers the hash it kept from the compaction, in memory
	// only, and a member on a restored (or restarted) data dir answers that
	// of the compacted key space (TestHashKVAgrees compares live members).
	compareStates(t, src, dst, want, capture(t, dst), historyCompact)
	checkMembers(t, dst)
	checkWrite(t, dst, want.Revision)
	checkImported(t, dst)
}

// checkImported checks that etcd's WAL was moved aside, not deleted.
func checkImported(t *testing.T, s *server) {
	t.Helper()
	kept, err := filepath.Glob(filepath.Join(s.DataDir, "member", "wal.etcd-imported", "*.wal"))
	if err != nil || len(kept) == 0 {
		entries, _ := os.ReadDir(filepath.Join(s.DataDir, "member"))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%s: no etcd WAL segment in member/wal.etcd-imported (%v); member/ holds %q", s, err, names)
	}
}

// A round trip: a Cairn snapshot restored into etcd, that etcd's snapshot
// restored into Cairn: the keys, history, compaction, leases and HashKV
// are the original's at each step.
func TestRoundTripCairnEtcdCairn(t *testing.T) {
	orig := startNew(t, cairnKind, "c1")
	writeHistory(t, orig)
	want := capture(t, orig)
	checkHistory(t, orig, want)

	snap := saveSnapshot(t, orig)
	etcd := startRestored(t, etcdKind, "r1", snap)
	compareStates(t, orig, etcd, want, capture(t, etcd))

	snap = saveSnapshot(t, etcd)
	checkSnapshotFile(t, snap, want)
	back := startRestored(t, cairnKind, "r2", snap)
	compareStates(t, orig, back, want, capture(t, back))
	checkMembers(t, back)
	checkImported(t, back)
	checkWrite(t, back, want.Revision)
}
