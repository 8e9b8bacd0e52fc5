package api

import (
	"context"
	"runtime/debug"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
