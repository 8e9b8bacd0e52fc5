package node

import (
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// The in-memory raft log is trimmed every trimEvery applied entries to the
// last SnapshotCatchUpEntries, as etcd 3.7 trims it, not only at the WAL's
// snapshots every SnapshotCount entries: it never holds much more than the
// catch-up entries. The data stays whole.
func TestInMemoryLogIsTrimmedBetweenSnapshots(t *testing.T) {
	c := newTestCoreWith(t, 1, func(cfg *Config) {
		cfg.SnapshotCount = 3000
		cfg.SnapshotCatchUpEntries = 500
	})
	if n := ticksToLead(t, c, 50); n > 50 {
		t.Fatal("the single member did not lead")
	}
	const puts = 2500 // below SnapshotCount: only the trim can shorten the log
	for i := range puts {
		acked := false
		if _, err := c.Propose(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: fmt.Appendf(nil, "k%05d", i), Value: []byte("v")}}, func(r Result) { acked = r.Err == nil }); err != nil {
			t.Fatal(err)
		}
		for c.HasReady() {
			if err := c.Process(); err != nil {
				t.Fatal(err)
			}
		}
		if !acked {
			t.Fatalf("put %d not acknowledged", i)
		}
		first, _ := c.storage.FirstIndex()
		last, _ := c.storage.LastIndex()
		if held := last - first + 1; held > 500+trimEvery+1 {
			t.Fatalf("after %d puts the in-memory log holds %d entries [%d, %d], want at most %d", i+1, held, first, last, 500+trimEvery+1)
		}
	}
	if c.snapIndex != 0 {
		t.Fatalf("a WAL snapshot was taken at %d; the test needs none", c.snapIndex)
	}
	first, _ := c.storage.FirstIndex()
	if first < uint64(puts)-500-trimEvery {
		t.Fatalf("first index %d after %d puts: the log was not trimmed", first, puts)
	}
	r, err := c.kv.Range(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), CountOnly: true})
	if err != nil || r.Count != puts {
		t.Fatalf("count of keys = %v, %v; want %d", r.GetCount(), err, puts)
	}
}
