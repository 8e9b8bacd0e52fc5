package mvcc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// A DBSnapshot shows the database as of the boundary it was opened at, while
// writes go on and commit.
func TestOpenSnapshotKeepsItsViewWhileWritesCommit(t *testing.T) {
	src := openTest(t, testConfig(t))
	mustPut(t, src, "a", "1")
	src.SetConsistentIndex(1, 1)
	snap, err := src.OpenSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	mustPut(t, src, "a", "2")
	mustPut(t, src, "b", "2")
	src.SetConsistentIndex(2, 1)
	if err := src.Commit(); err != nil {
		t.Fatal(err)
	}
	staged := filepath.Join(t.TempDir(), "staged.snap.db")
	f, err := os.Create(staged)
	if err != nil {
		t.Fatal(err)
	}
	n, err := snap.WriteTo(f)
	if err != nil || n != snap.Size() {
		t.Fatalf("WriteTo = %d, %v; Size %d", n, err, snap.Size())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.WriteTo(&bytes.Buffer{}); err == nil {
		t.Fatal("a second WriteTo succeeded")
	}
	dst := openTest(t, testConfig(t))
	if err := dst.ReplaceDBFile(staged); err != nil {
		t.Fatal(err)
	}
	if ci, _ := dst.ConsistentIndex(); ci != 1 {
		t.Fatalf("consistent index %d, want 1", ci)
	}
	r := mustRange(t, dst, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "1" || dst.Rev() != 2 {
		t.Fatalf("replaced store: rev %d, kvs %v", dst.Rev(), r.Kvs)
	}
	if _, err := os.Stat(staged); !os.IsNotExist(err) {
		t.Fatalf("the staged file is still there (%v): ReplaceDBFile must take it in place", err)
	}
	if _, err := os.Stat(dst.cfg.Path + ".replace"); !os.IsNotExist(err) {
		t.Fatalf("ReplaceDBFile left a copy behind: %v", err)
	}
	// The swapped-in store is a working one.
	mustPut(t, dst, "c", "3")
	if dst.Rev() != 3 {
		t.Fatalf("rev after a put = %d", dst.Rev())
	}
}

// A commit that grows the file well past its size must not wait for an open
// snapshot (bbolt remaps only past its initial map, and a remap waits for
// every read transaction): a follower's snapshot streaming for minutes must
// not stall the leader's writes.
func TestCommitGrowingTheFileDoesNotWaitForAnOpenSnapshot(t *testing.T) {
	s := openTest(t, testConfig(t))
	mustPut(t, s, "a", "1")
	s.SetConsistentIndex(1, 1)
	snap, err := s.OpenSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	done := make(chan error, 1)
	go func() {
		val := strings.Repeat("v", 64<<10)
		for i := range 512 { // 32 MiB: several doublings of the file
			if _, err := s.Put(&pb.PutRequest{Key: []byte(fmt.Sprintf("k%04d", i)), Value: []byte(val)}); err != nil {
				done <- err
				return
			}
			s.SetConsistentIndex(uint64(i+2), 1)
			if i%64 == 63 {
				if err := s.Commit(); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("commits growing the file are blocked by an open snapshot")
	}
	if _, err := snap.WriteTo(&bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}
