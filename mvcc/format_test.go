package mvcc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// The database is etcd's: bucket "key" holds 17-byte revision keys (main,
// '_', sub) with a trailing 't' for deletions, meta holds the compacted
// revisions as revision keys and the storage version. These are the bytes
// etcd 3.7.3 writes for the same operations (see the dump in the test).
func TestDatabaseUsesEtcdsFormat(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	mustPut(t, s, "foo", "bar")                                                          // rev 2
	mustPut(t, s, "foo", "baz")                                                          // rev 3
	if _, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("foo")}); err != nil { // rev 4
		t.Fatal(err)
	}
	if err := s.Compact(3); err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		var err error
		if done, err = s.CompactStep(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(cfg.Path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rev := func(main int64, tomb bool) []byte {
		b := make([]byte, 17, 18)
		binary.BigEndian.PutUint64(b, uint64(main))
		b[8] = '_'
		if tomb {
			b = append(b, 't')
		}
		return b
	}
	err = db.View(func(tx *bolt.Tx) error {
		var keys [][]byte
		_ = tx.Bucket([]byte("key")).ForEach(func(k, _ []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
		// Compaction at 3 keeps foo's revision 3 and the tombstone at 4.
		want := [][]byte{rev(3, false), rev(4, true)}
		if len(keys) != len(want) {
			t.Fatalf("revision keys %x, want %x", keys, want)
		}
		for i := range want {
			if !bytes.Equal(keys[i], want[i]) {
				t.Errorf("revision key %d = %x, want %x", i, keys[i], want[i])
			}
		}
		meta := tx.Bucket([]byte("meta"))
		for _, k := range []string{"scheduledCompactRev", "finishedCompactRev"} {
			if got := meta.Get([]byte(k)); !bytes.Equal(got, rev(3, false)) {
				t.Errorf("meta %s = %x, want %x", k, got, rev(3, false))
			}
		}
		if got := string(meta.Get([]byte("storageVersion"))); got != "3.7.0" {
			t.Errorf("meta storageVersion = %q, want 3.7.0", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A database written before Cairn used etcd's format is refused, never
// misread.
func TestLegacyDatabaseIsRefused(t *testing.T) {
	for _, tt := range []struct {
		name  string
		write func(tx *bolt.Tx) error
	}{
		{"16-byte revision keys", func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("key"))
			if err != nil {
				return err
			}
			return b.Put(make([]byte, 16), []byte{})
		}},
		{"8-byte compacted revision", func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("meta"))
			if err != nil {
				return err
			}
			return b.Put([]byte("scheduledCompactRev"), make([]byte, 8))
		}},
	} {
		cfg := testConfig(t)
		db, err := bolt.Open(cfg.Path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(tt.write); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if s, err := Open(cfg); !errors.Is(err, ErrLegacyFormat) {
			if s != nil {
				s.Close()
			}
			t.Errorf("%s: Open = %v, want ErrLegacyFormat", tt.name, err)
		}
	}
}

// HashKV is etcd's: after foo=bar, foo=baz, delete foo, lk=v and a=1 with
// compaction at 3, etcd hashes foo's tombstone, lk and a, but not foo@3
// (no longer live at the hashed revision). The expected value is what
// CRC-32C gives over those records; `etcdutl hashkv` on a Cairn snapshot
// gives the same (checked by hand; test/etcdcompat checks it against the
// real tools).
func TestHashKVHashesWhatEtcdHashes(t *testing.T) {
	s := openTest(t, testConfig(t))
	mustPut(t, s, "foo", "bar")
	mustPut(t, s, "foo", "baz")
	if _, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("foo")}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "lk", "v")
	mustPut(t, s, "a", "1")
	if err := s.Compact(3); err != nil {
		t.Fatal(err)
	}
	got := s.index.hashRevisions(6, 3)
	want := []Revision{{Main: 4}, {Main: 5}, {Main: 6}}
	if len(got) != len(want) {
		t.Fatalf("hashed revisions %v, want %v", got, want)
	}
	for i := range want {
		if got[i].rev != want[i] {
			t.Fatalf("hashed revisions %v, want %v", got, want)
		}
	}
	// As of revision 3 foo@3 is live and hashed; the tombstone at the
	// compacted revision never is.
	if got := s.index.hashRevisions(3, 3); len(got) != 1 || got[0].rev != (Revision{Main: 3}) {
		t.Fatalf("hashed revisions at 3: %v, want foo@3", got)
	}
	if err := s.Compact(4); err != nil {
		t.Fatal(err)
	}
	for _, ra := range s.index.hashRevisions(6, 4) {
		if ra.rev.Main == 4 {
			t.Fatalf("the tombstone at the compacted revision was hashed: %v", ra)
		}
	}
}
