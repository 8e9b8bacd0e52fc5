package api

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// LeaseBackend executes lease requests. Implementations fill response
// headers and return client-facing errors as rpctypes status errors
// (rpctypes.ErrGRPCLeaseNotFound, ErrGRPCLeaseExist,
// ErrGRPCLeaseTTLTooLarge, ErrGRPCNoLeader, ...) or context errors.
type LeaseBackend interface {
	// LeaseGrant picks an ID when r.ID is 0.
	LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)
	// LeaseRevoke deletes the lease and its keys in one revision.
	LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error)
	// LeaseRenew is one keep-alive of lease id, returning its granted TTL;
	// the backend forwards it to the leader itself.
	LeaseRenew(ctx context.Context, id int64) (ttl int64, err error)
	LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
	LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error)
	// LeaseHeader is the header of keep-alive responses (and of
	// TimeToLive's not-found answer): cluster_id, member_id, current
	// revision, raft_term.
	LeaseHeader() *pb.ResponseHeader
}

// NewLeaseServer returns etcd's Lease service on top of b, for
// Config.Lease. lg nil means no logging.
func NewLeaseServer(b LeaseBackend, lg *zap.Logger) pb.LeaseServer {
	if lg == nil {
		lg = zap.NewNop()
	}
	return &leaseServer{be: b, lg: lg}
}

// leaseServer is the Lease service, answering as etcd's v3rpc layer does.
type leaseServer struct {
	pb.UnimplementedLeaseServer
	be LeaseBackend
	lg *zap.Logger
}

func (s *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	resp, err := s.be.LeaseGrant(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

func (s *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := s.be.LeaseRevoke(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

// LeaseTimeToLive answers an unknown lease with TTL -1 and no error, as
// etcd does (clientv3 and etcdctl rely on it).
func (s *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := s.be.LeaseTimeToLive(ctx, r)
	if errors.Is(toGRPCError(err), rpctypes.ErrGRPCLeaseNotFound) {
		return &pb.LeaseTimeToLiveResponse{Header: s.be.LeaseHeader(), ID: r.GetID(), TTL: -1}, nil
	}
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

func (s *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	resp, err := s.be.LeaseLeases(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

// LeaseKeepAlive answers each request on the stream, in order, with
// {header, ID, TTL}: TTL is the lease's granted TTL, or 0 (and no error)
// if the lease does not exist, as etcd does. The header is taken before
// the renewal, so its revision is never past the renewal's (a lease
// revoked at revision r is never reported renewed at a later one). The
// stream ends cleanly when the client closes its side; a backend error
// (e.g. ErrGRPCNoLeader) ends it with that error.
func (s *leaseServer) LeaseKeepAlive(stream grpc.BidiStreamingServer[pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse]) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				s.lg.Debug("lease keep-alive stream ended by the client", zap.Error(err))
			} else {
				s.lg.Warn("lease keep-alive stream receive failed", zap.Error(err))
			}
			return err
		}
		resp := &pb.LeaseKeepAliveResponse{Header: s.be.LeaseHeader(), ID: req.GetID()}
		ttl, err := s.be.LeaseRenew(ctx, req.GetID())
		switch {
		case errors.Is(toGRPCError(err), rpctypes.ErrGRPCLeaseNotFound):
			ttl = 0
		case err != nil:
			return toGRPCError(err)
		}
		resp.TTL = ttl
		if err := stream.Send(resp); err != nil {
			if ctx.Err() != nil {
				s.lg.Debug("lease keep-alive stream ended by the client", zap.Error(err))
			} else {
				s.lg.Warn("lease keep-alive stream send failed", zap.Error(err))
			}
			return err
		}
	}
}
