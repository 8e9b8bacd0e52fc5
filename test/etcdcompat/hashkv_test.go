package etcdcompat

import (
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// HashKV agrees with etcd's: the same writes, deletes, txns, leases and
// compactions on a Cairn and on an etcd 3.7.3, each a new one-member
// cluster, leave the same keys at every revision and the same HashKV at
// each of them, before and after each compaction. HashKV's answer is etcd's
// in its compact_revision too: -1 before any compaction.
func TestHashKVAgrees(t *testing.T) {
	c := startNew(t, cairnKind, "c1")
	e := startNew(t, etcdKind, "e1")
	checkMembers(t, c)
	ctx := opCtx(t)

	// do runs the same request on both and checks they answer at the same
	// revision.
	do := func(what string, f func(s *server) (*pb.ResponseHeader, error)) int64 {
		t.Helper()
		var revs [2]int64
		for i, s := range []*server{c, e} {
			h, err := f(s)
			if err != nil {
				t.Fatalf("%s: %s: %v", s, what, err)
			}
			revs[i] = h.Revision
		}
		if revs[0] != revs[1] {
			t.Fatalf("%s: cairn answers at revision %d, etcd at %d", what, revs[0], revs[1])
		}
		return revs[0]
	}
	op := func(o clientv3.Op) func(s *server) (*pb.ResponseHeader, error) {
		return func(s *server) (*pb.ResponseHeader, error) {
			resp, err := s.cli.Do(ctx, o)
			if err != nil {
				return nil, err
			}
			switch {
			case resp.Put() != nil:
				return resp.Put().Header, nil
			case resp.Del() != nil:
				return resp.Del().Header, nil
			default:
				return resp.Txn().Header, nil
			}
		}
	}
	// Leases are granted with IDs of the test's choosing: a key's lease ID
	// is part of what HashKV hashes.
	grant := func(id, ttl int64) func(s *server) (*pb.ResponseHeader, error) {
		return func(s *server) (*pb.ResponseHeader, error) {
			resp, err := pb.NewLeaseClient(s.cli.ActiveConnection()).LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: id, TTL: ttl})
			if err != nil {
				return nil, err
			}
			return resp.Header, nil
		}
	}
	revoke := func(id int64) func(s *server) (*pb.ResponseHeader, error) {
		return func(s *server) (*pb.ResponseHeader, error) {
			resp, err := s.cli.Revoke(ctx, clientv3.LeaseID(id))
			if err != nil {
				return nil, err
			}
			return resp.Header, nil
		}
	}
	compact := func(rev int64) func(s *server) (*pb.ResponseHeader, error) {
		return func(s *server) (*pb.ResponseHeader, error) {
			resp, err := s.cli.Compact(ctx, rev, clientv3.WithCompactPhysical())
			if err != nil {
				return nil, err
			}
			return resp.Header, nil
		}
	}
	// agree compares everything a client reads of the two, HashKV at every
	// revision not compacted among it, but for HashKV at skipHashAt, and
	// returns what it read of etcd.
	agree := func(when string, wantRev, wantCompact int64, skipHashAt ...int64) state {
		t.Helper()
		sc, se := capture(t, c), capture(t, e)
		if se.Revision != wantRev || se.CompactRevision != wantCompact {
			t.Fatalf("%s: etcd is at revision %d, compacted %d; the test expects %d and %d", when, se.Revision, se.CompactRevision, wantRev, wantCompact)
		}
		compareStates(t, e, c, se, sc, skipHashAt...)
		return se
	}
	// compactAndAgree compacts both, whose latest revision is rev, at the
	// revision at, and compares them (agree) with HashKV at the compaction
	// revision on its own: etcd answers
	// there the hash it took while compacting, of the key space as it was
	// before the compaction (which is what HashKV answered at that
	// revision before it), with the compact_revision of the compaction
	// before; it keeps the hashes of its latest 10 compactions, in memory
	// only (etcd's mvcc.hashStorage, which its compaction hash check
	// compares across members).
	compactAndAgree := func(when string, rev, at int64, before state) state {
		t.Helper()
		do("compact", compact(at))
		after := agree(when, rev, at, at)
		if got, want := after.Hashes[at], before.Hashes[at]; got != want {
			t.Fatalf("%s: etcd's HashKV at the compaction revision %d is %+v; it was %+v before the compaction, which the test expects it to keep answering",
				when, at, got, want)
		}
		// Cairn answers from the data, as etcd does once it has restarted
		// (it keeps those hashes in memory only): checked at the end.
		return after
	}

	const lease1, lease2 = 0x1001, 0x2002
	do("grant", grant(lease1, 300))
	do("grant", grant(lease2, 120))
	do("put", op(clientv3.OpPut("k1", "v1")))
	do("put", op(clientv3.OpPut("k2", "v2")))
	do("put", op(clientv3.OpPut("k1", "v1b")))
	do("put a binary key", op(clientv3.OpPut("bin\x00\xff", "\x00\x01\x02")))
	do("put 8 KiB", op(clientv3.OpPut("big", strings.Repeat("0123456789abcdef", 512))))
	do("put empty", op(clientv3.OpPut("empty", "")))
	do("put with lease", op(clientv3.OpPut("l1", "a", clientv3.WithLease(lease1))))
	do("put with lease", op(clientv3.OpPut("l2", "b", clientv3.WithLease(lease1))))
	do("put with lease", op(clientv3.OpPut("l3", "c", clientv3.WithLease(lease2))))
	do("txn, then", op(clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.Version("k1"), "=", 2)},
		[]clientv3.Op{clientv3.OpPut("k3", "v3"), clientv3.OpDelete("k2"), clientv3.OpPut("k4", "v4", clientv3.WithLease(lease2))},
		[]clientv3.Op{clientv3.OpPut("never", "x")})))
	do("txn, else", op(clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.Value("k1"), "=", "nope")},
		[]clientv3.Op{clientv3.OpPut("never", "x")},
		[]clientv3.Op{clientv3.OpPut("k5", "v5"), clientv3.OpPut("k6", "v6")})))
	do("txn, read only", op(clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpGet("k1")}, nil)))
	do("nested txn", op(clientv3.OpTxn(nil, []clientv3.Op{
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision("k3"), ">", 0)},
			[]clientv3.Op{clientv3.OpPut("k7", "v7")}, nil),
		clientv3.OpPut("k8", "v8"),
	}, nil)))
	do("put, ignore value", op(clientv3.OpPut("k1", "", clientv3.WithIgnoreValue())))
	do("put, ignore lease", op(clientv3.OpPut("l1", "a2", clientv3.WithIgnoreLease())))
	do("put, prev kv", op(clientv3.OpPut("k3", "v3b", clientv3.WithPrevKV())))
	tombstone := do("delete", op(clientv3.OpDelete("k1")))
	do("delete a range", op(clientv3.OpDelete("k5", clientv3.WithRange("k7"))))
	do("delete nothing", op(clientv3.OpDelete("absent")))
	rev := do("put a deleted key again", op(clientv3.OpPut("k1", "reborn")))
	st := agree("before any compaction", rev, -1)

	// Compacted at a deletion: the tombstone's revision.
	st = compactAndAgree("compacted at a deletion", rev, tombstone, st)

	do("revoke", revoke(lease2)) // deletes l3 and k4
	do("put", op(clientv3.OpPut("dir/a", "1")))
	do("put", op(clientv3.OpPut("dir/b", "2", clientv3.WithLease(lease1))))
	do("delete a prefix", op(clientv3.OpDelete("dir/", clientv3.WithPrefix())))
	do("put", op(clientv3.OpPut("dir/a", "3")))
	rev = do("put", op(clientv3.OpPut("k3", "v3c")))
	st = agree("after more writes", rev, tombstone, tombstone)

	// Compacted between the latest writes, then at the latest revision.
	st = compactAndAgree("compacted between writes", rev, rev-2, st)
	st = compactAndAgree("compacted at the latest revision", rev, rev, st)
	rev = do("put after compaction", op(clientv3.OpPut("k9", "v9")))
	agree("written after compaction", rev, rev-1, rev-1)

	// Restarted, etcd has forgotten the hashes it took when compacting and
	// answers HashKV from its data everywhere, as Cairn does: then every
	// answer agrees, at the compaction revisions too.
	restart(t, e)
	compareStates(t, e, c, capture(t, e), capture(t, c))
}
