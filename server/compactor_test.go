package server

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn/mvcc"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestAutoCompactionRevisionMode(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	id := c.waitLeader()
	c.stop(id)
	c.startWith(id, func(cfg *Config) {
		cfg.AutoCompaction = AutoCompaction{Revisions: 10, CheckInterval: 50 * time.Millisecond}
	})
	s := c.server(c.waitLeader())
	for i := 0; i < 40; i++ {
		c.put(s, fmt.Sprintf("k%d", i%3), fmt.Sprint(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.KV().CompactRev() < s.KV().Rev()-10-5 {
		if time.Now().After(deadline) {
			t.Fatalf("compacted revision %d with current %d: revision-mode auto-compaction keeping 10 revisions did not run", s.KV().CompactRev(), s.KV().Rev())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := s.Range(context.Background(), &pb.RangeRequest{Key: []byte("k0"), Revision: 2}); !errors.Is(err, mvcc.ErrCompacted) {
		t.Fatalf("read of an auto-compacted revision: %v, want %v", err, mvcc.ErrCompacted)
	}
}

func TestAutoCompactionPeriodicMode(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	id := c.waitLeader()
	c.stop(id)
	c.startWith(id, func(cfg *Config) { cfg.AutoCompaction = AutoCompaction{Retention: 2 * time.Second} })
	s := c.server(c.waitLeader())
	start := time.Now()
	var early int64
	for time.Since(start) < 4*time.Second {
		r := c.put(s, "k", fmt.Sprint(time.Now().UnixNano()))
		if time.Since(start) < 500*time.Millisecond {
			early = r.GetHeader().GetRevision()
		}
		time.Sleep(20 * time.Millisecond)
	}
	// History older than the 2s retention is compacted, newer history is
	// kept: the compacted revision lies between them.
	if got := s.KV().CompactRev(); got < early || got >= s.KV().Rev() {
		t.Fatalf("after 4s with a 2s retention the compacted revision is %d; want at least %d (written in the first 0.5s) and below the current %d", got, early, s.KV().Rev())
	}
}
