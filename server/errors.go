package server

import (
	"context"
	"errors"
)

// Errors the shell returns to the API layer. Their texts are etcd's; the api
// package maps each to etcd's gRPC error (api/errors.go holds the table).
// Errors of the core (node.ErrStopped, node.ErrNoSpace...), mvcc and lease
// reach the API layer unchanged.
var (
	ErrNoLeader               = errors.New("etcdserver: no leader")
	ErrNotLeader              = errors.New("etcdserver: not leader")
	ErrLeaderChanged          = errors.New("etcdserver: leader changed")
	ErrCanceled               = errors.New("etcdserver: request canceled")
	ErrTimeout                = errors.New("etcdserver: request timed out")
	ErrTimeoutDueToLeaderFail = errors.New("etcdserver: request timed out, possibly due to previous leader failure")
	ErrBadLeaderTransferee    = errors.New("etcdserver: bad leader transferee")
	ErrPeerURLExist           = errors.New("etcdserver: Peer URLs already exists")
	ErrMemberNotFound         = errors.New("etcdserver: member not found")
	ErrMemberNotEnoughStarted = errors.New("etcdserver: re-configuration failed due to not enough started members")
	ErrMemberNotLearner       = errors.New("etcdserver: can only promote a learner member")
	ErrLearnerNotReady        = errors.New("etcdserver: can only promote a learner member which is in sync with leader")
	ErrTooManyLearners        = errors.New("etcdserver: too many learner members in cluster")
	ErrUnhealthy              = errors.New("etcdserver: unhealthy cluster")
	// Downgrade errors (version.go), etcd's.
	ErrWrongDowngradeVersionFormat   = errors.New("etcdserver: wrong downgrade target version format")
	ErrInvalidDowngradeTargetVersion = errors.New("etcdserver: invalid downgrade target version")
	ErrDowngradeInProcess            = errors.New("etcdserver: cluster has a downgrade job in progress")
	ErrNoInflightDowngrade           = errors.New("etcdserver: no inflight downgrade job")
	ErrClusterVersionUnavailable     = errors.New("etcdserver: cluster version not found during downgrade")
	ErrUnknownMethod                 = errors.New("etcdserver: unknown method")
)

// ctxError turns a context's cancellation into etcd's "request canceled",
// as etcd's server does for a request its client gave up on; every other
// error (a deadline included) is returned as it is.
func ctxError(err error) error {
	if errors.Is(err, context.Canceled) {
		return ErrCanceled
	}
	return err
}
