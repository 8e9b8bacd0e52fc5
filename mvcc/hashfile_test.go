package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// HashKVFile answers as the Store's HashKV on the same file, at every
// revision, before and after a compaction (compact revision -1 before
// any, as etcd's HashKV), and leaves the file as it was.
func TestHashKVFileAsStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if _, err := s.Put(&pb.PutRequest{Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		if i%5 == 4 {
			if _, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(fmt.Sprintf("k%d", i%3))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// check compares, at every revision, the Store's answers with
	// HashKVFile's on the closed file, and reopens the Store.
	check := func(when string) {
		t.Helper()
		type answer struct {
			hash          uint32
			hashRev, crev int64
			err           error
		}
		var want []answer
		last := s.Rev() + 1
		for rev := int64(0); rev <= last; rev++ {
			h, r, c, err := s.HashKV(rev)
			if c == 0 {
				c = -1
			}
			want = append(want, answer{h, r, c, err})
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for rev := int64(0); rev <= last; rev++ {
			var calls int
			h, r, c, err := HashKVFile(path, rev, func(int64, int64) { calls++ })
			w := want[rev]
			if !errors.Is(err, w.err) || (w.err == nil && (h != w.hash || r != w.hashRev || c != w.crev)) {
				t.Errorf("%s, revision %d: HashKVFile %d %d %d %v; HashKV %+v", when, rev, h, r, c, err, w)
			}
			if err == nil && calls == 0 {
				t.Errorf("%s: no progress reported", when)
			}
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Errorf("%s: HashKVFile changed the file", when)
		}
		if s, err = Open(Config{Path: path}); err != nil {
			t.Fatal(err)
		}
	}
	check("before any compaction")
	if err := s.Compact(17); err != nil {
		t.Fatal(err)
	}
	check("compacted, physically not yet")
	for done := false; !done; {
		if done, err = s.CompactStep(); err != nil {
			t.Fatal(err)
		}
	}
	check("compacted")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
