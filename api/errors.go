package api

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/server"
)

// errorTable is the one place where Cairn's errors become etcd's. Every
// exported error of mvcc, lease, node and server has a row (errors_test.go
// checks it by reading their sources), so a new error is either mapped here
// or fails the build's tests. Rows are matched with errors.Is, in order.
var errorTable = []struct {
	err  error
	grpc error
}{
	// mvcc: outcomes of requests.
	{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{mvcc.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{mvcc.ErrEmptyKey, rpctypes.ErrGRPCEmptyKey},
	{mvcc.ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey},
	{mvcc.ErrTooManyOps, rpctypes.ErrGRPCTooManyOps},
	{mvcc.ErrClosed, rpctypes.ErrGRPCStopped},
	{mvcc.ErrLegacyFormat, rpctypes.ErrGRPCStopped}, // from Open only: the member never serves
	// mvcc: watch errors reach clients as a cancelled watch, never as an
	// RPC error; the rows keep the table whole.
	{mvcc.ErrWatcherDuplicateID, status.Error(codes.InvalidArgument, mvcc.ErrWatcherDuplicateID.Error())},
	{mvcc.ErrEmptyWatcherRange, status.Error(codes.InvalidArgument, mvcc.ErrEmptyWatcherRange.Error())},
	{mvcc.ErrWatcherNotExist, status.Error(codes.NotFound, mvcc.ErrWatcherNotExist.Error())},
	{mvcc.ErrWatchStreamClosed, rpctypes.ErrGRPCStopped},

	// lease
	{lease.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{lease.ErrLeaseExists, rpctypes.ErrGRPCLeaseExist},
	{lease.ErrLeaseTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	{lease.ErrNotPrimary, rpctypes.ErrGRPCNotLeader},

	// node: the core
	{node.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{node.ErrCorrupt, rpctypes.ErrGRPCCorrupt},
	{node.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{node.ErrStopped, rpctypes.ErrGRPCStopped},
	{node.ErrRemoved, rpctypes.ErrGRPCStopped},
	{node.ErrProposalDropped, rpctypes.ErrGRPCLeaderChanged},
	{node.ErrSenderRemoved, status.Error(codes.Unavailable, node.ErrSenderRemoved.Error())}, // peers only

	// auth: etcd's auth errors.
	{auth.ErrRootUserNotExist, rpctypes.ErrGRPCRootUserNotExist},
	{auth.ErrRootRoleNotExist, rpctypes.ErrGRPCRootRoleNotExist},
	{auth.ErrUserAlreadyExist, rpctypes.ErrGRPCUserAlreadyExist},
	{auth.ErrUserEmpty, rpctypes.ErrGRPCUserEmpty},
	{auth.ErrUserNotFound, rpctypes.ErrGRPCUserNotFound},
	{auth.ErrRoleAlreadyExist, rpctypes.ErrGRPCRoleAlreadyExist},
	{auth.ErrRoleNotFound, rpctypes.ErrGRPCRoleNotFound},
	{auth.ErrRoleEmpty, rpctypes.ErrGRPCRoleEmpty},
	{auth.ErrPermissionNotGiven, rpctypes.ErrGRPCPermissionNotGiven},
	{auth.ErrAuthFailed, rpctypes.ErrGRPCAuthFailed},
	{auth.ErrNoPasswordUser, status.Error(codes.Unknown, auth.ErrNoPasswordUser.Error())}, // etcd has no row for it either
	{auth.ErrPermissionDenied, rpctypes.ErrGRPCPermissionDenied},
	{auth.ErrRoleNotGranted, rpctypes.ErrGRPCRoleNotGranted},
	{auth.ErrPermissionNotGranted, rpctypes.ErrGRPCPermissionNotGranted},
	{auth.ErrAuthNotEnabled, rpctypes.ErrGRPCAuthNotEnabled},
	{auth.ErrAuthOldRevision, rpctypes.ErrGRPCAuthOldRevision},
	{auth.ErrInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken},
	{auth.ErrInvalidAuthMgmt, rpctypes.ErrGRPCInvalidAuthMgmt},

	// server: the production shell
	{server.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{server.ErrNotLeader, rpctypes.ErrGRPCNotLeader},
	{server.ErrLeaderChanged, rpctypes.ErrGRPCLeaderChanged},
	{server.ErrCanceled, rpctypes.ErrGRPCCanceled},
	{server.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{server.ErrTimeoutDueToLeaderFail, rpctypes.ErrGRPCTimeoutDueToLeaderFail},
	{server.ErrBadLeaderTransferee, rpctypes.ErrGRPCBadLeaderTransferee},
	{server.ErrPeerURLExist, rpctypes.ErrGRPCPeerURLExist},
	{server.ErrMemberNotFound, rpctypes.ErrGRPCMemberNotFound},
	{server.ErrMemberNotEnoughStarted, rpctypes.ErrGRPCMemberNotEnoughStarted},
	{server.ErrMemberNotLearner, rpctypes.ErrGRPCMemberNotLearner},
	{server.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady},
	{server.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners},
	{server.ErrUnhealthy, rpctypes.ErrGRPCUnhealthy},
	{server.ErrWrongDowngradeVersionFormat, rpctypes.ErrGRPCWrongDowngradeVersionFormat},
	{server.ErrInvalidDowngradeTargetVersion, rpctypes.ErrGRPCInvalidDowngradeTargetVersion},
	{server.ErrDowngradeInProcess, rpctypes.ErrGRPCDowngradeInProcess},
	{server.ErrNoInflightDowngrade, rpctypes.ErrGRPCNoInflightDowngrade},
	{server.ErrClusterVersionUnavailable, rpctypes.ErrGRPCClusterVersionUnavailable},
	{server.ErrUnknownMethod, status.Error(codes.Unknown, server.ErrUnknownMethod.Error())},             // etcd has no row for it either
	{server.ErrInvalidAuthOpts, status.Error(codes.InvalidArgument, server.ErrInvalidAuthOpts.Error())}, // from New only
}

// toGRPCError converts a backend error into what the client sees, as
// etcd's v3rpc layer does: errors in errorTable become etcd's errors;
// status errors (from a fake backend, or forwarded from the leader) pass
// through unchanged; context.Canceled and context.DeadlineExceeded (also
// when wrapped) become codes.Canceled "context canceled" and
// codes.DeadlineExceeded "context deadline exceeded", which is what gRPC
// makes of etcd's bare context errors; anything else becomes codes.Unknown
// carrying the error's text, as gRPC does with etcd's unmapped errors.
func toGRPCError(err error) error {
	if err == nil {
		return nil
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row.grpc
		}
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
