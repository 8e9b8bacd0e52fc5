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
	// A retry writes the same database again.
	var again bytes.Buffer
	if n, err := snap.WriteTo(&again); err != nil || n != snap.Size() {
		t.Fatalf("a second WriteTo = %d, %v", n, err)
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

// A snapshot being read does not hold up a swap of the database (a raft
// snapshot installed, a defragmentation): the old database is retired and
// stays readable through the snapshot, which closes it at the end.
func TestSwapDoesNotWaitForOpenSnapshots(t *testing.T) {
	for _, swap := range []string{"replace", "defrag"} {
		s := openTest(t, testConfig(t))
		mustPut(t, s, "a", "old")
		s.SetConsistentIndex(1, 1)
		snap, err := s.OpenSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		// Another database to swap in.
		other := openTest(t, testConfig(t))
		mustPut(t, other, "a", "new")
		mustPut(t, other, "b", "new")
		other.SetConsistentIndex(5, 1)
		staged := filepath.Join(t.TempDir(), "staged.db")
		f, err := os.Create(staged)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Snapshot(f); err != nil {
			t.Fatal(err)
		}
		f.Close()

		done := make(chan error, 1)
		go func() {
			if swap == "replace" {
				done <- s.ReplaceDBFile(staged)
			} else {
				done <- s.Defrag(nil)
			}
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", swap, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s waits for an open snapshot", swap)
		}
		if swap == "replace" {
			if r := mustRange(t, s, &pb.RangeRequest{Key: []byte("b")}); len(r.Kvs) != 1 {
				t.Fatalf("after the replace: %v", r.Kvs)
			}
		}
		// The snapshot still reads the database it was opened on.
		var buf bytes.Buffer
		if _, err := snap.WriteTo(&buf); err != nil {
			t.Fatalf("%s: reading the snapshot after the swap: %v", swap, err)
		}
		if err := snap.Close(); err != nil {
			t.Fatalf("%s: closing the snapshot: %v", swap, err)
		}
		dst := openTest(t, testConfig(t))
		if err := dst.ReplaceDB(&buf); err != nil {
			t.Fatal(err)
		}
		r := mustRange(t, dst, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
		if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "old" {
			t.Fatalf("%s: the snapshot holds %v, want the database it was opened on", swap, r.Kvs)
		}
		s.snaps.mu.Lock()
		open, retired := len(s.snaps.open), len(s.snaps.retired)
		s.snaps.mu.Unlock()
		if open != 0 || retired != 0 {
			t.Fatalf("%s: %d databases with open snapshots, %d retired ones left", swap, open, retired)
		}
	}
}
