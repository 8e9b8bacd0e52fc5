package node

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/vfs"
)

// StageSnapshot writes the database where the core installs it from, under
// a temporary name first: nothing partial is ever at the final path.
func TestStageSnapshotWritesTheFileTheCoreInstalls(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "member", "snap"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("db"), 1000)
	n, err := StageSnapshot(dir, 42, bytes.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("StageSnapshot = %d, %v", n, err)
	}
	got, err := os.ReadFile(snapDBPath(dir, 42))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("staged file: %d bytes, %v", len(got), err)
	}
	// A stream that fails midway leaves nothing behind.
	if _, err := StageSnapshot(dir, 43, &failingReader{n: 100}); err == nil {
		t.Fatal("StageSnapshot of a failing stream succeeded")
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "member", "snap"))
	if len(ents) != 2 || ents[0].Name() != filepath.Base(snapDBPath(dir, 42)) || ents[1].Name() != filepath.Base(snapDBPath(dir, 42))+stagedSumSuffix {
		t.Fatalf("snap dir holds %v, want only the staged snapshot 42 and its checksum", ents)
	}
}

// A staged database is checked against the checksum saved beside it: a
// flipped byte or a lost tail is refused with a message naming the file,
// and a file staged without a checksum (an older Cairn's) passes.
func TestStagedSnapshotChecksum(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "member", "snap"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("bbolt page "), 5000)
	if _, err := StageSnapshot(dir, 42, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	path := snapDBPath(dir, 42)
	if err := verifyStaged(vfs.OS(), path); err != nil {
		t.Fatalf("intact staged file: %v", err)
	}
	for name, damaged := range map[string][]byte{
		"flipped byte": append(append(bytes.Clone(data[:1000]), data[1000]^1), data[1001:]...),
		"lost tail":    data[:4096],
	} {
		if err := os.WriteFile(path, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		err := verifyStaged(vfs.OS(), path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "is damaged") {
			t.Fatalf("%s: verifyStaged = %v, want an error naming %s as damaged", name, err, path)
		}
	}
	if err := os.Remove(path + stagedSumSuffix); err != nil {
		t.Fatal(err)
	}
	if err := verifyStaged(vfs.OS(), path); err != nil {
		t.Fatalf("staged file without a checksum: %v", err)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(b []byte) (int, error) {
	if f.n <= 0 {
		return 0, os.ErrClosed
	}
	k := min(len(b), f.n)
	f.n -= k
	return k, nil
}

// Snapshot databases staged (or half-staged) before a restart, and never
// installed, are removed when the member starts again.
func TestRestartRemovesStagedSnapshotsNeverInstalled(t *testing.T) {
	c := newTestCore(t, 1)
	cfg := c.cfg
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Dir(DBPath(cfg.DataDir))
	for _, name := range []string{filepath.Base(snapDBPath("", 7)), filepath.Base(snapDBPath("", 9)) + ".part123"} {
		if err := os.WriteFile(filepath.Join(snap, name), []byte("stale"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Clock = clock.NewFake(time.Unix(200, 0))
	if cfg.WALFS == nil {
		cfg.WALFS = vfs.OS()
	}
	c2, err := NewCore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ents, err := os.ReadDir(snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "db" {
			t.Errorf("%s is still in %s after a restart", e.Name(), snap)
		}
	}
}
