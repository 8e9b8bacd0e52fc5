package mvcc

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	gbtree "github.com/google/btree"
	tbtree "github.com/tidwall/btree"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func benchStore(b *testing.B) *Store {
	cfg := testConfig(b)
	cfg.BatchLimit = 10000
	return openTest(b, cfg)
}

func fill(b *testing.B, s *Store, n int) {
	b.Helper()
	val := bytes.Repeat([]byte("v"), 64)
	for i := range n {
		if _, err := s.Put(&pb.PutRequest{Key: []byte(fmt.Sprintf("key%08d", i)), Value: val}); err != nil {
			b.Fatal(err)
		}
		if err := s.MaybeCommit(); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Commit(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkPut(b *testing.B) {
	s := benchStore(b)
	val := bytes.Repeat([]byte("v"), 64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Put(&pb.PutRequest{Key: []byte(fmt.Sprintf("key%06d", i%100000)), Value: val}); err != nil {
			b.Fatal(err)
		}
		if err := s.MaybeCommit(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRangeOneKey(b *testing.B) {
	s := benchStore(b)
	fill(b, s, 10000)
	req := &pb.RangeRequest{Key: []byte("key00005000")}
	b.ReportAllocs()
	for b.Loop() {
		if r, err := s.Range(req); err != nil || len(r.Kvs) != 1 {
			b.Fatal(r, err)
		}
	}
}

func BenchmarkRange1000Keys(b *testing.B) {
	s := benchStore(b)
	fill(b, s, 10000)
	req := &pb.RangeRequest{Key: []byte("key00002000"), RangeEnd: []byte("key00003000")}
	b.ReportAllocs()
	for b.Loop() {
		if r, err := s.Range(req); err != nil || len(r.Kvs) != 1000 {
			b.Fatal(len(r.GetKvs()), err)
		}
	}
}

// BenchmarkCompact100kRevisions compacts 100k revisions (10k keys written 10
// times) logically and physically.
func BenchmarkCompact100kRevisions(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		s := benchStore(b)
		for range 10 {
			fill(b, s, 10000)
		}
		b.StartTimer()
		if err := s.Compact(s.Rev()); err != nil {
			b.Fatal(err)
		}
		for done := false; !done; {
			var err error
			if done, err = s.CompactStep(); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Commit(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
}

// BenchmarkOpen1MKeys opens a store of 1M keys (rebuilding the index) and
// reports the heap it holds afterwards.
func BenchmarkOpen1MKeys(b *testing.B) {
	cfg := testConfig(b)
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	fill(b, s, 1_000_000)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	var heap uint64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		if s.index.len() != 1_000_000 {
			b.Fatalf("index has %d keys", s.index.len())
		}
		_ = s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
}

// BenchmarkIndexMemoryPerKey reports the heap bytes the key index takes per
// key (16-byte keys, one revision each).
func BenchmarkIndexMemoryPerKey(b *testing.B) {
	const n = 200_000
	var per float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		ti := newTreeIndex()
		for i := range n {
			ti.put([]byte(fmt.Sprintf("key%013d", i)), Revision{Main: int64(i + 2)})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(ti)
	}
	b.ReportMetric(per, "bytes/key")
}

// BenchmarkIndexBTree compares github.com/google/btree and
// github.com/tidwall/btree on the index's operations: point lookups and
// ascending scans of 100 keys over 100k keys.
func BenchmarkIndexBTree(b *testing.B) {
	const n = 100_000
	keys := make([]*keyIndex, n)
	for i := range keys {
		keys[i] = &keyIndex{key: []byte(fmt.Sprintf("key%08d", i))}
	}
	less := func(a, b *keyIndex) bool { return bytes.Compare(a.key, b.key) < 0 }
	g := gbtree.NewG(32, less)
	tw := tbtree.NewBTreeGOptions(less, tbtree.Options{NoLocks: true})
	for _, k := range keys {
		g.ReplaceOrInsert(k)
		tw.Set(k)
	}
	b.Run("google/get", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, ok := g.Get(keys[(i*7919)%n]); !ok {
				b.Fatal("missing")
			}
		}
	})
	b.Run("tidwall/get", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, ok := tw.Get(keys[(i*7919)%n]); !ok {
				b.Fatal("missing")
			}
		}
	})
	b.Run("google/scan100", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			c := 0
			g.AscendGreaterOrEqual(keys[(i*7919)%(n-100)], func(*keyIndex) bool { c++; return c < 100 })
		}
	})
	b.Run("tidwall/scan100", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			c := 0
			tw.Ascend(keys[(i*7919)%(n-100)], func(*keyIndex) bool { c++; return c < 100 })
		}
	})
	b.Run("google/insert", func(b *testing.B) {
		for b.Loop() {
			t := gbtree.NewG(32, less)
			for _, k := range keys[:10000] {
				t.ReplaceOrInsert(k)
			}
		}
	})
	b.Run("tidwall/insert", func(b *testing.B) {
		for b.Loop() {
			t := tbtree.NewBTreeGOptions(less, tbtree.Options{NoLocks: true})
			for _, k := range keys[:10000] {
				t.Set(k)
			}
		}
	})
}
