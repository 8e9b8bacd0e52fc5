package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node"
)

// TestDefragDataDir: offline defrag gives the free pages of a database
// with many deleted keys back, and keeps every record: snapshot status and
// hashkv are the same before and after.
func TestDefragDataDir(t *testing.T) {
	dir := t.TempDir()
	path := node.DBPath(dir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	kv, err := mvcc.Open(mvcc.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat([]byte("v"), 1000)
	for i := 0; i < 3000; i++ {
		if _, err := kv.Put(&pb.PutRequest{Key: []byte(fmt.Sprintf("k%05d", i)), Value: val}); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("k"), RangeEnd: []byte("l")}); err != nil {
		t.Fatal(err)
	}
	if err := kv.Compact(kv.Rev()); err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		if done, err = kv.CompactStep(); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := snapshotStatus(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	if err := defragDataDir(dir, zap.NewNop(), &progress); err != nil {
		t.Fatal(err)
	}
	after, err := snapshotStatus(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.TotalSize >= before.TotalSize/2 {
		t.Errorf("defrag: size %d -> %d, want it well under half", before.TotalSize, after.TotalSize)
	}
	if after.Hash != before.Hash || after.Revision != before.Revision || after.TotalKey != before.TotalKey {
		t.Errorf("defrag changed the records: %+v -> %+v", before, after)
	}
	if !strings.Contains(progress.String(), "defrag: copying") || !strings.Contains(progress.String(), "done") {
		t.Errorf("no progress reported:\n%s", progress.String())
	}
	if _, err := os.Stat(path + ".defrag"); !os.IsNotExist(err) {
		t.Errorf("defrag left its temporary file: %v", err)
	}
}

// TestDefragRefusesARunningMember: a database another process holds (a
// running member's) is not touched by defrag, hashkv or snapshot status,
// which fail saying it is locked rather than wait forever.
func TestDefragRefusesARunningMember(t *testing.T) {
	dir := restoredDir(t)
	held, err := bolt.Open(node.DBPath(dir), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	defer func(d time.Duration) { lockTimeout = d }(lockTimeout)
	lockTimeout = 100 * time.Millisecond
	if err := defragDataDir(dir, zap.NewNop(), nil); err == nil || !strings.Contains(err.Error(), "is locked (is a member running on it?)") {
		t.Fatalf("defrag of a held database: %v, want the lock named", err)
	}
	if _, err := hashKV(node.DBPath(dir), 0); err == nil || !strings.Contains(err.Error(), "is locked") {
		t.Errorf("hashkv of a held database: %v, want the lock named", err)
	}
	if _, err := snapshotStatus(node.DBPath(dir), nil); err == nil || !strings.Contains(err.Error(), "is locked") {
		t.Errorf("snapshot status of a held database: %v, want the lock named", err)
	}
	if err := defragDataDir(t.TempDir(), zap.NewNop(), nil); err == nil || !os.IsNotExist(err) {
		t.Fatalf("defrag of a dir without a database: %v, want not exist (etcdutl's stat error)", err)
	}
}

// TestProgressPlainLines: off a terminal, progress is plain lines at each
// tenth of the total and a final one with bytes and keys.
func TestProgressPlainLines(t *testing.T) {
	var b bytes.Buffer
	p := startProgress(&b, "op", 1000)
	for n := int64(0); n <= 1000; n += 50 {
		p.set(n, n/10)
	}
	p.done()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 9 steps and the end:\n%s", len(lines), b.String())
	}
	if lines[0] != "op: 100 B of 1.0 kB (10%), 10 keys" || !strings.HasPrefix(lines[9], "op: done: 1.0 kB, 100 keys in ") {
		t.Errorf("lines:\n%s", b.String())
	}
}
