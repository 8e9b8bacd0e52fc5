package node

import (
	"errors"

	"go.etcd.io/raft/v3"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/mvcc"
)

// Errors the core returns to proposers.
var (
	// ErrStopped: the core hit a fatal error (disk, corruption) or was closed.
	ErrStopped = errors.New("node: stopped")
	// ErrRequestTooLarge: the encoded request exceeds Config.MaxRequestBytes.
	ErrRequestTooLarge = errors.New("node: request is too large")
	// ErrRemoved: this member was removed from the cluster; it stops, as
	// etcd's does, with etcd's message.
	ErrRemoved = errors.New("the member has been permanently removed from the cluster")
	// ErrSenderRemoved: Step refused a message from a member the cluster
	// removed. The shell answers such a sender with
	// transport.ErrSenderRemoved, which tells it to stop.
	ErrSenderRemoved = errors.New("node: message from a member removed from the cluster")
	// ErrProposalDropped: raft dropped the proposal (no leader known, or a leadership transfer is in progress).
	ErrProposalDropped = raft.ErrProposalDropped
)

// applyOutcomes are the errors an entry's request can deterministically
// cause when it is applied: the same on every member, so they are the
// request's result for its client, not a failure of the member. Any other
// error while applying stops the member (see applyRequest), because going on
// could let members diverge. errors_test.go checks that every exported error
// of mvcc, lease and node is either here or listed there as one apply never
// returns for a request; the api package maps every one of them to etcd's.
var applyOutcomes = []error{
	mvcc.ErrCompacted, mvcc.ErrFutureRev, mvcc.ErrEmptyKey, mvcc.ErrKeyNotFound,
	mvcc.ErrDuplicateKey, mvcc.ErrTooManyOps,
	lease.ErrLeaseNotFound, lease.ErrLeaseExists, lease.ErrLeaseTTLTooLarge,
	ErrNoSpace, ErrCorrupt,
	auth.ErrRootUserNotExist, auth.ErrRootRoleNotExist, auth.ErrUserAlreadyExist, auth.ErrUserEmpty,
	auth.ErrUserNotFound, auth.ErrRoleAlreadyExist, auth.ErrRoleNotFound, auth.ErrRoleEmpty,
	auth.ErrPermissionNotGiven, auth.ErrAuthFailed, auth.ErrNoPasswordUser, auth.ErrPermissionDenied,
	auth.ErrRoleNotGranted, auth.ErrPermissionNotGranted, auth.ErrAuthNotEnabled, auth.ErrAuthOldRevision,
	auth.ErrInvalidAuthMgmt,
}

// IsApplyOutcome tells whether err (or an error it wraps) is a request's
// deterministic outcome at apply time rather than a failure of this member.
func IsApplyOutcome(err error) bool {
	for _, e := range applyOutcomes {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ApplyOutcomes returns the errors IsApplyOutcome accepts.
func ApplyOutcomes() []error { return append([]error(nil), applyOutcomes...) }
