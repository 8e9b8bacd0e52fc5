package wal

import (
	"math/rand/v2"
	"testing"
)

// The WAL's directory entries must be durable, not only its bytes: a
// MemFS crash keeps only the entries of each directory as of its last
// SyncDir (vfs.MemFS).

// TestCreateMakesItsParentDirectoriesDurable: a WAL created where no
// directory existed yet survives a power cut with what it saved. Before
// Create synced the directories it made, the crash lost /data, WAL and all.
func TestCreateMakesItsParentDirectoriesDurable(t *testing.T) {
	cfg, m := memConfig(0)
	cfg.Dir = "/data/member/wal"
	w := mustCreate(t, cfg, "md")
	mustSave(t, w, hs(1, 1, 3), ents(1, 3, 1))
	_, got := reopen(t, Config{FS: m.Crash(rand.New(rand.NewPCG(1, 1)), true), Dir: cfg.Dir, SegmentSize: cfg.SegmentSize})
	if string(got.md) != "md" {
		t.Fatalf("metadata %q after the crash, want md", got.md)
	}
	checkHardState(t, got.st, hs(1, 1, 3))
	checkEntries(t, got.ents, ents(1, 3, 1))
}

// TestCutSegmentsSurviveACrash: entries saved into segments cut after the
// first come back after a power cut (each cut syncs the WAL directory).
func TestCutSegmentsSurviveACrash(t *testing.T) {
	cfg, m := memConfig(1024)
	w := mustCreate(t, cfg, "md")
	for i := uint64(1); i <= 60; i++ {
		mustSave(t, w, hs(1, 1, i), ents(i, i, 1))
	}
	if n := len(w.segs); n < 3 {
		t.Fatalf("%d segments, want the saves to cut at least 2", n)
	}
	_, got := reopen(t, Config{FS: m.Crash(rand.New(rand.NewPCG(1, 2)), true), Dir: cfg.Dir, SegmentSize: cfg.SegmentSize})
	checkHardState(t, got.st, hs(1, 1, 60))
	checkEntries(t, got.ents, ents(1, 60, 1))
}

// TestReleasedSegmentsStayReleasedAfterACrash: a segment ReleaseTo removed
// does not come back (the removal's directory is synced).
func TestReleasedSegmentsStayReleasedAfterACrash(t *testing.T) {
	cfg, m := memConfig(1024)
	w := mustCreate(t, cfg, "md")
	for i := uint64(1); i <= 60; i++ {
		mustSave(t, w, hs(1, 1, i), ents(i, i, 1))
	}
	if err := w.SaveSnapshot(snapMeta(50, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.ReleaseTo(50); err != nil {
		t.Fatal(err)
	}
	want, err := m.List(cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Crash(nil, false).List(cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("after the crash the WAL holds %v, want %v", got, want)
	}
}
