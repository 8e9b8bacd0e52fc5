package mvcc

import (
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// RewriteForRestore replaces the named auxiliary buckets and sets the
// consistent index, term and conf state, leaving the key space alone.
func TestRewriteForRestore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	s.AuxPut([]byte("members"), []byte("old"), []byte("x"))
	s.AuxPut([]byte("members_removed"), []byte("gone"), []byte("x"))
	s.AuxPut([]byte("lease"), []byte("l"), []byte("x"))
	s.SetConsistentIndex(900, 9)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := RewriteForRestore(path, RestoreEdit{
		ConsistentIndex: 3, Term: 1, ConfState: []byte(`{"voters":[1,2,3],"auto_leave":false}`),
		Replace: map[string]map[string][]byte{"members": {"a": []byte("1"), "b": []byte("2")}, "members_removed": {}},
	}); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ci, term := s.ConsistentIndex(); ci != 3 || term != 1 {
		t.Errorf("consistent index %d term %d, want 3 and 1", ci, term)
	}
	got := map[string]int{}
	for _, b := range []string{"members", "members_removed", "lease"} {
		_ = s.AuxForEach([]byte(b), func(k, _ []byte) error { got[b+"/"+string(k)]++; return nil })
	}
	if len(got) != 3 || got["members/a"] != 1 || got["members/b"] != 1 || got["lease/l"] != 1 {
		t.Errorf("auxiliary records %v, want members a and b and the lease only", got)
	}
	if r, err := s.Range(&pb.RangeRequest{Key: []byte("k")}); err != nil || len(r.Kvs) != 1 || s.Rev() != 2 {
		t.Errorf("key space after the rewrite: %v %v revision %d", r, err, s.Rev())
	}
}

// A database from a Cairn build before etcd's format is refused by the
// restore's rewrite and by HashKVFile, as by Open.
func TestRestoreAndHashKVFileRefuseLegacy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		kb, err := tx.CreateBucketIfNotExists([]byte("key"))
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists([]byte("meta")); err != nil {
			return err
		}
		return kb.Put(make([]byte, 16), []byte{})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := RewriteForRestore(path, RestoreEdit{}); !errors.Is(err, ErrLegacyFormat) {
		t.Errorf("RewriteForRestore = %v, want ErrLegacyFormat", err)
	}
	if _, _, _, err := HashKVFile(path, 0, nil); !errors.Is(err, ErrLegacyFormat) {
		t.Errorf("HashKVFile = %v, want ErrLegacyFormat", err)
	}
}
