package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
)

func TestConcurrencyMutexAndElection(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli1, cli2 := c.Client(t), c.Client(t)
	s1, err := concurrency.NewSession(cli1, concurrency.WithTTL(2))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := concurrency.NewSession(cli2, concurrency.WithTTL(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	m1, m2 := concurrency.NewMutex(s1, "/lock"), concurrency.NewMutex(s2, "/lock")
	if err := m1.Lock(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// The second session waits while the first holds the lock.
	tctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err = m2.Lock(tctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock while held: %v, want a deadline", err)
	}
	// Killing the holder's keep-alive (orphaning its session) releases the
	// lock once the TTL runs out.
	s1.Orphan()
	start := time.Now()
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer lcancel()
	if err := m2.Lock(lctx); err != nil {
		t.Fatalf("lock after the holder's lease expired: %v", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("lock acquired %v after the holder stopped: the lease expired early", waited)
	}
	if err := m2.Unlock(ctx(t)); err != nil {
		t.Fatal(err)
	}

	// Election: a campaign wins, the observer sees the leader's value.
	e := concurrency.NewElection(s2, "/election")
	if err := e.Campaign(ctx(t), "node-2"); err != nil {
		t.Fatal(err)
	}
	l, err := e.Leader(ctx(t))
	if err != nil || string(l.Kvs[0].Value) != "node-2" {
		t.Fatalf("leader: %+v %v", l, err)
	}
	if err := e.Resign(ctx(t)); err != nil {
		t.Fatal(err)
	}
}
