package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/vfs"
)

func parse(t *testing.T, args ...string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(args, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestCoreFlagsByDefault(t *testing.T) {
	var c node.Config
	applyCoreFlags(&c, parse(t))
	if c.WALFS != nil || c.BackendNoSync || c.ObserveWALSave != nil || c.BackendMlock || c.DisablePreVote || c.NoInitialElectionTickAdvance {
		t.Fatalf("defaults changed the core's configuration: %+v", c)
	}
	if c.CompactionBatchLimit != config.DefaultCompactionBatchLimit || c.CompactionPace != 10*time.Millisecond {
		t.Fatalf("CompactionBatchLimit = %d, CompactionPace = %v", c.CompactionBatchLimit, c.CompactionPace)
	}
}

func TestCoreFlags(t *testing.T) {
	var c node.Config
	applyCoreFlags(&c, parse(t, "--unsafe-no-fsync", "--memory-mlock", "--compaction-batch-limit", "7",
		"--compaction-sleep-interval", "3ms", "--pre-vote=false", "--initial-election-tick-advance=false"))
	if c.WALFS == nil || !c.BackendNoSync || c.ObserveWALSave == nil {
		t.Fatalf("--unsafe-no-fsync: WALFS %v, BackendNoSync %v, ObserveWALSave set %v", c.WALFS, c.BackendNoSync, c.ObserveWALSave != nil)
	}
	if c.WALFS == vfs.OS() {
		t.Fatal("--unsafe-no-fsync left the WAL on a syncing file system")
	}
	if !c.BackendMlock || c.CompactionBatchLimit != 7 || c.CompactionPace != 3*time.Millisecond || !c.DisablePreVote || !c.NoInitialElectionTickAdvance {
		t.Fatalf("got %+v", c)
	}
}

func TestCompactHashCheckTime(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, time.Minute},
		{[]string{"--compact-hash-check-time", "15s"}, 15 * time.Second},
		{[]string{"--feature-gates", "CompactHashCheck=false"}, -1},
		{[]string{"--feature-gates", "AllAlpha=false"}, -1},
	} {
		if got := compactHashCheckTime(parse(t, tc.args...)); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestCheckDirsCreatesAndTouches(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := checkDirs(data, node.WALDir(data)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{data, filepath.Join(data, "member"), filepath.Dir(node.DBPath(data))} {
		st, err := os.Stat(d)
		if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v", d, st, err)
		}
		if _, err := os.Stat(filepath.Join(d, ".touch")); !os.IsNotExist(err) {
			t.Fatalf("%s/.touch left behind: %v", d, err)
		}
	}
	if _, err := os.Stat(node.WALDir(data)); !os.IsNotExist(err) {
		t.Fatalf("the WAL dir of a new member was created by the check: %v", err)
	}
}

// The errors are etcd's; a path that is a file stands in for an
// unwritable directory (permissions do not stop root).
func TestCheckDirsErrors(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := checkDirs(file, filepath.Join(base, "wal"))
	if err == nil || !strings.HasPrefix(err.Error(), "cannot access data directory: mkdir "+file+": not a directory") {
		t.Fatalf("data dir is a file: %v", err)
	}
	data := filepath.Join(base, "data")
	if err := checkDirs(data, file); err == nil || err.Error() != "cannot write to WAL directory: open "+file+"/.touch: not a directory" {
		t.Fatalf("WAL dir is a file: %v", err)
	}
}
