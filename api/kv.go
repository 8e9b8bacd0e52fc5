package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/mvcc"
)

// kvServer is the KV service: etcd's validation, then the backend.
type kvServer struct {
	pb.UnimplementedKVServer
	be              KVBackend
	maxTxnOps       int
	maxRequestBytes int
}

// tooLarge reports whether a write request exceeds MaxRequestBytes.
func (s *kvServer) tooLarge(m proto.Message) error {
	if proto.Size(m) > s.maxRequestBytes {
		return rpctypes.ErrGRPCRequestTooLarge
	}
	return nil
}

func (s *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRange(r); err != nil {
		return nil, err
	}
	resp, err := s.be.Range(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

// RangeStream serves etcd 3.7's KV.RangeStream: see rangeStream.
func (s *kvServer) RangeStream(r *pb.RangeRequest, stream grpc.ServerStreamingServer[pb.RangeStreamResponse]) error {
	if err := checkRangeStream(r); err != nil {
		return err
	}
	err := rangeStream(stream.Context(), s.be, r, s.maxRequestBytes, func(chunk *pb.RangeResponse) error {
		return stream.Send(&pb.RangeStreamResponse{RangeResponse: chunk})
	})
	return toGRPCError(err)
}

func (s *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPut(r); err != nil {
		return nil, err
	}
	if err := s.tooLarge(r); err != nil {
		return nil, err
	}
	resp, err := s.be.Put(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

func (s *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := checkDelete(r); err != nil {
		return nil, err
	}
	if err := s.tooLarge(r); err != nil {
		return nil, err
	}
	resp, err := s.be.DeleteRange(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

func (s *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := checkTxn(r, s.maxTxnOps); err != nil {
		return nil, err
	}
	// Overlaps are checked after the op count bounds the work, as etcd does.
	if _, _, err := checkOverlaps(r.Success); err != nil {
		return nil, err
	}
	if _, _, err := checkOverlaps(r.Failure); err != nil {
		return nil, err
	}
	if !mvcc.TxnReadOnly(r) { // reads never enter the raft log, so they are not bounded
		if err := s.tooLarge(r); err != nil {
			return nil, err
		}
	}
	resp, err := s.be.Txn(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

func (s *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := s.be.Compact(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}
