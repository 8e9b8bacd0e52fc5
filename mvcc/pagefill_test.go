package mvcc

import (
	"fmt"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Pages of the revision bucket are filled before they split, as etcd fills
// them: the database holds little more than its records. With bbolt's
// default (split at half a page) it took about twice the space of etcd's.
func TestRevisionPagesAreFilled(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	val := []byte(strings.Repeat("v", 100))
	for i := range 20000 {
		if _, err := s.Put(&pb.PutRequest{Key: []byte(fmt.Sprintf("key/%08d", i)), Value: val}); err != nil {
			t.Fatal(err)
		}
		s.SetConsistentIndex(uint64(i+1), 1)
		if i%1000 == 999 {
			if err := s.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	// A record costs its key, its value and bbolt's 16-byte leaf element.
	var records int64
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(keyBucket).ForEach(func(k, v []byte) error {
			records += int64(len(k) + len(v) + 16)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if inUse := s.SizeInUse(); float64(inUse) > 1.25*float64(records) {
		t.Fatalf("%d KiB of records take %d KiB of database", records>>10, inUse>>10)
	}
}

// Defragmentation never makes the file larger, however small the database
// (a new bbolt file wastes its first freelist page unless the copy can
// reuse it).
func TestDefragNeverGrowsTheFile(t *testing.T) {
	for _, n := range []int{0, 5, 20, 60, 200, 2000} {
		s := openTest(t, testConfig(t))
		for i := range n {
			mustPut(t, s, fmt.Sprintf("k%d", i%50), fmt.Sprintf("v%d", i))
			s.SetConsistentIndex(uint64(i+1), 1)
		}
		if n > 0 {
			if err := s.Compact(int64(n/2 + 1)); err != nil {
				t.Fatal(err)
			}
			for {
				done, err := s.CompactStep()
				if err != nil {
					t.Fatal(err)
				}
				if done {
					break
				}
			}
			s.SetConsistentIndex(uint64(n+1), 1)
		}
		if err := s.Commit(); err != nil {
			t.Fatal(err)
		}
		before := s.Size()
		if err := s.Defrag(nil); err != nil {
			t.Fatal(err)
		}
		if after := s.Size(); after > before {
			t.Errorf("%d writes: defrag grew the database from %d to %d bytes", n, before, after)
		}
	}
}

// A defragmentation that copies more keys than one of its transactions
// holds keeps every revision, value and the consistent index.
func TestDefragAcrossSeveralTransactions(t *testing.T) {
	s := openTest(t, testConfig(t))
	n := 2*defragTxLimit + 500
	for i := range n {
		mustPut(t, s, fmt.Sprintf("k%06d", i), fmt.Sprintf("v%d", i))
		s.SetConsistentIndex(uint64(i+1), 1)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	var calls int
	if err := s.Defrag(func(done, total int64) { calls++ }); err != nil {
		t.Fatal(err)
	}
	if calls < 2 {
		t.Fatalf("progress reported %d times for %d keys, want one per transaction", calls, n)
	}
	r := mustRange(t, s, &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l")})
	if len(r.Kvs) != n || string(r.Kvs[n-1].Value) != fmt.Sprintf("v%d", n-1) || r.Kvs[n-1].ModRevision != int64(n+1) {
		t.Fatalf("after defrag: %d keys, last %v", len(r.Kvs), r.Kvs[len(r.Kvs)-1])
	}
	if ci, _ := s.ConsistentIndex(); ci != uint64(n) {
		t.Fatalf("consistent index %d after defrag, want %d", ci, n)
	}
}
