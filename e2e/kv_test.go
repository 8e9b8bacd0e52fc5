package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// kvString renders a KeyValue as key=value@create/mod/version/lease, so
// a mismatch prints readably.
func kvString(kv *mvccpb.KeyValue) string {
	return fmt.Sprintf("%s=%s@c%d/m%d/v%d/l%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
}

func kvsString(kvs []*mvccpb.KeyValue) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = kvString(kv)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// want renders an expected KeyValue the way kvString renders a real one.
func want(key, value string, create, mod, version int64) string {
	return fmt.Sprintf("%s=%s@c%d/m%d/v%d/l0", key, value, create, mod, version)
}

func wantKVs(kvs ...string) string { return "[" + strings.Join(kvs, " ") + "]" }

// checkGet asserts a Get's kvs, count, more flag and header revision.
func checkGet(t *testing.T, what string, resp *clientv3.GetResponse, err error, wantKvs string, count int64, more bool, rev int64) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got := kvsString(resp.Kvs); got != wantKvs {
		t.Errorf("%s: kvs = %s, want %s", what, got, wantKvs)
	}
	if resp.Count != count || resp.More != more || resp.Header.Revision != rev {
		t.Errorf("%s: count=%d more=%v rev=%d, want count=%d more=%v rev=%d",
			what, resp.Count, resp.More, resp.Header.Revision, count, more, rev)
	}
}

// TestKVPutGetRevisionsAndVersions: a fresh cluster is at revision 1,
// each put bumps it by one, version counts puts since creation.
func TestKVPutGetRevisionsAndVersions(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)

	resp, err := cli.Get(ctx(t), "foo")
	checkGet(t, "get on empty store", resp, err, wantKVs(), 0, false, 1)
	h := resp.Header
	if h.ClusterId == 0 || h.MemberId == 0 || h.RaftTerm == 0 {
		t.Errorf("header %+v: cluster_id, member_id and raft_term must be set", h)
	}
	ml, err := cli.MemberList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 1 || ml.Members[0].ID != h.MemberId || ml.Header.ClusterId != h.ClusterId {
		t.Errorf("member list %v (cluster %x) does not match header member %x cluster %x", ml.Members, ml.Header.ClusterId, h.MemberId, h.ClusterId)
	}

	put, err := cli.Put(ctx(t), "foo", "bar")
	if err != nil {
		t.Fatal(err)
	}
	if put.Header.Revision != 2 || put.PrevKv != nil {
		t.Errorf("first put: rev=%d prev=%v, want rev=2 prev=nil", put.Header.Revision, put.PrevKv)
	}
	if put.Header.ClusterId != h.ClusterId || put.Header.MemberId != h.MemberId || put.Header.RaftTerm != h.RaftTerm {
		t.Errorf("put header %+v differs from get header %+v", put.Header, h)
	}
	resp, err = cli.Get(ctx(t), "foo")
	checkGet(t, "get foo", resp, err, wantKVs(want("foo", "bar", 2, 2, 1)), 1, false, 2)

	put, err = cli.Put(ctx(t), "foo", "baz", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if put.Header.Revision != 3 || put.PrevKv == nil || kvString(put.PrevKv) != want("foo", "bar", 2, 2, 1) {
		t.Errorf("second put: rev=%d prev=%v, want rev=3 prev=%s", put.Header.Revision, put.PrevKv, want("foo", "bar", 2, 2, 1))
	}
	resp, err = cli.Get(ctx(t), "foo")
	checkGet(t, "get foo after overwrite", resp, err, wantKVs(want("foo", "baz", 2, 3, 2)), 1, false, 3)

	// Serializable reads see the same data on a single member.
	resp, err = cli.Get(ctx(t), "foo", clientv3.WithSerializable())
	checkGet(t, "serializable get foo", resp, err, wantKVs(want("foo", "baz", 2, 3, 2)), 1, false, 3)

	// Binary keys and values, and an empty value, round-trip exactly.
	if _, err := cli.Put(ctx(t), "bin\x00\xff", ""); err != nil {
		t.Fatal(err)
	}
	resp, err = cli.Get(ctx(t), "bin\x00\xff")
	checkGet(t, "get binary key", resp, err, wantKVs(want("bin\x00\xff", "", 4, 4, 1)), 1, false, 4)

	// Get at an older revision sees the older value.
	resp, err = cli.Get(ctx(t), "foo", clientv3.WithRev(2))
	checkGet(t, "get foo at rev 2", resp, err, wantKVs(want("foo", "bar", 2, 2, 1)), 1, false, 4)
}

// putKeys puts each key with value "v-<key>" in order and returns the
// revision of the last put.
func putKeys(t *testing.T, cli *clientv3.Client, keys ...string) int64 {
	t.Helper()
	var rev int64
	for _, k := range keys {
		r, err := cli.Put(ctx(t), k, "v-"+k)
		if err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
		rev = r.Header.Revision
	}
	return rev
}

func TestKVRangeOptions(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)

	// k1..k5 at revisions 2..6, p/a p/b at 7, 8; then k2 again at 9.
	if rev := putKeys(t, cli, "k1", "k2", "k3", "k4", "k5", "p/a", "p/b"); rev != 8 {
		t.Fatalf("last put revision %d, want 8", rev)
	}
	if r, err := cli.Put(ctx(t), "k2", "z"); err != nil || r.Header.Revision != 9 {
		t.Fatalf("put k2: %v %v", r, err)
	}
	k1 := want("k1", "v-k1", 2, 2, 1)
	k2 := want("k2", "z", 3, 9, 2)
	k3 := want("k3", "v-k3", 4, 4, 1)
	k4 := want("k4", "v-k4", 5, 5, 1)
	k5 := want("k5", "v-k5", 6, 6, 1)
	pa := want("p/a", "v-p/a", 7, 7, 1)
	pb := want("p/b", "v-p/b", 8, 8, 1)

	// As in etcd, count is the number of keys in the range at the revision:
	// the min/max revision filters drop kvs but do not change count
	// (etcd-io/etcd#18267, documented rather than changed).
	cases := []struct {
		name  string
		key   string
		opts  []clientv3.OpOption
		kvs   string
		count int64
		more  bool
	}{
		{"prefix", "p/", []clientv3.OpOption{clientv3.WithPrefix()}, wantKVs(pa, pb), 2, false},
		{"range [k2,k4)", "k2", []clientv3.OpOption{clientv3.WithRange("k4")}, wantKVs(k2, k3), 2, false},
		{"from key k4", "k4", []clientv3.OpOption{clientv3.WithFromKey()}, wantKVs(k4, k5, pa, pb), 4, false},
		{"missing key", "nope", nil, wantKVs(), 0, false},
		{"limit 2", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(2)}, wantKVs(k1, k2), 5, true},
		{"limit 5 of 5", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(5)}, wantKVs(k1, k2, k3, k4, k5), 5, false},
		{"sort key descend", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}, wantKVs(k5, k4, k3, k2, k1), 5, false},
		{"sort mod descend limit 2", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend), clientv3.WithLimit(2)}, wantKVs(k2, k5), 5, true},
		{"sort mod ascend", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortAscend)}, wantKVs(k1, k3, k4, k5, k2), 5, false},
		{"sort create descend", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend)}, wantKVs(k5, k4, k3, k2, k1), 5, false},
		{"sort version descend", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByVersion, clientv3.SortDescend), clientv3.WithLimit(1)}, wantKVs(k2), 5, true},
		{"sort value ascend", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend)}, wantKVs(k1, k3, k4, k5, k2), 5, false},
		{"min mod rev 5", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinModRev(5)}, wantKVs(k2, k4, k5), 5, false},
		{"max mod rev 4", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMaxModRev(4)}, wantKVs(k1, k3), 5, false},
		{"min create rev 4", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinCreateRev(4)}, wantKVs(k3, k4, k5), 5, false},
		{"max create rev 3", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMaxCreateRev(3)}, wantKVs(k1, k2), 5, false},
		{"rev 4", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(4)},
			wantKVs(k1, want("k2", "v-k2", 3, 3, 1), k3), 3, false},
		{"rev 1 (before any write)", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(1)}, wantKVs(), 0, false},
		{"serializable prefix", "p/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSerializable()}, wantKVs(pa, pb), 2, false},
		{"all keys", "\x00", []clientv3.OpOption{clientv3.WithFromKey()}, wantKVs(k1, k2, k3, k4, k5, pa, pb), 7, false},
	}
	for _, tc := range cases {
		resp, err := cli.Get(ctx(t), tc.key, tc.opts...)
		checkGet(t, tc.name, resp, err, tc.kvs, tc.count, tc.more, 9)
	}

	// keys-only: keys and metadata, no values.
	resp, err := cli.Get(ctx(t), "p/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	checkGet(t, "keys only", resp, err, wantKVs(want("p/a", "", 7, 7, 1), want("p/b", "", 8, 8, 1)), 2, false, 9)
	// count-only: the count and no kvs.
	resp, err = cli.Get(ctx(t), "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	checkGet(t, "count only", resp, err, wantKVs(), 5, false, 9)
	resp, err = cli.Get(ctx(t), "k", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithMinModRev(6))
	checkGet(t, "count only with min mod rev", resp, err, wantKVs(), 5, false, 9)
}

func TestKVDelete(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)
	putKeys(t, cli, "a", "b/1", "b/2", "c") // revisions 2..5

	del, err := cli.Delete(ctx(t), "a", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if del.Deleted != 1 || del.Header.Revision != 6 || kvsString(del.PrevKvs) != wantKVs(want("a", "v-a", 2, 2, 1)) {
		t.Errorf("delete a: deleted=%d rev=%d prev=%s, want 1, 6, %s", del.Deleted, del.Header.Revision, kvsString(del.PrevKvs), want("a", "v-a", 2, 2, 1))
	}
	// Deleting nothing does not bump the revision.
	del, err = cli.Delete(ctx(t), "a")
	if err != nil {
		t.Fatal(err)
	}
	if del.Deleted != 0 || del.Header.Revision != 6 || len(del.PrevKvs) != 0 {
		t.Errorf("delete missing a: deleted=%d rev=%d prev=%v, want 0, 6, none", del.Deleted, del.Header.Revision, del.PrevKvs)
	}
	// A prefix delete of two keys is one revision; without prev-kv no kvs.
	del, err = cli.Delete(ctx(t), "b/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if del.Deleted != 2 || del.Header.Revision != 7 || len(del.PrevKvs) != 0 {
		t.Errorf("delete b/ prefix: deleted=%d rev=%d prev=%v, want 2, 7, none", del.Deleted, del.Header.Revision, del.PrevKvs)
	}
	resp, err := cli.Get(ctx(t), "", clientv3.WithFromKey())
	checkGet(t, "after deletes", resp, err, wantKVs(want("c", "v-c", 5, 5, 1)), 1, false, 7)
	// The deleted key is still visible at an older revision.
	resp, err = cli.Get(ctx(t), "b/", clientv3.WithPrefix(), clientv3.WithRev(6))
	checkGet(t, "b/ at rev 6", resp, err, wantKVs(want("b/1", "v-b/1", 3, 3, 1), want("b/2", "v-b/2", 4, 4, 1)), 2, false, 7)

	// Recreating a deleted key starts a new generation: version 1, new create revision.
	if _, err := cli.Put(ctx(t), "a", "again"); err != nil {
		t.Fatal(err)
	}
	resp, err = cli.Get(ctx(t), "a")
	checkGet(t, "recreated a", resp, err, wantKVs(want("a", "again", 8, 8, 1)), 1, false, 8)

	// Range delete [a, c) with prev kv; from-key delete of everything.
	del, err = cli.Delete(ctx(t), "a", clientv3.WithRange("c"), clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if del.Deleted != 1 || del.Header.Revision != 9 || kvsString(del.PrevKvs) != wantKVs(want("a", "again", 8, 8, 1)) {
		t.Errorf("delete [a,c): deleted=%d rev=%d prev=%s", del.Deleted, del.Header.Revision, kvsString(del.PrevKvs))
	}
	del, err = cli.Delete(ctx(t), "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	if del.Deleted != 1 || del.Header.Revision != 10 {
		t.Errorf("delete all: deleted=%d rev=%d, want 1, 10", del.Deleted, del.Header.Revision)
	}
}

func TestKVTxn(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)
	putKeys(t, cli, "x", "y")                             // x@2, y@3
	if _, err := cli.Put(ctx(t), "x", "x2"); err != nil { // x: create 2, mod 4, version 2
		t.Fatal(err)
	}

	type txnCase struct {
		name    string
		cmp     clientv3.Cmp
		succeed bool
	}
	cases := []txnCase{
		{"value =", clientv3.Compare(clientv3.Value("x"), "=", "x2"), true},
		{"value = wrong", clientv3.Compare(clientv3.Value("x"), "=", "v-x"), false},
		{"value >", clientv3.Compare(clientv3.Value("x"), ">", "x1"), true},
		{"value <", clientv3.Compare(clientv3.Value("x"), "<", "x1"), false},
		{"value !=", clientv3.Compare(clientv3.Value("x"), "!=", "x1"), true},
		{"version =", clientv3.Compare(clientv3.Version("x"), "=", 2), true},
		{"version >", clientv3.Compare(clientv3.Version("x"), ">", 2), false},
		{"version of missing = 0", clientv3.Compare(clientv3.Version("missing"), "=", 0), true},
		{"create =", clientv3.Compare(clientv3.CreateRevision("x"), "=", 2), true},
		{"create <", clientv3.Compare(clientv3.CreateRevision("y"), "<", 3), false},
		{"create of missing = 0", clientv3.Compare(clientv3.CreateRevision("missing"), "=", 0), true},
		{"mod =", clientv3.Compare(clientv3.ModRevision("x"), "=", 4), true},
		{"mod >", clientv3.Compare(clientv3.ModRevision("y"), ">", 3), false},
		{"mod !=", clientv3.Compare(clientv3.ModRevision("y"), "!=", 4), true},
		{"lease = 0", clientv3.Compare(clientv3.LeaseValue("x"), "=", 0), true},
		{"value of missing key", clientv3.Compare(clientv3.Value("missing"), "=", ""), false},
		{"mod over prefix", clientv3.Compare(clientv3.ModRevision("x"), "<", 5).WithPrefix(), true},
	}
	for _, tc := range cases {
		resp, err := cli.Txn(ctx(t)).If(tc.cmp).Then(clientv3.OpGet("y")).Else(clientv3.OpGet("x")).Commit()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.Succeeded != tc.succeed {
			t.Errorf("%s: succeeded=%v, want %v", tc.name, resp.Succeeded, tc.succeed)
		}
		if resp.Header.Revision != 4 {
			t.Errorf("%s: read-only txn rev=%d, want 4", tc.name, resp.Header.Revision)
		}
		wantKV := want("x", "x2", 2, 4, 2)
		if tc.succeed {
			wantKV = want("y", "v-y", 3, 3, 1)
		}
		if len(resp.Responses) != 1 || resp.Responses[0].GetResponseRange() == nil ||
			kvsString(resp.Responses[0].GetResponseRange().Kvs) != wantKVs(wantKV) {
			t.Errorf("%s: responses %v, want one range of %s", tc.name, resp.Responses, wantKV)
		}
	}

	// A write txn: several ops, one revision; reads in the txn see its own writes.
	resp, err := cli.Txn(ctx(t)).
		If(clientv3.Compare(clientv3.Value("x"), "=", "x2"), clientv3.Compare(clientv3.Version("y"), "=", 1)).
		Then(
			clientv3.OpPut("x", "x3", clientv3.WithPrevKV()),
			clientv3.OpPut("z", "z1"),
			clientv3.OpDelete("y", clientv3.WithPrevKV()),
			clientv3.OpGet("", clientv3.WithFromKey()),
		).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Succeeded || resp.Header.Revision != 5 || len(resp.Responses) != 4 {
		t.Fatalf("write txn: succeeded=%v rev=%d responses=%d, want true 5 4", resp.Succeeded, resp.Header.Revision, len(resp.Responses))
	}
	if p := resp.Responses[0].GetResponsePut(); p == nil || p.PrevKv == nil || kvString(p.PrevKv) != want("x", "x2", 2, 4, 2) {
		t.Errorf("txn put x response %v", resp.Responses[0])
	}
	if d := resp.Responses[2].GetResponseDeleteRange(); d == nil || d.Deleted != 1 || kvsString(d.PrevKvs) != wantKVs(want("y", "v-y", 3, 3, 1)) {
		t.Errorf("txn delete y response %v", resp.Responses[2])
	}
	if r := resp.Responses[3].GetResponseRange(); r == nil || kvsString(r.Kvs) != wantKVs(want("x", "x3", 2, 5, 3), want("z", "z1", 5, 5, 1)) {
		t.Errorf("txn range response %v, want x@5 and z@5", resp.Responses[3])
	}
	// Failure branch with a write.
	resp, err = cli.Txn(ctx(t)).If(clientv3.Compare(clientv3.Version("y"), ">", 0)).
		Then(clientv3.OpPut("never", "1")).
		Else(clientv3.OpPut("y", "back")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Succeeded || resp.Header.Revision != 6 || resp.Responses[0].GetResponsePut() == nil {
		t.Errorf("failure branch: %v", resp)
	}
	// Nested txn: the inner compare sees the state before the outer txn.
	resp, err = cli.Txn(ctx(t)).If(clientv3.Compare(clientv3.Value("y"), "=", "back")).
		Then(
			clientv3.OpPut("n1", "outer"),
			clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.Version("z"), "=", 1)},
				[]clientv3.Op{clientv3.OpPut("n2", "inner-then"), clientv3.OpGet("n1")},
				[]clientv3.Op{clientv3.OpPut("n2", "inner-else")},
			),
		).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Succeeded || resp.Header.Revision != 7 || len(resp.Responses) != 2 {
		t.Fatalf("nested txn: %v", resp)
	}
	inner := resp.Responses[1].GetResponseTxn()
	if inner == nil || !inner.Succeeded || len(inner.Responses) != 2 ||
		kvsString(inner.Responses[1].GetResponseRange().Kvs) != wantKVs(want("n1", "outer", 7, 7, 1)) {
		t.Errorf("nested txn inner response %v", inner)
	}
	got, err := cli.Get(ctx(t), "n", clientv3.WithPrefix())
	checkGet(t, "after nested txn", got, err, wantKVs(want("n1", "outer", 7, 7, 1), want("n2", "inner-then", 7, 7, 1)), 2, false, 7)

	// An empty txn succeeds and writes nothing.
	resp, err = cli.Txn(ctx(t)).Commit()
	if err != nil || !resp.Succeeded || resp.Header.Revision != 7 {
		t.Errorf("empty txn: %v %v", resp, err)
	}
}

func TestKVCompaction(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)
	for i := 1; i <= 5; i++ { // revisions 2..6
		if _, err := cli.Put(ctx(t), "c", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Get(ctx(t), "c", clientv3.WithRev(7)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Errorf("get at future rev 7: err=%v, want %v", err, rpctypes.ErrFutureRev)
	}
	cr, err := cli.Compact(ctx(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	if cr.Header.Revision != 6 {
		t.Errorf("compact header rev %d, want 6", cr.Header.Revision)
	}
	if _, err := cli.Get(ctx(t), "c", clientv3.WithRev(3)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("get at compacted rev 3: err=%v, want %v", err, rpctypes.ErrCompacted)
	}
	resp, err := cli.Get(ctx(t), "c", clientv3.WithRev(4))
	checkGet(t, "get at compact rev 4", resp, err, wantKVs(want("c", "3", 2, 4, 3)), 1, false, 6)
	resp, err = cli.Get(ctx(t), "c")
	checkGet(t, "get latest after compact", resp, err, wantKVs(want("c", "5", 2, 6, 5)), 1, false, 6)
	if _, err := cli.Compact(ctx(t), 4); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("compact again at 4: err=%v, want %v", err, rpctypes.ErrCompacted)
	}
	if _, err := cli.Compact(ctx(t), 3); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("compact at older rev 3: err=%v, want %v", err, rpctypes.ErrCompacted)
	}
	if _, err := cli.Compact(ctx(t), 100); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Errorf("compact at future rev 100: err=%v, want %v", err, rpctypes.ErrFutureRev)
	}
	// A txn reading a compacted revision fails as a get does.
	if _, err := cli.Txn(ctx(t)).Then(clientv3.OpGet("c", clientv3.WithRev(2))).Commit(); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("txn get at compacted rev: err=%v, want %v", err, rpctypes.ErrCompacted)
	}
	// Physical compaction returns once the compaction is done.
	if _, err := cli.Compact(ctx(t), 6, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("physical compact at 6: %v", err)
	}
	if _, err := cli.Get(ctx(t), "c", clientv3.WithRev(5)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("get at rev 5 after compact 6: err=%v, want %v", err, rpctypes.ErrCompacted)
	}
	resp, err = cli.Get(ctx(t), "c", clientv3.WithRev(6))
	checkGet(t, "get at rev 6", resp, err, wantKVs(want("c", "5", 2, 6, 5)), 1, false, 6)
}

func TestKVRequestErrors(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)

	if _, err := cli.Put(ctx(t), "", "v"); !errors.Is(err, rpctypes.ErrEmptyKey) {
		t.Errorf("put empty key: err=%v, want %v", err, rpctypes.ErrEmptyKey)
	}
	if _, err := cli.Get(ctx(t), ""); !errors.Is(err, rpctypes.ErrEmptyKey) {
		t.Errorf("get empty key: err=%v, want %v", err, rpctypes.ErrEmptyKey)
	}
	if _, err := cli.Delete(ctx(t), ""); !errors.Is(err, rpctypes.ErrEmptyKey) {
		t.Errorf("delete empty key: err=%v, want %v", err, rpctypes.ErrEmptyKey)
	}
	if _, err := cli.Txn(ctx(t)).Then(clientv3.OpPut("", "v")).Commit(); !errors.Is(err, rpctypes.ErrEmptyKey) {
		t.Errorf("txn put empty key: err=%v, want %v", err, rpctypes.ErrEmptyKey)
	}

	ops := func(n int) []clientv3.Op {
		out := make([]clientv3.Op, n)
		for i := range out {
			out[i] = clientv3.OpPut(fmt.Sprintf("op%03d", i), "v")
		}
		return out
	}
	if _, err := cli.Txn(ctx(t)).Then(ops(129)...).Commit(); !errors.Is(err, rpctypes.ErrTooManyOps) {
		t.Errorf("txn of 129 ops: err=%v, want %v", err, rpctypes.ErrTooManyOps)
	}
	resp, err := cli.Txn(ctx(t)).Then(ops(128)...).Commit()
	if err != nil || resp.Header.Revision != 2 {
		t.Fatalf("txn of 128 ops: %v %v, want rev 2", resp, err)
	}
	g, err := cli.Get(ctx(t), "op", clientv3.WithPrefix(), clientv3.WithCountOnly())
	checkGet(t, "count after 128-op txn", g, err, wantKVs(), 128, false, 2)

	if _, err := cli.Txn(ctx(t)).Then(clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")).Commit(); !errors.Is(err, rpctypes.ErrDuplicateKey) {
		t.Errorf("txn putting d twice: err=%v, want %v", err, rpctypes.ErrDuplicateKey)
	}
	if _, err := cli.Txn(ctx(t)).Then(clientv3.OpPut("d/1", "1"), clientv3.OpDelete("d/", clientv3.WithPrefix())).Commit(); !errors.Is(err, rpctypes.ErrDuplicateKey) {
		t.Errorf("txn put inside its delete range: err=%v, want %v", err, rpctypes.ErrDuplicateKey)
	}

	big := strings.Repeat("x", 1572864+1) // --max-request-bytes default is 1.5 MiB
	if _, err := cli.Put(ctx(t), "big", big); !errors.Is(err, rpctypes.ErrRequestTooLarge) {
		t.Errorf("put of 1.5 MiB+1 value: err=%v, want %v", err, rpctypes.ErrRequestTooLarge)
	}
	if _, err := cli.Txn(ctx(t)).Then(clientv3.OpPut("big", big)).Commit(); !errors.Is(err, rpctypes.ErrRequestTooLarge) {
		t.Errorf("txn put of 1.5 MiB+1 value: err=%v, want %v", err, rpctypes.ErrRequestTooLarge)
	}
	// Nothing of the rejected requests was written, and a 1 MiB value is fine.
	okVal := strings.Repeat("y", 1<<20)
	pr, err := cli.Put(ctx(t), "big", okVal)
	if err != nil || pr.Header.Revision != 3 {
		t.Fatalf("put 1 MiB value: %v %v, want rev 3", pr, err)
	}
	g, err = cli.Get(ctx(t), "big")
	if err != nil || len(g.Kvs) != 1 || string(g.Kvs[0].Value) != okVal || g.Kvs[0].ModRevision != 3 {
		t.Errorf("get big after rejected writes: %v", err)
	}
}
