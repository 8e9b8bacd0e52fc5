package mvcc

import "errors"

// Sentinel errors. The API layer maps them to etcd's rpctypes errors; the
// messages are etcd's own.
var (
	// ErrCompacted: the requested revision is below the compacted revision.
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRev: the requested revision is above the current revision.
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
	// ErrEmptyKey: a request carries an empty key.
	ErrEmptyKey = errors.New("etcdserver: key is not provided")
	// ErrKeyNotFound: ignore_value or ignore_lease on a key that does not
	// exist, or an empty request op in a txn.
	ErrKeyNotFound = errors.New("etcdserver: key not found")
	// ErrDuplicateKey: a txn puts a key twice or puts and deletes it.
	ErrDuplicateKey = errors.New("etcdserver: duplicate key given in txn request")
	// ErrTooManyOps: a txn has more operations than allowed.
	ErrTooManyOps = errors.New("etcdserver: too many operations in txn request")
	// ErrClosed: the store was closed (or abandoned).
	ErrClosed = errors.New("mvcc: store is closed")
	// ErrLegacyFormat: the database was written by a Cairn build that
	// predates etcd's on-disk format, which this build cannot read.
	ErrLegacyFormat = errors.New("mvcc: the database was written by an earlier Cairn build, before Cairn stored etcd's on-disk format; " +
		"it cannot be read: start this build on an empty data directory and copy the keys from a member still running the earlier build (etcdctl make-mirror)")
)
