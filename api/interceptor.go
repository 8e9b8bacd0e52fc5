package api

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// errPanic is what a client sees when its request made a handler panic.
var errPanic = status.Error(codes.Internal, "cairn: internal error")

// recoverUnary turns a panic in a unary handler into codes.Internal, logs
// it with its stack, and leaves the server serving.
func recoverUnary(lg *zap.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				lg.Error("panic in gRPC handler",
					zap.String("method", info.FullMethod),
					zap.Any("panic", p),
					zap.ByteString("stack", debug.Stack()),
				)
				resp, err = nil, errPanic
			}
		}()
		return handler(ctx, req)
	}
}

// recoverStream is recoverUnary for streaming handlers.
func recoverStream(lg *zap.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				lg.Error("panic in gRPC stream handler",
					zap.String("method", info.FullMethod),
					zap.Any("panic", p),
					zap.ByteString("stack", debug.Stack()),
				)
				err = errPanic
			}
		}()
		return handler(srv, ss)
	}
}

// requestStats logs etcd's "request stats" line for unary requests: every
// request at debug level when the logger is at debug, and, as etcd does
// with --warning-unary-request-duration, a request that took longer than
// warn (when warn > 0) as a warning. Request content is logged only for
// key-value requests, and values only by size, so no secret reaches the
// log.
func requestStats(lg *zap.Logger, warn time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		took := time.Since(start)
		debug := lg.Core().Enabled(zapcore.DebugLevel)
		slow := warn > 0 && took > warn
		if !debug && !slow {
			return resp, err
		}
		remote := ""
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			remote = p.Addr.String()
		}
		fields := []zap.Field{
			zap.Time("start time", start),
			zap.Duration("time spent", took),
			zap.String("remote", remote),
			zap.String("response type", info.FullMethod),
			zap.Int("request size", msgSize(req)),
			zap.Int("response size", msgSize(resp)),
			zap.String("request content", requestContent(req)),
		}
		if err != nil {
			fields = append(fields, zap.Error(err))
		}
		if debug {
			lg.Debug("request stats", fields...)
		}
		if slow {
			lg.Warn("request stats", fields...)
		}
		return resp, err
	}
}

func msgSize(m any) int {
	if pm, ok := m.(proto.Message); ok {
		return proto.Size(pm)
	}
	return 0
}

// requestContent describes a key-value request as etcd's request stats do:
// keys in full, values by size only.
func requestContent(req any) string {
	switch r := req.(type) {
	case *pb.PutRequest:
		return fmt.Sprintf("key:%q value_size:%d", r.GetKey(), len(r.GetValue()))
	case *pb.RangeRequest:
		if len(r.GetRangeEnd()) > 0 {
			return fmt.Sprintf("key:%q range_end:%q", r.GetKey(), r.GetRangeEnd())
		}
		return fmt.Sprintf("key:%q", r.GetKey())
	case *pb.DeleteRangeRequest:
		if len(r.GetRangeEnd()) > 0 {
			return fmt.Sprintf("key:%q range_end:%q", r.GetKey(), r.GetRangeEnd())
		}
		return fmt.Sprintf("key:%q", r.GetKey())
	case *pb.TxnRequest:
		return fmt.Sprintf("compare_size:%d success_size:%d failure_size:%d", len(r.GetCompare()), len(r.GetSuccess()), len(r.GetFailure()))
	}
	return ""
}
