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
