package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/transport"
)

// leaseRoutes serves the members' peer listeners in process: a request to
// mem://mN goes to that member's LeasePeerHandler, or is answered 404 as
// by a member without it when old is set.
type leaseRoutes struct {
	c   *testCluster
	old bool
}

func (p *leaseRoutes) RoundTrip(r *http.Request) (*http.Response, error) {
	s, _, err := p.c.peerHost(r.URL.Host)
	if err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	if p.old {
		http.NotFound(rec, r)
	} else {
		s.LeasePeerHandler().ServeHTTP(rec, r)
	}
	return rec.Result(), nil
}

// TestFollowerForwardsLeasesOverThePeerPort: a follower's keep-alives and
// time-to-live reach the leader's lessor over the peer port; an unknown
// lease is not found; a member that is not the leader refuses to answer
// for the lessor; a leader without the peer paths is not taken for a
// missing lease.
func TestFollowerForwardsLeasesOverThePeerPort(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	routes := &leaseRoutes{c: c}
	for _, m := range c.members {
		c.stop(m.ID)
		c.startWith(m.ID, func(cfg *Config) { cfg.PeerClient = &http.Client{Transport: routes} })
	}
	leadID := c.waitLeader()
	lead := c.server(leadID)
	var follower, other *Server
	for _, s := range c.running() {
		if s.ID() != leadID {
			follower, other = s, follower
		}
	}
	id := grant(t, lead, 30)
	if _, err := lead.Put(context.Background(), &pb.PutRequest{Key: []byte("leased"), Value: []byte("v"), Lease: id}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ttl, err := follower.LeaseRenew(ctx, id)
	if err != nil || ttl != 30 {
		t.Fatalf("renew through a follower = %d, %v; want 30", ttl, err)
	}
	tr, err := follower.LeaseTimeToLive(ctx, &pb.LeaseTimeToLiveRequest{ID: id, Keys: true})
	if err != nil || tr.GetGrantedTTL() != 30 || tr.GetTTL() <= 0 || len(tr.GetKeys()) != 1 || string(tr.GetKeys()[0]) != "leased" {
		t.Fatalf("time-to-live through a follower = %v, %v", tr, err)
	}
	if _, err := follower.LeaseRenew(ctx, id+1000); !errors.Is(err, lease.ErrLeaseNotFound) {
		t.Fatalf("renew of an unknown lease through a follower: %v, want %v", err, lease.ErrLeaseNotFound)
	}
	if _, err := follower.LeaseTimeToLive(ctx, &pb.LeaseTimeToLiveRequest{ID: id + 1000}); !errors.Is(err, lease.ErrLeaseNotFound) {
		t.Fatalf("time-to-live of an unknown lease through a follower: %v, want %v", err, lease.ErrLeaseNotFound)
	}

	// A request naming no member, or none at all, is refused.
	for _, from := range []string{"", "zz", "12345", fmt.Sprintf("%x", leadID)} {
		req := httptest.NewRequest(http.MethodPost, LeaseRenewPath, strings.NewReader(""))
		if from != "" {
			req.Header.Set(transport.HeaderFrom, from)
		}
		rec := httptest.NewRecorder()
		lead.LeasePeerHandler().ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("a keep-alive from %q: %d %s, want 403", from, rec.Code, rec.Body)
		}
	}

	// A follower's peer handler does not answer for the lessor.
	var resp pb.LeaseKeepAliveResponse
	err = follower.peerCallTo(ctx, other.ID(), LeaseRenewPath, &pb.LeaseKeepAliveRequest{ID: id}, &resp)
	if !errors.Is(err, lease.ErrNotPrimary) {
		t.Fatalf("a keep-alive to a follower's peer port: %v, want %v", err, lease.ErrNotPrimary)
	}

	// A leader without the paths: the follower goes to its client URL
	// (none here), never reports the lease missing.
	routes.old = true
	if err := follower.peerCall(ctx, LeaseRenewPath, &pb.LeaseKeepAliveRequest{ID: id}, &resp); !errors.Is(err, errNoLeasePeerPath) {
		t.Fatalf("a leader without the peer paths: %v, want %v", err, errNoLeasePeerPath)
	}
	if _, err := follower.LeaseRenew(ctx, id); err == nil || errors.Is(err, lease.ErrLeaseNotFound) {
		t.Fatalf("renew through a follower whose leader has no peer paths and no client URL: %v, want a failure to reach it", err)
	}
}

// TestPeerErrorKeepsTheShellsErrors: an error named in a peer answer is
// the shell's own again, so the API layer gives etcd's code for it.
func TestPeerErrorKeepsTheShellsErrors(t *testing.T) {
	for _, e := range peerErrors {
		if got := peerError(e.Error()); got != e {
			t.Errorf("peerError(%q) = %v, not the same error", e.Error(), got)
		}
	}
	if got := peerError("something else"); got.Error() != "something else" {
		t.Errorf("peerError of an unknown text = %q", got)
	}
}
