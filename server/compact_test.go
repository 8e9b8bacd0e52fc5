package server

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/mvcc"
)

// A physical compaction answers once its revisions are gone, however long
// that takes: only the proposal has the request timeout (etcd waits for the
// compaction with no deadline of its own). Here the compaction takes many
// times the 200 ms request timeout: 2,000 revisions, 10 a step.
func TestPhysicalCompactionOutlastsTheRequestTimeout(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{edit: func(cfg *Config) {
		cfg.RequestTimeout = 200 * time.Millisecond
		cfg.Core.CompactionBatchLimit = 10
	}})
	s := c.server(c.waitLeader())
	for i := range 2000 {
		c.put(s, fmt.Sprintf("k%d", i%50), "v")
	}
	rev := s.KV().Rev()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := s.Compact(ctx, &pb.CompactionRequest{Revision: rev, Physical: true}); err != nil {
		t.Fatalf("physical compaction of %d revisions after %v: %v", rev, time.Since(start), err)
	}
	took := time.Since(start)
	if _, err := s.KV().Range(&pb.RangeRequest{Key: []byte("k0"), Revision: rev - 1}); !errors.Is(err, mvcc.ErrCompacted) {
		t.Fatalf("read below the compaction: %v, want %v", err, mvcc.ErrCompacted)
	}
	done := make(chan bool, 1)
	if err := s.do(ctx, func() { s.core.WhenCompacted(func() { done <- true }) }); err != nil {
		t.Fatal(err)
	}
	if !<-done {
		t.Fatal("a compaction still in progress after the physical compaction answered")
	}
	t.Logf("compacted %d revisions in %v (request timeout 200ms)", rev, took)
	// A caller that gives up first gets its own deadline's error (500
	// revisions at 10 a step take many 10 ms ticks).
	for i := range 500 {
		c.put(s, fmt.Sprintf("k%d", i%50), "w")
	}
	short, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	if _, err := s.Compact(short, &pb.CompactionRequest{Revision: s.KV().Rev(), Physical: true}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("a caller whose deadline passes during the compaction: %v, want %v", err, ErrTimeout)
	}
}
