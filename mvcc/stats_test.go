package mvcc

import (
	"errors"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func statsPut(k, v string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}}
}

func statsRange(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k)}}}
}

func statsDelete(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)}}}
}

// Stats counts operations as etcd's mvcc metrics do: the operations inside
// transactions one by one, a transaction only when it holds more than one,
// failed requests not at all; Keys follows the keys that exist.
func TestStatsCountOperationsAndLiveKeys(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	mustPut(t, s, "a", "1")   // put, new key
	mustPut(t, s, "a", "22")  // put, same key
	mustPut(t, s, "b", "333") // put, new key
	mustRange(t, s, &pb.RangeRequest{Key: []byte("a")})
	if _, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("zz")}); err != nil { // deletes nothing
		t.Fatal(err)
	}
	// One txn: a range, a put of a new key and a delete of the range [a, b).
	if _, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{statsRange("a"), statsPut("c", "4444"), statsDelete("a", "b")}}); err != nil {
		t.Fatal(err)
	}
	// A one-op txn is not counted as a txn.
	if _, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{statsPut("d", "5")}}); err != nil {
		t.Fatal(err)
	}
	// A failed txn counts nothing and changes no key.
	_, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{statsPut("e", "6"), {Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("nope"), IgnoreValue: true}}}}})
	if !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("err = %v", err)
	}
	want := Stats{
		Puts: 5, Deletes: 2, Ranges: 2, Txns: 1,
		PutBytes: uint64(len("a1") + len("a22") + len("b333") + len("c4444") + len("d5")),
		Keys:     3, // b, c, d
	}
	if got := s.Stats(); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}

	// Keys is rebuilt from the database; the counters count since Open.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	if got := s.Stats(); got != (Stats{Keys: 3}) {
		t.Fatalf("after reopen Stats = %+v, want only Keys 3", got)
	}
	// Compaction keeps the live keys.
	if err := s.Compact(s.Rev()); err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		if done, err = s.CompactStep(); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Stats().Keys; got != 3 {
		t.Fatalf("after compaction Keys = %d, want 3", got)
	}
}

// The commit observer sees every batch commit, timed by the store's clock.
func TestCommitObserverTimesCommits(t *testing.T) {
	s := openTest(t, testConfig(t))
	var got []time.Duration
	s.SetCommitObserver(func(d time.Duration) { got = append(got, d) })
	mustPut(t, s, "a", "1")
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "a", "2")
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("observed %d commits, want 2", len(got))
	}
	s.SetCommitObserver(nil)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("observed %d commits after removing the observer, want 2", len(got))
	}
}
