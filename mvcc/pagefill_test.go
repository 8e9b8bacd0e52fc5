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
