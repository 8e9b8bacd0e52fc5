package node

import (
	"errors"
	"io"
	"path/filepath"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/vfs"
)

// Config configures a Core. Zero values take the defaults noted.
type Config struct {
	Name string
	// ID is this member's ID. For a new cluster it must be the ID of the
	// member of InitialMembers with this Name; on restart it must match the WAL.
	ID uint64
	// ClusterID of the cluster. For a new cluster, 0 derives it from
	// InitialMembers and ClusterToken; on restart, 0 accepts the WAL's.
	ClusterID    uint64
	ClusterToken string
	// InitialMembers bootstraps a new cluster when the WAL does not exist yet.
	InitialMembers []Member
	// Join starts a member that an existing cluster added (as a learner or
	// voter) when the WAL does not exist yet: it starts with an empty log and
	// learns everything, membership included, from the leader. ClusterID is
	// required.
	Join bool

	// DataDir holds the bbolt database (DataDir/member/snap/db); it is always
	// on the real file system, as bbolt memory-maps it.
	DataDir string
	// WALDir is the raft log's directory on WALFS (default DataDir/member/wal).
	WALDir         string
	WALFS          vfs.FS // default vfs.OS()
	WALSegmentSize int64  // default wal's

	// SnapFS, if set, holds the received snapshot databases until their
	// install (node/snapfs.go: the simulator's crashable file system);
	// default: files of the OS, renamed over the database in place.
	SnapFS vfs.FS

	Transport Transport   // required
	Clock     clock.Clock // default clock.Real{}
	Logger    *zap.Logger // default nop

	ElectionTicks  int // default 10
	HeartbeatTicks int // default 1
	// SnapshotCount: applied entries between raft snapshots (default 10000).
	SnapshotCount uint64
	// SnapshotCatchUpEntries: entries kept in the log behind a snapshot so
	// slow followers catch up without a snapshot (default 5000).
	SnapshotCatchUpEntries uint64
	// MaxRequestBytes bounds an encoded request (default 1.5 MiB).
	MaxRequestBytes int

	BackendBatchInterval time.Duration // default mvcc's
	BackendBatchLimit    int           // default mvcc's
	BackendNoSync        bool          // bbolt without fsync (the simulator, --unsafe-no-fsync)
	BackendMlock         bool          // lock the database's pages in RAM (--memory-mlock)
	CompactionBatchLimit int           // revisions removed per compaction step; default mvcc's
	CompactionPace       time.Duration // what one compaction batch stands for (mvcc.Config.CompactionPace); default mvcc's
	// ForceNewCluster, on a restart, makes the member the only one of its
	// cluster: uncommitted entries are dropped and committed conf changes
	// removing every other member are appended to its log (etcd's
	// --force-new-cluster). The data stays.
	ForceNewCluster bool
	// DisablePreVote turns raft's pre-vote off (etcd's --pre-vote=false).
	DisablePreVote bool
	// NoInitialElectionTickAdvance keeps a one-voter cluster from
	// fast-forwarding its election ticks at start (etcd's
	// --initial-election-tick-advance=false).
	NoInitialElectionTickAdvance bool
	WatchLimits                  mvcc.WatchLimits // memory bounds of watching; zero fields take mvcc's defaults
	// AuthTokens learns the simple auth tokens assigned as Authenticate
	// requests are applied, and when they stop being valid (package
	// auth); nil ignores them.
	AuthTokens auth.TokenSink

	// TickInterval is the duration of one raft tick (etcd's
	// --heartbeat-interval), default 100ms. The core never waits on it: it
	// sizes leases (minimum TTL, the extension a new leader grants) and the
	// revoke rate per tick.
	TickInterval time.Duration
	// LeaseCheckpointInterval is how often the leader checkpoints leases'
	// remaining TTLs (default lease's).
	LeaseCheckpointInterval time.Duration

	// Bugs plants known bugs (test builds with the cairnbugs tag only).
	Bugs Bugs
	// OnApply, if set, is called with every entry the core applies to its
	// state machine, in log order (the simulator checks that every member
	// applies the same entry at each index).
	OnApply func(e *raftpb.Entry)
	// ObserveWALSave, if set, receives how long each WAL save took (its
	// write and its one fsync), measured with Clock.
	ObserveWALSave func(d time.Duration)
	// ObserveWALWrite, if set, receives each write to the WAL's segment
	// files (records buffered by a save, before its fsync): the bytes
	// written and how long the write took, measured with Clock.
	ObserveWALWrite func(n int, d time.Duration)
	// ObserveLeaseExpired, if set, is called on the leader for each lease
	// it revoked because it expired, once the revoke applied (etcd's
	// etcd_debugging_server_lease_expired_total).
	ObserveLeaseExpired func()
	// ObserveSlowReadIndex, if set, is called for each read index round
	// raft did not answer within an election timeout (it is asked again)
	// and each answer that came too late, to a round asked again since
	// (etcd's etcd_server_slow_read_indexes_total).
	ObserveSlowReadIndex func()
	// ObserveSnapshotApply, if set, is called with true when the core
	// starts installing a snapshot from the leader and with false when it
	// is done (etcd's etcd_server_snapshot_apply_in_progress_total).
	ObserveSnapshotApply func(inProgress bool)
	// ObserveApply, if set, is called after each request of a normal entry
	// is applied, with the request, its result and how long the apply
	// took by Clock (the shell's apply metrics). It must not keep r or
	// res, nor call into the Core.
	ObserveApply func(r *pb.InternalRaftRequest, res Result, d time.Duration)
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.Transport == nil {
		return cfg, errors.New("node: Config.Transport is required")
	}
	if cfg.DataDir == "" {
		return cfg, errors.New("node: Config.DataDir is required")
	}
	if cfg.ID == 0 {
		return cfg, errors.New("node: Config.ID is required")
	}
	if err := cfg.Bugs.check(); err != nil {
		return cfg, err
	}
	if cfg.WALDir == "" {
		cfg.WALDir = WALDir(cfg.DataDir)
	}
	if cfg.WALFS == nil {
		cfg.WALFS = vfs.OS()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ElectionTicks == 0 {
		cfg.ElectionTicks = DefaultElectionTicks
	}
	if cfg.HeartbeatTicks == 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.SnapshotCount == 0 {
		cfg.SnapshotCount = 10000
	}
	if cfg.SnapshotCatchUpEntries == 0 {
		cfg.SnapshotCatchUpEntries = 5000
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = 1536 * 1024
	}
	return cfg, nil
}

// Transport sends the core's raft messages to its peers. Package transport
// states the contract (transport.Transport) and implements it; the core
// declares what it needs here so that it does not depend on the network
// code. Send must never block.
type Transport interface {
	Send(msgs []*raftpb.Message)
	// SendSnapshot sends the MsgSnap m, whose database is db rather than
	// m.Snapshot.Data, off the core's goroutine. The transport owns db:
	// it writes it out (as often as it retries) and closes it, and reports
	// the outcome through the Handler's ReportSnapshot.
	SendSnapshot(m *raftpb.Message, db SnapshotBody)
	AddPeer(id uint64, urls []string)
	RemovePeer(id uint64)
	UpdatePeer(id uint64, urls []string)
	Close() error
}

// SnapshotBody is the database a snapshot carries: a consistent view of it
// (mvcc.DBSnapshot) that can be written out without holding up the member.
// It is an alias of an unnamed interface, so that transport.SnapshotBody,
// the same alias, is the same type and transport.HTTP satisfies Transport.
type SnapshotBody = interface {
	Size() int64
	WriteTo(w io.Writer) (int64, error)
	Close() error
}

// Defaults of Config, etcd's: a 100 ms tick (--heartbeat-interval) and an
// election timeout of 10 ticks (--election-timeout 1000 ms).
const (
	DefaultTickInterval  = 100 * time.Millisecond
	DefaultElectionTicks = 10
)

// WALDir is where a member keeps its WAL inside dataDir unless told
// otherwise (etcd's --wal-dir).
func WALDir(dataDir string) string { return filepath.Join(dataDir, "member", "wal") }

// DBPath is where a member keeps its bbolt database inside dataDir.
func DBPath(dataDir string) string { return filepath.Join(dataDir, "member", "snap", "db") }
