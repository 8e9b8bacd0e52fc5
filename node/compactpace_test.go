package node

import (
	"fmt"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/clock"
)

// The loop steps a compaction at most once per compaction pace however
// often it turns (as etcd sleeps --compaction-sleep-interval between
// batches), and a step after a longer wait catches up.
func TestCompactionIsPacedByTheClock(t *testing.T) {
	fake := clock.NewFake(time.Unix(100, 0))
	c := newTestCoreWith(t, 1, func(cfg *Config) {
		cfg.Clock = fake
		cfg.CompactionBatchLimit = 10
		cfg.CompactionPace = 10 * time.Millisecond
	})
	if n := ticksToLead(t, c, 50); n > 50 {
		t.Fatal("the single member did not lead")
	}
	process := func() {
		t.Helper()
		for c.HasReady() {
			if err := c.Process(); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Process(); err != nil { // a turn of the loop with nothing ready
			t.Fatal(err)
		}
	}
	propose := func(r *pb.InternalRaftRequest) {
		t.Helper()
		var res *Result
		if _, err := c.Propose(r, func(x Result) { res = &x }); err != nil {
			t.Fatal(err)
		}
		process()
		if res == nil || res.Err != nil {
			t.Fatalf("%v: %v", r, res)
		}
	}
	for i := range 300 {
		propose(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: fmt.Appendf(nil, "k%d", i%10), Value: []byte("v")}})
	}
	rev := c.kv.Rev()
	propose(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}})
	// Many turns of the loop in no time: one step at most (10 of ~300
	// revisions), the compaction goes on.
	for range 50 {
		process()
	}
	if !c.kv.Compacting() {
		t.Fatal("the compaction finished in no time: the loop stepped it on every turn")
	}
	// Time passes: a step per pace, catching up after longer waits.
	steps := 0
	for c.kv.Compacting() {
		if steps++; steps > 100 {
			t.Fatal("the compaction did not finish in 100 paces")
		}
		fake.Advance(10 * time.Millisecond)
		process()
	}
	if steps < 10 {
		t.Fatalf("%d revisions, 10 a batch, compacted in %d paces", rev, steps)
	}
	t.Logf("%d revisions compacted in %d paces of 10 ms", rev, steps)
}
