package server

import (
	"context"
	"errors"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// strictCluster starts three members with --strict-reconfig-check and a
// health interval of interval.
func strictCluster(t *testing.T, interval time.Duration) (*testCluster, *Server) {
	t.Helper()
	c := newTestCluster(t, 3, clusterOpts{})
	for _, m := range c.members {
		c.stop(m.ID)
		c.startWith(m.ID, func(cfg *Config) {
			cfg.StrictReconfigCheck = true
			cfg.healthInterval = interval
		})
	}
	return c, c.server(c.waitLeader())
}

// Freshly connected peers do not count yet: adding a voter or removing a
// connected one is refused as unhealthy; a learner may be added.
func TestStrictReconfigRefusesUntilPeersHaveBeenConnected(t *testing.T) {
	_, s := strictCluster(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"mem://new"}}); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("add a voter: %v, want %v", err, ErrUnhealthy)
	}
	var other uint64
	ms, _ := s.Members(ctx)
	for _, m := range ms {
		if m.ID != s.ID() {
			other = m.ID
		}
	}
	if _, err := s.MemberRemove(ctx, &pb.MemberRemoveRequest{ID: other}); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("remove a connected voter: %v, want %v", err, ErrUnhealthy)
	}
	if _, err := s.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"mem://learner"}, IsLearner: true}); err != nil {
		t.Fatalf("add a learner: %v", err)
	}
}

// A member that is down may be removed at once; once the peers have been
// connected for the health interval, a voter may be added.
func TestStrictReconfigAllowsHealthyChangesAndRemovingADownMember(t *testing.T) {
	c, s := strictCluster(t, 50*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms, _ := s.Members(ctx)
	var others []uint64
	for _, m := range ms {
		if m.ID != s.ID() {
			others = append(others, m.ID)
		}
	}
	// Down: removable at once.
	c.net.Isolate(others[0])
	if _, err := s.MemberRemove(ctx, &pb.MemberRemoveRequest{ID: others[0]}); err != nil {
		t.Fatalf("remove a member that is down: %v", err)
	}
	// Two voters left, both connected for longer than the interval by now:
	// wait for that, then a voter may be added.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"mem://grown"}})
		if err == nil {
			break
		}
		if !errors.Is(err, ErrUnhealthy) || time.Now().After(deadline) {
			t.Fatalf("add a voter to a healthy cluster: %v", err)
		}
		<-time.After(10 * time.Millisecond) // the connection's age is what is awaited
	}
}
