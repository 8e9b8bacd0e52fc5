package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/clock"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

func testConfig(t testing.TB) Config {
	return Config{Path: filepath.Join(t.TempDir(), "db"), NoSync: true, Clock: clock.NewFake(time.Unix(100, 0))}
}

func openTest(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustPut(t testing.TB, s *Store, k, v string) *pb.PutResponse {
	t.Helper()
	r, err := s.Put(&pb.PutRequest{Key: []byte(k), Value: []byte(v)})
	if err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
	return r
}

func mustRange(t testing.TB, s *Store, r *pb.RangeRequest) *pb.RangeResponse {
	t.Helper()
	resp, err := s.Range(r)
	if err != nil {
		t.Fatalf("Range(%v): %v", r, err)
	}
	return resp
}

func kvEqual(a, b *mvccpb.KeyValue) bool { return proto.Equal(a, b) }

func TestFreshStoreStartsAtRevisionOne(t *testing.T) {
	s := openTest(t, testConfig(t))
	if got := s.Rev(); got != 1 {
		t.Fatalf("Rev() = %d, want 1", got)
	}
	if got := mustPut(t, s, "a", "1").Header.Revision; got != 2 {
		t.Fatalf("first put revision = %d, want 2", got)
	}
}

func TestPutVersionsAndDeleteResetsVersion(t *testing.T) {
	s := openTest(t, testConfig(t))
	mustPut(t, s, "a", "1") // rev 2
	mustPut(t, s, "a", "2") // rev 3
	got := mustRange(t, s, &pb.RangeRequest{Key: []byte("a")})
	want := &mvccpb.KeyValue{Key: []byte("a"), Value: []byte("2"), CreateRevision: 2, ModRevision: 3, Version: 2}
	if len(got.Kvs) != 1 || !kvEqual(got.Kvs[0], want) || got.Header.Revision != 3 || got.Count != 1 {
		t.Fatalf("Range = %v, want %v at rev 3", got, want)
	}
	dr, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("a"), PrevKv: true})
	if err != nil || dr.Deleted != 1 || dr.Header.Revision != 4 || len(dr.PrevKvs) != 1 || !kvEqual(dr.PrevKvs[0], want) {
		t.Fatalf("DeleteRange = %v, %v", dr, err)
	}
	dr, err = s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("a")})
	if err != nil || dr.Deleted != 0 || dr.Header.Revision != 4 || s.Rev() != 4 {
		t.Fatalf("delete of nothing = %v, %v, rev %d; want 0 deleted at rev 4", dr, err, s.Rev())
	}
	mustPut(t, s, "a", "3") // rev 5
	got = mustRange(t, s, &pb.RangeRequest{Key: []byte("a")})
	want = &mvccpb.KeyValue{Key: []byte("a"), Value: []byte("3"), CreateRevision: 5, ModRevision: 5, Version: 1}
	if len(got.Kvs) != 1 || !kvEqual(got.Kvs[0], want) {
		t.Fatalf("after recreate Range = %v, want %v", got.Kvs, want)
	}
	old := mustRange(t, s, &pb.RangeRequest{Key: []byte("a"), Revision: 2})
	if len(old.Kvs) != 1 || string(old.Kvs[0].Value) != "1" || old.Header.Revision != 5 {
		t.Fatalf("Range at rev 2 = %v", old)
	}
	if gone := mustRange(t, s, &pb.RangeRequest{Key: []byte("a"), Revision: 4}); len(gone.Kvs) != 0 || gone.Count != 0 {
		t.Fatalf("Range at rev 4 (deleted) = %v", gone)
	}
}

func TestRangeLimitMoreAndCount(t *testing.T) {
	s := openTest(t, testConfig(t))
	for _, k := range []string{"c", "a", "d", "b"} {
		mustPut(t, s, k, k)
	}
	resp := mustRange(t, s, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), Limit: 2})
	if len(resp.Kvs) != 2 || string(resp.Kvs[0].Key) != "a" || string(resp.Kvs[1].Key) != "b" || !resp.More || resp.Count != 3 {
		t.Fatalf("limited range = %v", resp)
	}
	resp = mustRange(t, s, &pb.RangeRequest{Key: []byte("b"), RangeEnd: []byte{0}, SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_MOD})
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	if want := []string{"b", "d", "c"}; !equalStrings(keys, want) || resp.Count != 3 {
		t.Fatalf("sorted by mod desc = %v (count %d), want %v", keys, resp.Count, want)
	}
	resp = mustRange(t, s, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, CountOnly: true})
	if len(resp.Kvs) != 0 || resp.Count != 4 || resp.More {
		t.Fatalf("count only = %v", resp)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTxnOneRevisionAndReadsOwnWrites(t *testing.T) {
	s := openTest(t, testConfig(t))
	mustPut(t, s, "a", "1") // rev 2
	resp, err := s.Txn(&pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("1")}}},
		Success: []*pb.RequestOp{
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("b"), Value: []byte("x")}}},
			{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z")}}},
			{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("a")}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Succeeded || resp.Header.Revision != 3 || s.Rev() != 3 {
		t.Fatalf("txn = %v, rev %d", resp, s.Rev())
	}
	rr := resp.Responses[1].GetResponseRange()
	if rr.Count != 2 || string(rr.Kvs[1].Key) != "b" || rr.Kvs[1].ModRevision != 3 {
		t.Fatalf("range inside txn = %v", rr)
	}
	all := mustRange(t, s, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z")})
	if all.Count != 1 || string(all.Kvs[0].Key) != "b" {
		t.Fatalf("after txn = %v", all)
	}
}

func TestTxnFailsAtomically(t *testing.T) {
	s := openTest(t, testConfig(t))
	mustPut(t, s, "a", "1")
	_, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("b"), Value: []byte("x")}}},
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("zz"), IgnoreValue: true}}},
	}})
	if !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("err = %v, want ErrKeyNotFound", err)
	}
	if s.Rev() != 2 || mustRange(t, s, &pb.RangeRequest{Key: []byte("b")}).Count != 0 {
		t.Fatalf("failed txn left changes: rev %d", s.Rev())
	}
}

func TestEventHookGetsAllEventsOfARevision(t *testing.T) {
	s := openTest(t, testConfig(t))
	var gotRev int64
	var got []*mvccpb.Event
	s.SetEventHook(func(rev int64, evs []*mvccpb.Event) { gotRev, got = rev, evs })
	mustPut(t, s, "a", "1")
	_, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("b"), Value: []byte("2")}}},
		{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("a")}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []*mvccpb.Event{
		{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{Key: []byte("b"), Value: []byte("2"), CreateRevision: 3, ModRevision: 3, Version: 1}},
		{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte("a"), ModRevision: 3}},
	}
	if gotRev != 3 || len(got) != 2 || !proto.Equal(got[0], want[0]) || !proto.Equal(got[1], want[1]) {
		t.Fatalf("hook got rev %d %v, want 3 %v", gotRev, got, want)
	}
	gotRev = 0
	if _, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("nothing")}); err != nil || gotRev != 0 {
		t.Fatalf("hook called for a no-op delete: rev %d err %v", gotRev, err)
	}
}

func TestAuxSeesOpenBatchAndPersists(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	s.AuxPut([]byte("members"), []byte("2"), []byte("b"))
	s.AuxPut([]byte("members"), []byte("1"), []byte("a"))
	if v, ok := s.AuxGet([]byte("members"), []byte("1")); !ok || string(v) != "a" {
		t.Fatalf("AuxGet = %q, %v", v, ok)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	var got []string
	if err := s.AuxForEach([]byte("members"), func(k, v []byte) error { got = append(got, string(k)+"="+string(v)); return nil }); err != nil {
		t.Fatal(err)
	}
	if !equalStrings(got, []string{"1=a", "2=b"}) {
		t.Fatalf("AuxForEach after reopen = %v", got)
	}
	s.AuxDelete([]byte("members"), []byte("1"))
	if _, ok := s.AuxGet([]byte("members"), []byte("1")); ok {
		t.Fatal("AuxGet after AuxDelete found the key")
	}
}

func TestMaybeCommitFollowsClockAndLimit(t *testing.T) {
	cfg := testConfig(t)
	fc := cfg.Clock.(*clock.Fake)
	cfg.BatchInterval = time.Second
	cfg.BatchLimit = 3
	s := openTest(t, cfg)
	mustPut(t, s, "a", "1")
	if err := s.MaybeCommit(); err != nil {
		t.Fatal(err)
	}
	if s.batchN != 1 {
		t.Fatalf("committed before the interval: batchN = %d", s.batchN)
	}
	fc.Advance(time.Second)
	if err := s.MaybeCommit(); err != nil {
		t.Fatal(err)
	}
	if s.batchN != 0 {
		t.Fatalf("not committed after the interval: batchN = %d", s.batchN)
	}
	mustPut(t, s, "a", "2")
	mustPut(t, s, "a", "3")
	mustPut(t, s, "a", "4")
	if err := s.MaybeCommit(); err != nil {
		t.Fatal(err)
	}
	if s.batchN != 0 {
		t.Fatalf("not committed at the limit: batchN = %d", s.batchN)
	}
	mustPut(t, s, "a", "5")
	if err := s.Abandon(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	if r := mustRange(t, s, &pb.RangeRequest{Key: []byte("a")}); s.Rev() != 5 || !bytes.Equal(r.Kvs[0].Value, []byte("4")) {
		t.Fatalf("after crash rev %d value %q, want 5 and 4", s.Rev(), r.Kvs[0].Value)
	}
}

// LeasedKeys walks the live keys that carry a lease: the lessor rebuilds
// its attachments from it.
func TestLeasedKeysListsLiveLeasedKeys(t *testing.T) {
	s := openTest(t, testConfig(t))
	for _, p := range []*pb.PutRequest{
		{Key: []byte("a"), Lease: 7},
		{Key: []byte("b")},
		{Key: []byte("c"), Lease: 8},
		{Key: []byte("d"), Lease: 7},
		{Key: []byte("c")}, // c drops its lease
	} {
		if _, err := s.Put(p); err != nil {
			t.Fatal(err)
		}
	}
	mustDeleteKey(t, s, "d")
	var got []string
	if err := s.LeasedKeys(func(key []byte, lease int64) { got = append(got, fmt.Sprintf("%s:%d", key, lease)) }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "a:7" {
		t.Fatalf("LeasedKeys = %v, want [a:7]", got)
	}
}

func mustDeleteKey(t *testing.T, s *Store, key string) {
	t.Helper()
	if _, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(key)}); err != nil {
		t.Fatal(err)
	}
}
