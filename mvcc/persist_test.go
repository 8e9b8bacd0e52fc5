package mvcc

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

func TestConsistentIndexAndCompactRevSurviveReopen(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	for i := range 5 {
		mustPut(t, s, fmt.Sprintf("k%d", i%2), "v")
	}
	s.SetConsistentIndex(42, 7)
	if err := s.Compact(4); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	if ci, term := s.ConsistentIndex(); ci != 42 || term != 7 {
		t.Fatalf("ConsistentIndex() = %d, %d; want 42, 7", ci, term)
	}
	if s.CompactRev() != 4 || s.Rev() != 6 {
		t.Fatalf("CompactRev() = %d, Rev() = %d; want 4, 6", s.CompactRev(), s.Rev())
	}
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("k0"), Revision: 3}); err != ErrCompacted {
		t.Fatalf("read below compaction after reopen: %v", err)
	}
}

func TestCompactionWithAllKeysDeletedKeepsRevision(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	mustPut(t, s, "a", "1")
	if _, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("a")}); err != nil {
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
	s = openTest(t, cfg)
	// The tombstone at the compacted revision stays until the next
	// compaction (a watch from that revision gets the delete).
	if s.Rev() != 3 || bucketLen(t, s) != 1 {
		t.Fatalf("Rev() = %d with %d revisions on disk; want 3 and 1", s.Rev(), bucketLen(t, s))
	}
	if r := mustRange(t, s, &pb.RangeRequest{Key: []byte("a")}); len(r.Kvs) != 0 {
		t.Fatalf("deleted key read back after reopen: %v", r.Kvs)
	}
	if r := mustPut(t, s, "a", "2"); r.Header.Revision != 4 {
		t.Fatalf("next put at %d, want 4", r.Header.Revision)
	}
}

func bucketLen(t *testing.T, s *Store) int {
	t.Helper()
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(keyBucket).Stats().KeyN; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCrashLosesExactlyTheOpenBatch(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	mustPut(t, s, "a", "1")
	s.SetConsistentIndex(1, 1)
	s.AuxPut([]byte("aux"), []byte("x"), []byte("1"))
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	hash, _, _, _ := s.HashKV(0)
	mustPut(t, s, "a", "2")
	mustPut(t, s, "b", "1")
	s.SetConsistentIndex(2, 1)
	s.AuxPut([]byte("aux"), []byte("x"), []byte("2"))
	if err := s.Compact(3); err != nil {
		t.Fatal(err)
	}
	if err := s.Abandon(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	if ci, _ := s.ConsistentIndex(); ci != 1 || s.Rev() != 2 || s.CompactRev() != 0 {
		t.Fatalf("after crash ci %d rev %d compact %d; want 1, 2, 0", ci, s.Rev(), s.CompactRev())
	}
	if v, _ := s.AuxGet([]byte("aux"), []byte("x")); string(v) != "1" {
		t.Fatalf("aux after crash = %q, want 1", v)
	}
	if h, _, _, _ := s.HashKV(0); h != hash {
		t.Fatalf("HashKV after crash = %d, want %d", h, hash)
	}
	r := mustRange(t, s, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}})
	if r.Count != 1 || string(r.Kvs[0].Value) != "1" {
		t.Fatalf("after crash = %v", r)
	}
}

func TestInterruptedCompactionCompletesAfterReopen(t *testing.T) {
	cfg := testConfig(t)
	cfg.CompactionBatchLimit = 3
	s := openTest(t, cfg)
	for i := range 20 {
		mustPut(t, s, fmt.Sprintf("k%d", i%4), fmt.Sprint(i)) // revs 2..21
	}
	if err := s.Compact(18); err != nil {
		t.Fatal(err)
	}
	if done, err := s.CompactStep(); done || err != nil {
		t.Fatalf("first step = %v, %v; want not done", done, err)
	}
	before, _, _, _ := s.HashKV(0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	if h, _, _, _ := s.HashKV(0); h != before {
		t.Fatalf("HashKV changed over reopen mid-compaction")
	}
	steps := 0
	for done := false; !done; steps++ {
		var err error
		if done, err = s.CompactStep(); err != nil {
			t.Fatal(err)
		}
	}
	// Kept: the newest revision <= 18 of each of 4 keys, plus revs 19..21.
	if n := bucketLen(t, s); n != 7 {
		t.Fatalf("%d revisions on disk after compaction, want 7", n)
	}
	if s.comp != nil {
		t.Fatal("compaction still pending")
	}
	if h, _, _, _ := s.HashKV(0); h != before {
		t.Fatalf("HashKV changed by physical compaction")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	if s.comp != nil || s.CompactRev() != 18 {
		t.Fatalf("after finished compaction and reopen: pending %v compactRev %d", s.comp, s.CompactRev())
	}
	r := mustRange(t, s, &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Revision: 18})
	if r.Count != 4 || string(r.Kvs[0].Value) != "16" {
		t.Fatalf("read at compacted revision = %v", r)
	}
}

func feed(t *testing.T, s *Store) {
	t.Helper()
	for i := range 30 {
		mustPut(t, s, fmt.Sprintf("k%d", i%7), fmt.Sprint(i))
		if i%5 == 0 {
			if _, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(fmt.Sprintf("k%d", i%3))}); err != nil {
				t.Fatal(err)
			}
		}
		if i == 20 {
			if err := s.Compact(15); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestHashKVEqualForSameHistory(t *testing.T) {
	a := openTest(t, testConfig(t))
	b := openTest(t, testConfig(t))
	feed(t, a)
	feed(t, b)
	// Different commit and physical compaction progress must not matter.
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CompactStep(); err != nil {
		t.Fatal(err)
	}
	for _, rev := range []int64{0, 15, 20} {
		ha, ra, ca, errA := a.HashKV(rev)
		hb, rb, cb, errB := b.HashKV(rev)
		if errA != nil || errB != nil || ha != hb || ra != rb || ca != cb || ca != 15 {
			t.Fatalf("HashKV(%d): a = %d,%d,%d,%v b = %d,%d,%d,%v", rev, ha, ra, ca, errA, hb, rb, cb, errB)
		}
	}
	mustPut(t, b, "k1", "different")
	mustPut(t, a, "k1", "other")
	ha, _, _, _ := a.HashKV(0)
	hb, _, _, _ := b.HashKV(0)
	if ha == hb {
		t.Fatal("HashKV equal after different writes")
	}
}

func TestReplaceDBFromSnapshotGivesSameStore(t *testing.T) {
	src := openTest(t, testConfig(t))
	feed(t, src)
	src.AuxPut([]byte("members"), []byte("1"), []byte("m"))
	src.SetConsistentIndex(99, 3)
	var buf bytes.Buffer
	n, err := src.Snapshot(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Snapshot = %d, %v (buffer %d)", n, err, buf.Len())
	}
	dst := openTest(t, testConfig(t))
	mustPut(t, dst, "junk", "x")
	if err := dst.ReplaceDB(&buf); err != nil {
		t.Fatal(err)
	}
	if dst.Rev() != src.Rev() || dst.CompactRev() != src.CompactRev() {
		t.Fatalf("rev %d/%d compact %d/%d", dst.Rev(), src.Rev(), dst.CompactRev(), src.CompactRev())
	}
	if ci, term := dst.ConsistentIndex(); ci != 99 || term != 3 {
		t.Fatalf("ConsistentIndex = %d, %d", ci, term)
	}
	for _, rev := range []int64{0, 15, 25} {
		r := &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev}
		a, errA := src.Range(r)
		b, errB := dst.Range(r)
		if errA != nil || errB != nil || !proto.Equal(a, b) {
			t.Fatalf("Range at %d: %v %v / %v %v", rev, a, errA, b, errB)
		}
	}
	ha, _, _, _ := src.HashKV(0)
	hb, _, _, _ := dst.HashKV(0)
	if ha != hb {
		t.Fatalf("HashKV %d != %d", ha, hb)
	}
	h1, err1 := src.Hash()
	h2, err2 := dst.Hash()
	if err1 != nil || err2 != nil || h1 != h2 {
		t.Fatalf("Hash %d,%v != %d,%v", h1, err1, h2, err2)
	}
	if v, ok := dst.AuxGet([]byte("members"), []byte("1")); !ok || string(v) != "m" {
		t.Fatalf("aux after ReplaceDB = %q, %v", v, ok)
	}
}

func TestDefragWhileWritingLosesNothing(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	const n = 400
	var wg sync.WaitGroup
	wg.Add(2)
	errc := make(chan error, 4)
	go func() { // the writer
		defer wg.Done()
		for i := range n {
			if _, err := s.Put(&pb.PutRequest{Key: []byte(fmt.Sprintf("k%03d", i)), Value: []byte(fmt.Sprint(i))}); err != nil {
				errc <- err
				return
			}
			s.SetConsistentIndex(uint64(i+1), 1)
			if i%50 == 0 {
				if err := s.Commit(); err != nil {
					errc <- err
					return
				}
			}
		}
	}()
	go func() { // defrag and readers from other goroutines
		defer wg.Done()
		for range 5 {
			if err := s.Defrag(func(done, total int64) {}); err != nil {
				errc <- err
				return
			}
			if _, err := s.Range(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), CountOnly: true}); err != nil {
				errc <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if err := s.Defrag(nil); err != nil {
		t.Fatal(err)
	}
	if s.Rev() != n+1 {
		t.Fatalf("Rev() = %d, want %d", s.Rev(), n+1)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	r := mustRange(t, s, &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l")})
	if r.Count != n || s.Rev() != n+1 {
		t.Fatalf("after defrag and reopen: %d keys at rev %d", r.Count, s.Rev())
	}
	for i, kv := range r.Kvs {
		if string(kv.Value) != fmt.Sprint(i) {
			t.Fatalf("key %s = %q", kv.Key, kv.Value)
		}
	}
	if ci, _ := s.ConsistentIndex(); ci != n {
		t.Fatalf("ConsistentIndex = %d, want %d", ci, n)
	}
}

func TestReadersSeeUncommittedWritesConcurrently(t *testing.T) {
	s := openTest(t, testConfig(t))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 8)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rev := s.Rev()
				r, err := s.Range(&pb.RangeRequest{Key: []byte("c")})
				if err != nil {
					errc <- err
					return
				}
				// The counter's value is its mod revision minus one.
				if len(r.Kvs) == 1 && (r.Kvs[0].ModRevision < rev || string(r.Kvs[0].Value) != fmt.Sprint(r.Kvs[0].ModRevision-1)) {
					errc <- fmt.Errorf("stale or torn read %v at rev %d", r.Kvs[0], rev)
					return
				}
				if _, _, _, err := s.HashKV(0); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for i := range 300 {
		mustPut(t, s, "c", fmt.Sprint(i+1))
		if i%37 == 0 {
			if err := s.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

func TestForeignCommitWaitsForEntryBoundary(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	mustPut(t, s, "a", "1")
	s.SetConsistentIndex(1, 1)
	mustPut(t, s, "a", "2") // entry 2 half applied
	snapped := make(chan error, 1)
	go func() {
		_, err := s.Snapshot(&bytes.Buffer{})
		snapped <- err
	}()
	mustPut(t, s, "b", "2") // still entry 2: the snapshot must not commit yet
	s.SetConsistentIndex(2, 1)
	if err := <-snapped; err != nil {
		t.Fatal(err)
	}
	if err := s.Abandon(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	// Whatever the interleaving, the committed state holds whole entries.
	ci, _ := s.ConsistentIndex()
	if ci != 2 || s.Rev() != 4 {
		t.Fatalf("after crash: ci %d rev %d, want 2 and 4", ci, s.Rev())
	}
}
