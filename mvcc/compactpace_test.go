package mvcc

import (
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn/clock"
)

// A compaction step scans one batch when steps come close together, and a
// batch per CompactionPace since the previous step when they come further
// apart (at most compactionCatchUp): an idle member, which steps once a
// tick, compacts at the same pace as a busy one rather than one batch a
// tick.
func TestCompactStepKeepsItsPaceWhenStepsAreRare(t *testing.T) {
	cfg := testConfig(t)
	fc := cfg.Clock.(*clock.Fake)
	cfg.CompactionBatchLimit = 10
	cfg.CompactionPace = 10 * time.Millisecond
	s := openTest(t, cfg)
	for i := range 1000 {
		mustPut(t, s, fmt.Sprintf("k%d", i%10), fmt.Sprint(i)) // revs 2..1001
	}
	if err := s.Compact(1001); err != nil {
		t.Fatal(err)
	}
	var removed []int
	s.SetCompactionObserver(CompactionObserver{Step: func(st CompactionStep) { removed = append(removed, st.Keys) }})
	step := func(advance time.Duration) {
		t.Helper()
		fc.Advance(advance)
		if done, err := s.CompactStep(); done || err != nil {
			t.Fatalf("step = %v, %v; want not done", done, err)
		}
	}
	// Every revision scanned is removed but the 10 newest, the last batch's.
	step(0)                     // the first: one batch
	step(time.Millisecond)      // close after: one batch
	step(0)                     // no time at all: still one batch, never none
	step(35 * time.Millisecond) // three paces: three batches
	step(time.Second)           // a hundred paces: compactionCatchUp batches
	want := []int{10, 10, 10, 30, 10 * compactionCatchUp}
	if fmt.Sprint(removed) != fmt.Sprint(want) {
		t.Fatalf("revisions removed by each step %v, want %v", removed, want)
	}
	for done := false; !done; {
		fc.Advance(time.Second)
		var err error
		if done, err = s.CompactStep(); err != nil {
			t.Fatal(err)
		}
	}
	if n := bucketLen(t, s); n != 10 {
		t.Fatalf("%d revisions on disk after compaction, want 10", n)
	}
}
