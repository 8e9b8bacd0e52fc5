package api

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// toGRPCError converts a backend error into what the client sees, as
// etcd's v3rpc layer does: status errors (rpctypes.ErrGRPC*) pass
// through unchanged; context.Canceled and context.DeadlineExceeded
// (also when wrapped) become codes.Canceled "context canceled" and
// codes.DeadlineExceeded "context deadline exceeded", which is what
// gRPC makes of etcd's bare context errors; anything else becomes
// codes.Unknown carrying the error's text.
func toGRPCError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, context.Canceled.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}
