package server

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/mvcc"
)

// startCompacting restarts a one-member cluster with auto-compaction a, the
// member's clock fake, and waits until its attributes are published (so
// the compactor's timer is the only one armed on the clock).
func startCompacting(t *testing.T, a AutoCompaction) (*Server, *clock.Fake) {
	t.Helper()
	c := newTestCluster(t, 1, clusterOpts{})
	id := c.waitLeader()
	c.stop(id)
	fake := clock.NewFake(time.Unix(1_000_000, 0))
	c.startWith(id, func(cfg *Config) {
		cfg.AutoCompaction = a
		cfg.Core.Clock = fake
		cfg.CompactHashCheckTime = -1 // its timer would be a second waiter on the clock
	})
	s := c.server(c.waitLeader())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		ml, err := s.MemberList(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(ml.GetMembers()) == 1 && len(ml.GetMembers()[0].GetClientURLs()) > 0 {
			break
		}
		select {
		case <-s.leaderChange():
		case <-ctx.Done():
			t.Fatal("the member did not publish its attributes")
		case <-time.After(10 * time.Millisecond): // the apply of the attributes is not an event we can wait on
		}
	}
	return s, fake
}

// tick lets the compactor's timer fire once and waits until it is armed
// again, that is until the check it ran is done.
func tick(t *testing.T, fake *clock.Fake, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fake.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("the compactor's timer is not armed: %v", err)
	}
	fake.Advance(d)
	// The timer fired: wait until the compactor took it and re-armed.
	for fake.Waiters() == 0 {
		if err := fake.BlockUntilContext(ctx, 1); err != nil {
			t.Fatalf("the compactor did not finish its check: %v", err)
		}
	}
}

func TestAutoCompactionRevisionMode(t *testing.T) {
	s, fake := startCompacting(t, AutoCompaction{Revisions: 10, CheckInterval: time.Minute})
	for i := 0; i < 40; i++ {
		if _, err := s.Put(context.Background(), &pb.PutRequest{Key: []byte(fmt.Sprintf("k%d", i%3)), Value: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	tick(t, fake, 59*time.Second)
	if got := s.KV().CompactRev(); got != 0 {
		t.Fatalf("compacted to %d before the check interval passed", got)
	}
	tick(t, fake, time.Second)
	if got, want := s.KV().CompactRev(), s.KV().Rev()-10; got != want {
		t.Fatalf("compacted revision %d with current %d, want %d (10 revisions kept)", got, s.KV().Rev(), want)
	}
	if _, err := s.Range(context.Background(), &pb.RangeRequest{Key: []byte("k0"), Revision: 2}); !errors.Is(err, mvcc.ErrCompacted) {
		t.Fatalf("read of an auto-compacted revision: %v, want %v", err, mvcc.ErrCompacted)
	}
}

// Periodic mode samples the revision at every check (a tenth of the
// retention) and compacts to the newest sample that is a whole retention
// old, as etcd's periodic compactor does.
func TestAutoCompactionPeriodicMode(t *testing.T) {
	const retention = 10 * time.Minute
	s, fake := startCompacting(t, AutoCompaction{Retention: retention})
	var revs []int64 // revs[k]: the revision the check at (k+1) minutes saw
	for k := 0; k < 12; k++ {
		r, err := s.Put(context.Background(), &pb.PutRequest{Key: []byte("k"), Value: []byte(fmt.Sprint(k))})
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, r.GetHeader().GetRevision())
		tick(t, fake, retention/10)
		switch got := s.KV().CompactRev(); {
		case k < 10 && got != 0:
			t.Fatalf("after %d minutes (retention 10) the compacted revision is %d, want none", k+1, got)
		case k >= 10 && got != revs[k-10]:
			t.Fatalf("after %d minutes the compacted revision is %d, want %d (seen %d minutes earlier)", k+1, got, revs[k-10], 10)
		}
	}
}
