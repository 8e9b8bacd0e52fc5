package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnkv/cairn/node"
)

func TestMain(m *testing.M) {
	runCheckDBChild() // checkDB runs this test binary as its child
	os.Exit(m.Run())
}

// restoredDir returns a member's data dir restored from makeSnapshot's
// snapshot.
func restoredDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "a")
	if err := restoreSnapshot(restoreOpts(makeSnapshot(t), dir, "a")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func walSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(node.WALDir(dir), "*.wal"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("WAL segments %v %v, want one", segs, err)
	}
	return segs[0]
}

// flip inverts n bytes of the file at path from offset off.
func flip(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func report(r *checkReport) string {
	var b bytes.Buffer
	r.print(&b)
	return b.String()
}

func TestCheckDataDirGood(t *testing.T) {
	dir := restoredDir(t)
	r := checkDataDir(dir, "", nil)
	if len(r.Problems) != 0 || len(r.Warnings) != 0 {
		t.Fatalf("a freshly restored dir has problems:\n%s", report(r))
	}
	if out := report(r); !strings.Contains(out, "checksums good") || !strings.Contains(out, "consistent index 3 (term 1) is within the WAL") {
		t.Errorf("report lacks the WAL and index checks:\n%s", out)
	}
}

// TestCheckDataDirFlippedWALByte: one flipped byte in the WAL (in a record
// with good records after it) is reported with the segment and offset.
func TestCheckDataDirFlippedWALByte(t *testing.T) {
	dir := restoredDir(t)
	seg := walSegment(t, dir)
	flip(t, seg, 50, 1) // inside the metadata record, the segment's second
	r := checkDataDir(dir, "", nil)
	out := report(r)
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "WAL segment "+seg+", offset ") {
		t.Fatalf("want one problem naming %s and an offset:\n%s", seg, out)
	}
}

// usedPages returns the pages of the database at path that hold data
// (branch or leaf pages not on the free list).
func usedPages(t *testing.T, path string) []int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pages []int
	_ = db.View(func(tx *bolt.Tx) error {
		for id := 2; ; id++ {
			info, err := tx.Page(id)
			if err != nil {
				t.Fatal(err)
			}
			if info == nil {
				return nil
			}
			if info.Type == "leaf" || info.Type == "branch" {
				pages = append(pages, id)
			}
		}
	})
	if len(pages) == 0 {
		t.Fatalf("no used page in %s", path)
	}
	return pages
}

// TestCheckDataDirCorruptDB: a damaged page holding data is reported,
// whether bbolt's check finds it or crashes on it, and so is a truncated
// file.
func TestCheckDataDirCorruptDB(t *testing.T) {
	pages := usedPages(t, node.DBPath(restoredDir(t)))
	for _, page := range pages {
		dir := restoredDir(t)
		db := node.DBPath(dir)
		flip(t, db, int64(page)*4096+16, 32)
		r := checkDataDir(dir, "", nil)
		if len(r.Problems) == 0 || !strings.Contains(r.Problems[0], "database "+db) {
			t.Errorf("page %d damaged: want a problem naming %s:\n%s", page, db, report(r))
		}
	}
	dir := restoredDir(t)
	if err := os.Truncate(node.DBPath(dir), 4096*3); err != nil {
		t.Fatal(err)
	}
	if r := checkDataDir(dir, "", nil); len(r.Problems) == 0 {
		t.Errorf("truncated database: no problem reported:\n%s", report(r))
	}
}

// TestCheckDataDirIndexAgainstWAL: a database behind the WAL's snapshot
// (an old file put back) or ahead of its log (a WAL that lost entries).
func TestCheckDataDirIndexAgainstWAL(t *testing.T) {
	for _, tc := range []struct {
		ci   uint64
		want string
	}{
		{1, "consistent index 1 is behind the WAL's snapshot marker at 3"},
		{9, "consistent index 9 is ahead of the WAL's last entry 3"},
	} {
		dir := restoredDir(t)
		db, err := bolt.Open(node.DBPath(dir), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("consistent_index"), binary.BigEndian.AppendUint64(nil, tc.ci))
		}); err != nil {
			t.Fatal(err)
		}
		db.Close()
		r := checkDataDir(dir, "", nil)
		if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], tc.want) {
			t.Errorf("consistent index %d: want one problem %q:\n%s", tc.ci, tc.want, report(r))
		}
		if tc.ci < 3 {
			// The snapshot's database staged beside it: an interrupted
			// install that cairn finishes, not a problem.
			if err := os.WriteFile(filepath.Join(dir, "member", "snap", "0000000000000003.snap.db"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if r := checkDataDir(dir, "", nil); len(r.Problems) != 0 || len(r.Warnings) != 1 {
				t.Errorf("an interrupted install: want one warning:\n%s", report(r))
			}
		}
	}
}

func TestCheckDataDirMissing(t *testing.T) {
	dir := t.TempDir()
	r := checkDataDir(dir, "", nil)
	if len(r.Problems) == 0 {
		t.Fatalf("an empty dir passes:\n%s", report(r))
	}
}

// etcdRestoredDir returns a data dir holding the WAL etcdutl snapshot
// restore wrote for a 3-member cluster (node/wal/etcdwal's fixture) and a
// database at its consistent index, 3.
func etcdRestoredDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	fixture := filepath.Join("..", "..", "node", "wal", "etcdwal", "testdata", "restored", "member")
	for _, sub := range []string{"wal", "snap"} {
		files, err := filepath.Glob(filepath.Join(fixture, sub, "*"))
		if err != nil || len(files) == 0 {
			t.Fatalf("fixture %s: %v %v", sub, files, err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "member", sub), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "member", sub, filepath.Base(f)), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := os.ReadFile(makeDB(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(node.DBPath(dir), b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(node.DBPath(dir), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("consistent_index"), binary.BigEndian.AppendUint64(nil, 3))
	}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCheckDataDirEtcdWAL: a data dir with etcd's WAL (cairn imports it
// at start) is checked with etcd's format; a flipped byte in it is found.
func TestCheckDataDirEtcdWAL(t *testing.T) {
	dir := etcdRestoredDir(t)
	r := checkDataDir(dir, "", nil)
	if out := report(r); len(r.Problems) != 0 || !strings.Contains(out, "etcd's format") || !strings.Contains(out, "consistent index 3 (term 7) is within the WAL") {
		t.Fatalf("etcdutl's restored dir:\n%s", out)
	}
	segs, _ := filepath.Glob(filepath.Join(node.WALDir(dir), "*.wal"))
	flip(t, segs[0], 100, 1)
	if r := checkDataDir(dir, "", nil); len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "etcd's format") {
		t.Fatalf("a flipped byte in etcd's WAL:\n%s", report(r))
	}
}

// TestCheckDataDirRemovedMember: a data dir whose database records its own
// member as removed is a problem (cairn refuses to start on it).
func TestCheckDataDirRemovedMember(t *testing.T) {
	dir := restoredDir(t) // member a
	db, err := bolt.Open(node.DBPath(dir), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("members_removed"))
		if err != nil {
			return err
		}
		return b.Put([]byte(strings.TrimLeft(hex64(etcdIDA), "0")), []byte("removed"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r := checkDataDir(dir, "", nil)
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "was removed from the cluster") {
		t.Fatalf("want the removal reported:\n%s", report(r))
	}
}
