package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/lease"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func grant(t *testing.T, s *Server, ttl int64) int64 {
	t.Helper()
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		resp, err := s.LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: ttl})
		cancel()
		if err == nil {
			if resp.GetID() <= 0 || resp.GetTTL() != ttl {
				t.Fatalf("grant: %v", resp)
			}
			return resp.GetID()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("grant never succeeded")
	return 0
}

func getKey(t *testing.T, s *Server, key string) (*pb.RangeResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return s.Range(ctx, &pb.RangeRequest{Key: []byte(key)})
}

func TestLeaseExpiryDeletesKeysInOneRevision(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	s := c.server(c.waitLeader())
	id := grant(t, s, 1) // clamped up to the minimum TTL (election timeout 100ms -> 1s)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := s.Put(context.Background(), &pb.PutRequest{Key: []byte(k), Value: []byte("v"), Lease: id}); err != nil {
			t.Fatal(err)
		}
	}
	revBefore := s.KV().Rev()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := s.Range(context.Background(), &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d")})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetKvs()) == 0 {
			if got := s.KV().Rev(); got != revBefore+1 {
				t.Fatalf("revision after expiry = %d, want %d: the revoke must delete every key in one revision", got, revBefore+1)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			ttl, err := s.LeaseTimeToLive(ctx, &pb.LeaseTimeToLiveRequest{ID: id})
			if !errors.Is(err, lease.ErrLeaseNotFound) {
				t.Fatalf("time-to-live of an expired lease: %v %v, want lease not found", ttl, err)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("leased keys still present 10s after a 1s lease")
}

func TestPutWithUnknownLeaseFails(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	s := c.server(c.waitLeader())
	rev := s.KV().Rev()
	_, err := s.Put(context.Background(), &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 12345})
	if !errors.Is(err, lease.ErrLeaseNotFound) {
		t.Fatalf("put with unknown lease: %v, want %v", err, lease.ErrLeaseNotFound)
	}
	if s.KV().Rev() != rev {
		t.Fatalf("a failed put changed the revision")
	}
}

func TestKeptAliveLeasesSurviveLeaderLossAndAbandonedOnesExpireOnce(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{})
	lead := c.waitLeader()
	var ids []int64
	for i := 0; i < 5; i++ {
		id := grant(t, c.server(lead), 2)
		ids = append(ids, id)
		if _, err := c.server(lead).Put(context.Background(), &pb.PutRequest{Key: []byte(fmt.Sprintf("svc/%d", i)), Value: []byte("up"), Lease: id}); err != nil {
			t.Fatal(err)
		}
	}
	// Keep every lease alive through whichever member serves, across a
	// leader loss, for several TTLs.
	stop := make(chan struct{})
	kept := make(chan error, 1)
	var rounds atomic.Int64 // keep-alive rounds done
	go func() {
		for {
			select {
			case <-stop:
				kept <- nil
				return
			case <-time.After(300 * time.Millisecond):
			}
			for _, s := range c.running() {
				for _, id := range ids {
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					_, _ = s.LeaseRenew(ctx, id)
					cancel()
				}
			}
			rounds.Add(1)
		}
	}()
	for start := rounds.Load(); rounds.Load() < start+3; {
		select { // three rounds of keep-alives under the first leader
		case <-time.After(50 * time.Millisecond):
		case err := <-kept:
			t.Fatal(err)
		}
	}
	c.stop(lead)
	newLead := c.waitLeader()
	// The passing time is what is tested: for two TTLs under the new
	// leader, every kept-alive key stays, checked throughout.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
		for i := range ids {
			resp, err := getKey(t, c.server(newLead), fmt.Sprintf("svc/%d", i))
			if err != nil || len(resp.GetKvs()) != 1 {
				t.Fatalf("kept-alive key svc/%d: %v %v: a lease expired while kept alive", i, resp, err)
			}
		}
		<-time.After(100 * time.Millisecond)
	}
	close(stop)
	<-kept
	c.start(lead)
	c.waitLeader()
	// Abandoned: every lease expires, on every member, at one revision each.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		gone := true
		for _, s := range c.running() {
			resp, err := s.Range(context.Background(), &pb.RangeRequest{Key: []byte("svc/"), RangeEnd: []byte("svc0"), Serializable: true})
			if err != nil || len(resp.GetKvs()) != 0 {
				gone = false
			}
		}
		if gone {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var hashes []uint32
	var revs []int64
	for _, s := range c.running() {
		requireKeys(t, s, map[string]string{}) // a linearizable read: caught up
		h, rev, _, err := s.KV().HashKV(0)
		if err != nil {
			t.Fatal(err)
		}
		hashes, revs = append(hashes, h), append(revs, rev)
		resp, _ := s.Range(context.Background(), &pb.RangeRequest{Key: []byte("svc/"), RangeEnd: []byte("svc0"), Serializable: true})
		if len(resp.GetKvs()) != 0 {
			t.Fatalf("member %x still holds %d leased keys after their leases were abandoned", s.ID(), len(resp.GetKvs()))
		}
	}
	for i := range hashes {
		if hashes[i] != hashes[0] || revs[i] != revs[0] {
			t.Fatalf("members disagree after expiry: revisions %v hashes %v", revs, hashes)
		}
	}
}
