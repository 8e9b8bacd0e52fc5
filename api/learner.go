package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
)

// LearnerGate is optionally implemented by a Backend whose member can be a
// raft learner. Learner must be cheap: it is asked on every request.
type LearnerGate interface {
	// Learner reports whether this member is a learner of the cluster.
	Learner() bool
}

// snapshotMethod is the one stream RPC a learner serves, as etcd's.
const snapshotMethod = "/etcdserverpb.Maintenance/Snapshot"

// learnerServes is etcd's isRPCSupportedForLearner: a learner answers
// Status and serializable ranges, nothing else.
func learnerServes(req any) bool {
	switch r := req.(type) {
	case *pb.StatusRequest:
		return true
	case *pb.RangeRequest:
		return r.GetSerializable()
	default:
		return false
	}
}

// learnerUnary refuses, on a learner, the unary RPCs etcd's learners
// refuse, with ErrGRPCNotSupportedForLearner.
func learnerUnary(g LearnerGate) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if g.Learner() && !learnerServes(req) {
			return nil, rpctypes.ErrGRPCNotSupportedForLearner
		}
		return handler(ctx, req)
	}
}

// learnerStream is learnerUnary for streams: a learner serves only
// Maintenance.Snapshot.
func learnerStream(g LearnerGate) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if info.FullMethod != snapshotMethod && g.Learner() {
			return rpctypes.ErrGRPCNotSupportedForLearner
		}
		return handler(srv, ss)
	}
}
