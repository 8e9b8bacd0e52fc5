//go:build cairnbugs

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestStaleReadsBugIsFound proves the linearizability check can fail: a
// cairn that answers linearizable reads without a ReadIndex round serves
// stale values from followers and cut-off leaders.
//
//	go test -tags cairnbugs ./cmd/chaos -run TestStaleReadsBugIsFound
func TestStaleReadsBugIsFound(t *testing.T) {
	code, out, dir := runShort(t, true, "-nodes", "3", "-duration", "20s", "-seed", "2", "-faults", "partition", "-bug", "stale-reads")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !regexp.MustCompile(`(?m)^linearizable\s+FAIL\s+NOT linearizable`).MatchString(out) {
		t.Fatalf("the summary does not report a linearizability violation")
	}
	if !regexp.MustCompile(`(?m)^\d+ passed, [1-9]\d* failed$`).MatchString(out) {
		t.Fatalf("no failing verdict line")
	}
	if st, err := os.Stat(filepath.Join(dir, "history.html")); err != nil || st.Size() == 0 {
		t.Fatalf("history.html: %v", err)
	}
}

// TestSkipWALFsyncBugIsFoundByPowerCuts proves the power nemesis tests
// fsync discipline: a cairn whose WAL never fsyncs loses acknowledged
// entries when a majority loses power, which kill -9 alone never shows.
//
//	go test -tags cairnbugs ./cmd/chaos -run TestSkipWALFsyncBugIsFoundByPowerCuts
func TestSkipWALFsyncBugIsFoundByPowerCuts(t *testing.T) {
	needFUSE(t)
	code, out, _ := runShort(t, true, "-nodes", "3", "-duration", "20s", "-seed", "3", "-faults", "power", "-bug", "skip-wal-fsync", "-check-timeout", "60s")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !regexp.MustCompile(`(?m)^faults\s+\d+: .*power/majority`).MatchString(out) {
		t.Fatalf("the schedule of seed 3 has no majority power cut any more")
	}
	// The WAL's loss shows as acknowledged writes gone (linearizable), a
	// member with a shorter log (converged), or one that refuses what its
	// disk kept (disk, restart).
	if !regexp.MustCompile(`(?m)^(linearizable|converged|disk|restart)\s+FAIL`).MatchString(out) {
		t.Fatalf("no check failed on the lost WAL")
	}
}
