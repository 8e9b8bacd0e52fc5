package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"

	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/node"
)

// The Lease API of server.Server (api.LeaseBackend). Grants and revokes go
// through raft; renewals and time-to-live are served by the leader's
// lessor, so a follower forwards them to the leader over the peer port
// (leasepeer.go).

// LeaseGrant grants a lease, choosing its ID when the client did not.
func (s *Server) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	req := &pb.LeaseGrantRequest{TTL: r.GetTTL(), ID: r.GetID()}
	if req.ID == 0 {
		idc := make(chan int64, 1)
		if err := s.do(ctx, func() { idc <- s.core.NextLeaseID() }); err != nil {
			return nil, err
		}
		select {
		case req.ID = <-idc:
		case <-s.donec:
			return nil, node.ErrStopped
		}
	}
	res, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseGrant: req})
	if err != nil {
		return nil, err
	}
	return res.Resp.(*pb.LeaseGrantResponse), nil
}

// LeaseRevoke revokes a lease and deletes its keys.
func (s *Server) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	res, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: r.GetID()}})
	if err != nil {
		return nil, err
	}
	return res.Resp.(*pb.LeaseRevokeResponse), nil
}

// onLoop runs f on the loop and waits for it.
func (s *Server) onLoop(ctx context.Context, f func()) error {
	done := make(chan struct{})
	if err := s.do(ctx, func() { f(); close(done) }); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctxError(ctx.Err())
	case <-s.donec:
		return node.ErrStopped
	}
}

// LeaseRenew keeps a lease alive: on the leader directly, elsewhere
// forwarded to the leader.
func (s *Server) LeaseRenew(ctx context.Context, id int64) (int64, error) {
	if s.Leader() == 0 {
		return 0, ErrNoLeader
	}
	// Checked here, by the member the caller reached, with the caller's
	// token or client certificate: a forward goes over the peer port,
	// and the leader serves it unchecked, as etcd's.
	if err := s.leaseAuth(ctx, id, true); err != nil {
		return 0, err
	}
	if s.Leader() != s.ID() {
		return s.forwardRenew(ctx, id)
	}
	ttl, err := s.renewLocal(ctx, id)
	if errors.Is(err, lease.ErrNotPrimary) {
		return s.forwardRenew(ctx, id) // leadership moved since the check
	}
	return ttl, err
}

// renewLocal renews the lease on this member's lessor, which must be the
// primary one (lease.ErrNotPrimary otherwise). No auth check: the caller
// has made it, or a member has (LeasePeerHandler).
func (s *Server) renewLocal(ctx context.Context, id int64) (int64, error) {
	type renewal struct {
		ttl int64
		err error
	}
	resc := make(chan renewal, 1)
	if err := s.do(ctx, func() {
		s.core.LeaseRenew(id, func(ttl int64, err error) { resc <- renewal{ttl, err} })
	}); err != nil {
		return 0, err
	}
	var ttl int64
	var err error
	select {
	case r := <-resc:
		ttl, err = r.ttl, r.err
	case <-ctx.Done():
		return 0, ctxError(ctx.Err())
	case <-s.donec:
		return 0, node.ErrStopped
	}
	if err != nil {
		return 0, err
	}
	s.met.leaseRenewed.Inc() // renewed by this member's lessor, the leader's
	return ttl, nil
}

// LeaseTimeToLive reports a lease's granted and remaining TTL, as the
// leader's lessor knows them.
func (s *Server) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	// Checked here, before a forward, as LeaseRenew. As etcd, the keys'
	// permissions only when the keys are asked for; the API layer has
	// required a user.
	if r.GetKeys() {
		if err := s.leaseAuth(ctx, r.GetID(), false); err != nil {
			return nil, err
		}
	}
	if s.Leader() != 0 && s.Leader() != s.ID() {
		return s.forwardTimeToLive(ctx, r)
	}
	return s.timeToLiveLocal(ctx, r)
}

// timeToLiveLocal answers from this member's lessor after a linearizable
// read. No auth check, as renewLocal.
func (s *Server) timeToLiveLocal(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := s.LinearizableRead(ctx); err != nil {
		return nil, err
	}
	var granted, remaining int64
	var keys [][]byte
	var err error
	if lerr := s.onLoop(ctx, func() { granted, remaining, keys, err = s.core.LeaseTimeToLive(r.GetID()) }); lerr != nil {
		return nil, lerr
	}
	if err != nil {
		return nil, err
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: s.header(s.kv.Rev()), ID: r.GetID(), TTL: remaining, GrantedTTL: granted}
	if r.GetKeys() {
		resp.Keys = keys
	}
	return resp, nil
}

// LeaseLeases lists every lease.
func (s *Server) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := s.LinearizableRead(ctx); err != nil {
		return nil, err
	}
	var ls []*lease.Lease
	if err := s.onLoop(ctx, func() { ls = s.core.Leases() }); err != nil {
		return nil, err
	}
	if err := s.leaseLeasesAuth(ctx, ls); err != nil {
		return nil, err
	}
	resp := &pb.LeaseLeasesResponse{Header: s.header(s.kv.Rev())}
	for _, l := range ls {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: l.ID})
	}
	return resp, nil
}

// LeaseHeader is the header of keep-alive responses.
func (s *Server) LeaseHeader() *pb.ResponseHeader { return s.header(s.kv.Rev()) }

// forwardRenew renews the lease on the leader, over the peer port
// (LeasePeerHandler); a leader that does not serve it (an older Cairn)
// gets the keep-alive on its client URL with the caller's token.
func (s *Server) forwardRenew(ctx context.Context, id int64) (int64, error) {
	var resp pb.LeaseKeepAliveResponse
	err := s.peerCall(ctx, LeaseRenewPath, &pb.LeaseKeepAliveRequest{ID: id}, &resp)
	switch {
	case errors.Is(err, errNoLeasePeerPath):
		return s.forwardRenewClient(ctx, id)
	case err != nil:
		return 0, err
	case resp.GetTTL() <= 0:
		return 0, lease.ErrLeaseNotFound
	}
	return resp.GetTTL(), nil
}

// forwardTimeToLive asks the leader, as forwardRenew.
func (s *Server) forwardTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	var resp pb.LeaseTimeToLiveResponse
	err := s.peerCall(ctx, LeaseTimeToLivePath, &pb.LeaseTimeToLiveRequest{ID: r.GetID(), Keys: r.GetKeys()}, &resp)
	if errors.Is(err, errNoLeasePeerPath) {
		conn, err := s.leaderConn(ctx)
		if err != nil {
			return nil, err
		}
		return pb.NewLeaseClient(conn).LeaseTimeToLive(forwardContext(ctx), r)
	}
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// forwardRenewClient keeps the lease alive through the leader's client
// URL, with the caller's token (a leader of an older version).
func (s *Server) forwardRenewClient(ctx context.Context, id int64) (int64, error) {
	conn, err := s.leaderConn(ctx)
	if err != nil {
		return 0, err
	}
	stream, err := pb.NewLeaseClient(conn).LeaseKeepAlive(forwardContext(ctx))
	if err != nil {
		return 0, err
	}
	defer func() { _ = stream.CloseSend() }()
	if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
		return 0, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return 0, err
	}
	if resp.GetTTL() <= 0 {
		return 0, lease.ErrLeaseNotFound
	}
	return resp.GetTTL(), nil
}

// leaderClients caches one gRPC connection to the current leader.
type leaderClients struct {
	mu     sync.Mutex
	leader uint64
	conn   *grpc.ClientConn
}

func (s *Server) leaderConn(ctx context.Context) (*grpc.ClientConn, error) {
	lead := s.Leader()
	s.leaderc.mu.Lock()
	defer s.leaderc.mu.Unlock()
	if s.leaderc.conn != nil && s.leaderc.leader == lead {
		return s.leaderc.conn, nil
	}
	var urls []string
	if err := s.onLoop(ctx, func() {
		for _, m := range s.core.Members() {
			if m.ID == lead {
				urls = m.ClientURLs
			}
		}
	}); err != nil {
		return nil, err
	}
	if len(urls) == 0 {
		return nil, ErrNoLeader
	}
	target, err := grpcTarget(urls[0])
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(s.clientCreds(urls[0])))
	if err != nil {
		return nil, fmt.Errorf("node: connecting to leader %x at %s: %w", lead, urls[0], err)
	}
	if s.leaderc.conn != nil {
		_ = s.leaderc.conn.Close()
	}
	s.leaderc.conn, s.leaderc.leader = conn, lead
	return conn, nil
}

func grpcTarget(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("node: bad client URL %q: %w", u, err)
	}
	if p.Scheme == "unix" || p.Scheme == "unixs" {
		return "unix://" + p.Host + p.Path, nil
	}
	return p.Host, nil
}

func (s *Server) closeLeaderConn() {
	s.leaderc.mu.Lock()
	defer s.leaderc.mu.Unlock()
	if s.leaderc.conn != nil {
		_ = s.leaderc.conn.Close()
		s.leaderc.conn = nil
	}
}
