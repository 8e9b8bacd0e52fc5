package lease

import "errors"

// Sentinel errors of the lessor. The node maps them to etcd's rpctypes
// errors (ErrGRPCLeaseNotFound, ErrGRPCLeaseExist, ErrGRPCLeaseTTLTooLarge,
// and ErrNotPrimary to a forward to the leader or ErrGRPCNoLeader).
var (
	// ErrLeaseNotFound: no lease has this ID (or the ID is 0, which
	// means "no lease" in etcd's protocol), or, on the primary, the lease
	// has expired and its revoke is pending.
	ErrLeaseNotFound = errors.New("lease: lease not found")
	// ErrLeaseExists: Grant of an ID that is already granted.
	ErrLeaseExists = errors.New("lease: lease already exists")
	// ErrLeaseTTLTooLarge: Grant of a TTL above MaxLeaseTTL.
	ErrLeaseTTLTooLarge = errors.New("lease: too large lease TTL")
	// ErrNotPrimary: a leader-only operation on a lessor that is not the
	// primary (the member is not the raft leader).
	ErrNotPrimary = errors.New("lease: not a primary lessor")
)
