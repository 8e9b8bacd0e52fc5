package api

import (
	"context"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// KVBackend executes key-value requests that have already passed etcd's
// request validation. Implementations fill response headers (cluster_id,
// member_id, revision, raft_term) and return client-facing errors as
// rpctypes status errors (rpctypes.ErrGRPC*) or context errors.
type KVBackend interface {
	// Range is linearizable unless r.Serializable. Count is every key of
	// the range, whatever the limit (KV.RangeStream relies on it).
	Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error)
	Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error)
	DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error)
	Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error)
	Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error)
}

// MaintenanceBackend executes maintenance requests. Error contract as KVBackend.
type MaintenanceBackend interface {
	// Status describes this member; the api layer fills Version, and
	// StorageVersion and DowngradeInfo when left empty.
	Status(ctx context.Context) (*pb.StatusResponse, error)
	Hash(ctx context.Context) (*pb.HashResponse, error)
	HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error)
	// Snapshot writes a point-in-time copy of the raw bbolt database to w
	// and returns the number of bytes written. The api layer adds
	// chunking, remaining_bytes, the trailing sha256 and progress logging.
	Snapshot(ctx context.Context, w io.Writer) (size int64, err error)
	Defragment(ctx context.Context) error
	Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error)
	MoveLeader(ctx context.Context, target uint64) (*pb.MoveLeaderResponse, error)
	Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error)
}

// VersionReporter is optionally implemented by a Backend whose cluster and
// storage versions change (a replicated cluster version that a downgrade
// lowers): /version reports them. Without it /version reports
// Config.ClusterVersion and the storage version of Config.ServerVersion.
type VersionReporter interface {
	Versions(ctx context.Context) (cluster, storage string, err error)
}

// SnapshotOpener is optionally implemented by a MaintenanceBackend that
// knows a snapshot's size before writing it (a bbolt read transaction:
// Tx.Size and Tx.WriteTo). When present, Maintenance.Snapshot streams
// straight from it; otherwise it first spools MaintenanceBackend.Snapshot
// into a temporary file so that remaining_bytes is exact from the first
// chunk on.
type SnapshotOpener interface {
	OpenSnapshot(ctx context.Context) (Snapshot, error)
}

// Snapshot is a point-in-time database image. WriteTo writes exactly
// Size bytes. Close releases it and must be called once.
//
// It is an alias of an unnamed interface, the same type as node.SnapshotBody
// and transport.SnapshotBody, so that a backend returning an
// mvcc.DBSnapshot as a node.SnapshotBody implements SnapshotOpener without
// importing api.
type Snapshot = interface {
	Size() int64
	WriteTo(w io.Writer) (int64, error)
	Close() error
}

// ClusterBackend executes membership requests. Error contract as KVBackend.
type ClusterBackend interface {
	MemberList(ctx context.Context, linearizable bool) (*pb.MemberListResponse, error)
	MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error)
	MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error)
	MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error)
	MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error)
}

// HealthBackend answers the questions of etcd's probes (/health, /livez,
// /readyz); the api layer combines them as etcd does. Error contract as
// KVBackend.
type HealthBackend interface {
	// Alarms lists the alarms raised in the cluster.
	Alarms(ctx context.Context) ([]*pb.AlarmMember, error)
	// Leader is this member's leader, 0 while it knows none.
	Leader() uint64
	// IsLearner reports whether this member is a raft learner.
	IsLearner(ctx context.Context) (bool, error)
	// HealthRead reads one key, keys only, linearizably unless
	// serializable, within the server's request timeout. A linearizable
	// read that no leader confirms fails with ErrGRPCTimeout, as etcd's.
	HealthRead(ctx context.Context, serializable bool) error
}

// Backend is everything the api layer needs from the raft node.
type Backend interface {
	KVBackend
	MaintenanceBackend
	ClusterBackend
	HealthBackend
}
