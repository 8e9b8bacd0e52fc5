package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/transport"
	"github.com/cairnkv/cairn/vfs"
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
	// ErrProposalDropped: raft dropped the proposal (no leader known, or a leadership transfer is in progress).
	ErrProposalDropped = raft.ErrProposalDropped
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

	Transport transport.Transport // required
	Clock     clock.Clock         // default clock.Real{}
	Logger    *zap.Logger         // default nop

	ElectionTicks  int // default 10
	HeartbeatTicks int // default 1
	// SnapshotCount: applied entries between raft snapshots (default 10000).
	SnapshotCount uint64
	// SnapshotCatchUpEntries: entries kept in the log behind a snapshot so
	// slow followers catch up without a snapshot (default 5000).
	SnapshotCatchUpEntries uint64
	// MaxRequestBytes bounds an encoded request (default 1.5 MiB).
	MaxRequestBytes int

	BackendBatchInterval time.Duration    // default mvcc's
	BackendBatchLimit    int              // default mvcc's
	BackendNoSync        bool             // bbolt without fsync (simulator only)
	WatchLimits          mvcc.WatchLimits // memory bounds of watching; zero fields take mvcc's defaults

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
		cfg.WALDir = filepath.Join(cfg.DataDir, "member", "wal")
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
		cfg.ElectionTicks = 10
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
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = 1536 * 1024
	}
	return cfg, nil
}

// DBPath is where a member keeps its bbolt database inside dataDir.
func DBPath(dataDir string) string { return filepath.Join(dataDir, "member", "snap", "db") }

// Result is the outcome of an applied proposal.
type Result struct {
	// Index is the raft index the request was applied at.
	Index uint64
	// Resp is the response: *pb.PutResponse, *pb.DeleteRangeResponse,
	// *pb.TxnResponse, *pb.RangeResponse, *pb.CompactionResponse, ... with a
	// filled header; nil for requests that have none (member changes).
	Resp proto.Message
	// Err is the client-facing error (an mvcc sentinel such as mvcc.ErrCompacted),
	// or ErrStopped.
	Err error
}

// walMetadata is stored once at the head of the WAL.
type walMetadata struct {
	MemberID  uint64 `json:"memberID"`
	ClusterID uint64 `json:"clusterID"`
}

// Core is Cairn's deterministic replicated state machine: a raft RawNode, its
// WAL, the MVCC store and the apply logic. It starts no goroutine, reads time
// only from Config.Clock and sends only through Config.Transport; it is not
// safe for concurrent use: one goroutine (server.Server's loop, or the
// simulator) calls all its methods. Reads of the MVCC store (KV()) may run
// concurrently from other goroutines.
type Core struct {
	cfg     Config
	lg      *zap.Logger
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	wal     *wal.WAL
	kv      *mvcc.Store
	lessor  *lease.Lessor
	alarms  map[alarmKey]bool
	tr      transport.Transport

	id, clusterID uint64
	members       map[uint64]Member
	confState     *raftpb.ConfState
	// alone: this member started as the only voter and its election ticks
	// are still to be fast-forwarded (see advanceTicksIfAlone).
	alone bool
	// readsLostLeader: a leader became known; unanswered read rounds are
	// asked again after this Ready.
	readsLostLeader bool

	applied   uint64 // last applied raft index
	snapIndex uint64 // index of the newest raft snapshot
	term      uint64
	committed uint64
	lead      uint64
	role      raft.StateType

	idGen idGenerator
	waits map[uint64]func(Result)
	reads readQueue
	// compactWaits are physical compactions' callers, answered when the
	// MVCC store's physical compaction completes.
	compactWaits []func()
	ticks        uint64
	// snapshotsInstalled counts snapshots received from a leader.
	snapshotsInstalled uint64

	fatal error
	// removed is set when this member's own removal is applied.
	removed bool
}

// NewCore opens a member's state: it restarts from the WAL and database if a
// WAL exists in cfg.WALDir, and otherwise bootstraps a new cluster from
// cfg.InitialMembers.
func NewCore(c Config) (*Core, error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	core := &Core{
		cfg:     cfg,
		lg:      cfg.Logger.With(zap.String("member", cfg.Name), zap.String("member-id", fmt.Sprintf("%x", cfg.ID))),
		storage: raft.NewMemoryStorage(),
		tr:      cfg.Transport,
		id:      cfg.ID,
		members: map[uint64]Member{},
		waits:   map[uint64]func(Result){},
		idGen:   newIDGenerator(cfg.ID, cfg.Clock.Now().UnixMilli()),
		// ReadIndex contexts start from the clock, so a leader's answer to a
		// read an earlier incarnation asked for is never taken for a new one.
		reads: readQueue{nextCtx: uint64(cfg.Clock.Now().UnixNano())},
		role:  raft.StateFollower,
	}
	if err := os.MkdirAll(filepath.Dir(DBPath(cfg.DataDir)), 0o700); err != nil {
		return nil, fmt.Errorf("node: creating data dir: %w", err)
	}
	walCfg := wal.Config{FS: cfg.WALFS, Dir: cfg.WALDir, SegmentSize: cfg.WALSegmentSize, Logger: cfg.Logger}
	switch {
	case wal.Exist(cfg.WALFS, cfg.WALDir):
		err = core.restart(walCfg)
	case cfg.Join:
		err = core.join(walCfg)
	default:
		err = core.bootstrap(walCfg)
	}
	if err != nil {
		core.closeFiles()
		return nil, err
	}
	voters := core.rn.Status().Config.Voters.IDs()
	_, self := voters[core.id]
	core.alone = self && len(voters) == 1
	return core, nil
}

// advanceTicksIfAlone fast-forwards a member that is the only voter to one
// tick before its election timeout, as etcd does for a single-member
// cluster, so it leads within a tick or so of starting instead of after a
// whole election timeout that nobody else could cut short. It waits until
// every committed entry is applied: raft refuses to campaign while a
// committed configuration change (a new cluster's first entries) is not.
func (c *Core) advanceTicksIfAlone() {
	if !c.alone || c.applied < c.committed {
		return
	}
	c.alone = false // once
	for i := 1; i < c.cfg.ElectionTicks; i++ {
		c.rn.Tick()
	}
}

func (c *Core) openKV() error {
	kv, err := mvcc.Open(mvcc.Config{
		Path:          DBPath(c.cfg.DataDir),
		BatchInterval: c.cfg.BackendBatchInterval,
		BatchLimit:    c.cfg.BackendBatchLimit,
		Clock:         c.cfg.Clock,
		NoSync:        c.cfg.BackendNoSync,
		Logger:        c.cfg.Logger,
		Watch:         c.cfg.WatchLimits,
	})
	if err != nil {
		return fmt.Errorf("node: opening database: %w", err)
	}
	c.kv = kv
	if err := c.loadAlarms(); err != nil {
		return err
	}
	return c.openLessor()
}

func (c *Core) raftConfig(applied uint64) *raft.Config {
	return &raft.Config{
		ID:                        c.id,
		ElectionTick:              c.cfg.ElectionTicks,
		HeartbeatTick:             c.cfg.HeartbeatTicks,
		Storage:                   c.storage,
		Applied:                   applied,
		MaxSizePerMsg:             1 << 20,
		MaxCommittedSizePerReady:  8 << 20,
		MaxUncommittedEntriesSize: 1 << 30,
		MaxInflightMsgs:           256,
		CheckQuorum:               true,
		StepDownOnRemoval:         true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		Logger:                    newRaftLogger(c.cfg.Logger),
	}
}

func (c *Core) bootstrap(walCfg wal.Config) error {
	if len(c.cfg.InitialMembers) == 0 {
		return errors.New("node: no WAL in the data dir and no initial members to bootstrap a cluster from")
	}
	ids := make([]uint64, 0, len(c.cfg.InitialMembers))
	found := false
	for _, m := range c.cfg.InitialMembers {
		ids = append(ids, m.ID)
		if m.ID == c.id {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("node: member %x (%s) is not in the initial cluster", c.id, c.cfg.Name)
	}
	c.clusterID = c.cfg.ClusterID
	if c.clusterID == 0 {
		c.clusterID = ClusterID(ids, c.cfg.ClusterToken)
	}
	rn, err := c.startFresh(walCfg, "bootstrap")
	if err != nil {
		return err
	}
	peers := make([]raft.Peer, 0, len(c.cfg.InitialMembers))
	for _, m := range sortedMembers(membersByID(c.cfg.InitialMembers)) {
		ctx, _ := json.Marshal(confChangeContext{Member: m})
		peers = append(peers, raft.Peer{ID: m.ID, Context: ctx})
	}
	if err := rn.Bootstrap(peers); err != nil {
		return fmt.Errorf("node: bootstrapping raft: %w", err)
	}
	c.rn = rn
	c.lg.Info("bootstrapped new cluster member",
		zap.String("cluster-id", fmt.Sprintf("%x", c.clusterID)), zap.Int("members", len(peers)))
	return nil
}

// startFresh opens an empty database, creates the WAL and a raft node with
// an empty log, for a member that has never run: one bootstrapping a new
// cluster or one joining (what names the refusal).
func (c *Core) startFresh(walCfg wal.Config, what string) (*raft.RawNode, error) {
	if err := c.openKV(); err != nil {
		return nil, err
	}
	if ci, _ := c.kv.ConsistentIndex(); ci != 0 {
		return nil, fmt.Errorf("node: database %s has applied entries (consistent index %d) but there is no WAL in %s: refusing to %s over it", DBPath(c.cfg.DataDir), ci, c.cfg.WALDir, what)
	}
	meta, _ := json.Marshal(walMetadata{MemberID: c.id, ClusterID: c.clusterID})
	w, err := wal.Create(walCfg, meta)
	if err != nil {
		return nil, fmt.Errorf("node: creating WAL: %w", err)
	}
	c.wal = w
	rn, err := raft.NewRawNode(c.raftConfig(0))
	if err != nil {
		return nil, fmt.Errorf("node: starting raft: %w", err)
	}
	return rn, nil
}

// join starts a member added to a running cluster: empty log, no
// bootstrap entries; the leader's appends (or a snapshot) bring the log,
// the membership and the data.
func (c *Core) join(walCfg wal.Config) error {
	if c.cfg.ClusterID == 0 {
		return errors.New("node: joining a cluster needs its ClusterID")
	}
	c.clusterID = c.cfg.ClusterID
	rn, err := c.startFresh(walCfg, "join")
	if err != nil {
		return err
	}
	c.rn = rn
	for _, m := range sortedMembers(membersByID(c.cfg.InitialMembers)) {
		if m.ID != c.id {
			c.tr.AddPeer(m.ID, m.PeerURLs) // so this member can answer before it learns the membership
		}
	}
	c.lg.Info("joining cluster", zap.String("cluster-id", fmt.Sprintf("%x", c.clusterID)))
	return nil
}

func (c *Core) restart(walCfg wal.Config) error {
	w, err := wal.Open(walCfg)
	if err != nil {
		return fmt.Errorf("node: opening WAL: %w", err)
	}
	c.wal = w
	metaBytes, hs, snapMeta, ents, err := w.ReadAll()
	if err != nil {
		return fmt.Errorf("node: reading WAL: %w", err)
	}
	var meta walMetadata
	if err := json.Unmarshal(metaBytes, &meta); err != nil {
		return fmt.Errorf("node: WAL metadata in %s: %w", c.cfg.WALDir, err)
	}
	if meta.MemberID != c.id {
		return fmt.Errorf("node: the WAL in %s belongs to member %x, not %x (%s)", c.cfg.WALDir, meta.MemberID, c.id, c.cfg.Name)
	}
	if c.cfg.ClusterID != 0 && meta.ClusterID != c.cfg.ClusterID {
		return fmt.Errorf("node: the data dir %s belongs to cluster %x, not %x", c.cfg.DataDir, meta.ClusterID, c.cfg.ClusterID)
	}
	c.clusterID = meta.ClusterID
	if err := c.openKV(); err != nil {
		return err
	}
	ci, _ := c.kv.ConsistentIndex()
	if snapMeta != nil && ci < snapMeta.GetIndex() {
		// A crash between a received snapshot's WAL marker and the swap of
		// its database: finish the swap.
		if staged := snapDBPath(c.cfg.DataDir, snapMeta.GetIndex()); fileExists(staged) {
			c.lg.Warn("finishing the install of a snapshot interrupted by a crash", zap.Uint64("index", snapMeta.GetIndex()))
			if err := c.replaceDBFrom(staged); err != nil {
				return err
			}
			if err := c.loadAlarms(); err != nil {
				return err
			}
			if err := c.openLessor(); err != nil {
				return err
			}
			ci, _ = c.kv.ConsistentIndex()
		}
	}
	if snapMeta != nil && snapMeta.GetIndex() > 0 {
		if ci < snapMeta.GetIndex() {
			return fmt.Errorf("node: database consistent index %d is behind the WAL snapshot at %d: the database file is older than the WAL", ci, snapMeta.GetIndex())
		}
		if err := c.storage.ApplySnapshot(&raftpb.Snapshot{Metadata: snapMeta}); err != nil {
			return fmt.Errorf("node: restoring raft snapshot: %w", err)
		}
		c.snapIndex = snapMeta.GetIndex()
		c.confState = snapMeta.GetConfState()
	}
	if hs != nil {
		if snapMeta != nil && hs.GetCommit() < snapMeta.GetIndex() {
			// A crash between a received snapshot's marker and the next
			// hard state: a snapshot is committed by definition.
			idx := snapMeta.GetIndex()
			hs.Commit = &idx
		}
		if err := c.storage.SetHardState(hs); err != nil {
			return fmt.Errorf("node: restoring hard state: %w", err)
		}
		c.term = hs.GetTerm()
		c.committed = hs.GetCommit()
	}
	if err := c.storage.Append(ents); err != nil {
		return fmt.Errorf("node: restoring raft log: %w", err)
	}
	if last, _ := c.storage.LastIndex(); ci > last {
		return fmt.Errorf("node: database consistent index %d is ahead of the raft log (last index %d): the WAL lost acknowledged entries", ci, last)
	}
	if err := c.loadMembers(); err != nil {
		return err
	}
	c.applied = c.snapIndex
	rn, err := raft.NewRawNode(c.raftConfig(c.snapIndex))
	if err != nil {
		return fmt.Errorf("node: restarting raft: %w", err)
	}
	c.rn = rn
	c.lg.Info("restarted member",
		zap.String("cluster-id", fmt.Sprintf("%x", c.clusterID)),
		zap.Uint64("snapshot-index", c.snapIndex), zap.Uint64("consistent-index", ci),
		zap.Int("wal-entries", len(ents)), zap.Uint64("commit", hs.GetCommit()))
	return nil
}

// loadMembers rebuilds the member list from the database and tells the
// transport about every peer.
func (c *Core) loadMembers() error {
	ms := map[uint64]Member{}
	err := c.kv.AuxForEach(membersBucket, func(_, v []byte) error {
		m, err := decodeMember(v)
		if err != nil {
			return err
		}
		ms[m.ID] = m
		return nil
	})
	if err != nil {
		return fmt.Errorf("node: loading members: %w", err)
	}
	for _, m := range sortedMembers(c.members) {
		if _, ok := ms[m.ID]; !ok && m.ID != c.id {
			c.tr.RemovePeer(m.ID)
		}
	}
	c.members = ms
	for _, m := range sortedMembers(ms) {
		if m.ID != c.id {
			c.tr.AddPeer(m.ID, m.PeerURLs)
		}
	}
	return nil
}

func membersByID(ms []Member) map[uint64]Member {
	out := make(map[uint64]Member, len(ms))
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

// ID is this member's ID.
func (c *Core) ID() uint64 { return c.id }

// ClusterID is the cluster's ID.
func (c *Core) ClusterID() uint64 { return c.clusterID }

// KV is the member's MVCC store. Reads are safe from any goroutine; writes
// happen only through applied raft entries.
func (c *Core) KV() *mvcc.Store { return c.kv }

// Applied is the last applied raft index.
func (c *Core) Applied() uint64 { return c.applied }

// SnapshotsInstalled counts the snapshots this member has installed from a
// leader since it started.
func (c *Core) SnapshotsInstalled() uint64 { return c.snapshotsInstalled }

// Committed is the raft commit index as this member knows it.
func (c *Core) Committed() uint64 { return c.committed }

// Leader is the current leader's ID as this member knows it (0 = none).
func (c *Core) Leader() uint64 { return c.lead }

// IsLeader tells whether this member is the raft leader.
func (c *Core) IsLeader() bool { return c.role == raft.StateLeader }

// Term is the current raft term.
func (c *Core) Term() uint64 { return c.term }

// Status is raft's view of this member.
func (c *Core) Status() raft.Status { return c.rn.Status() }

// IsLearner reports whether this member is a learner of the cluster it
// knows; false while it does not know itself yet.
func (c *Core) IsLearner() bool { return c.members[c.id].IsLearner }

// Members returns the cluster's members ordered by ID.
func (c *Core) Members() []Member { return sortedMembers(c.members) }

// Err is the fatal error that stopped the core, if any.
func (c *Core) Err() error { return c.fatal }

// Header returns a response header at revision rev.
func (c *Core) Header(rev int64) *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: c.clusterID, MemberId: c.id, Revision: rev, RaftTerm: c.term}
}

// Tick advances raft's logical clock by one tick.
func (c *Core) Tick() {
	if c.fatal != nil {
		return
	}
	c.ticks++
	c.rn.Tick()
	c.reads.retry(c)
	c.leaseDuties()
}

// Step delivers a message from a peer.
func (c *Core) Step(m *raftpb.Message) error {
	if c.fatal != nil {
		return c.fatal
	}
	if m.GetType() == raftpb.MsgSnap && m.GetSnapshot() != nil {
		c.lg.Info("received snapshot", zap.String("from", fmt.Sprintf("%x", m.GetFrom())),
			zap.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()), zap.Int("bytes", len(m.GetSnapshot().GetData())))
	}
	return c.rn.Step(m)
}

// ReportUnreachable tells raft that a message to id was lost.
func (c *Core) ReportUnreachable(id uint64) { c.rn.ReportUnreachable(id) }

// ReportSnapshot tells raft how sending a snapshot to id ended.
func (c *Core) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	c.rn.ReportSnapshot(id, status)
}

// Campaign makes this member start an election now.
func (c *Core) Campaign() error { return c.rn.Campaign() }

// TransferLeadership asks the leader to hand leadership to target.
func (c *Core) TransferLeadership(target uint64) { c.rn.TransferLeader(target) }

// Propose submits a request to be replicated. done is called exactly once,
// from a later Process call, with the apply result, unless Forget(id) is
// called first or raft drops the entry (leader change): callers time out.
// The request's ID is assigned here and returned.
func (c *Core) Propose(r *pb.InternalRaftRequest, done func(Result)) (uint64, error) {
	if c.fatal != nil {
		return 0, ErrStopped
	}
	id := c.idGen.next()
	r.ID = id
	data, err := encodeRequest(r)
	if err != nil {
		return 0, err
	}
	if len(data) > c.cfg.MaxRequestBytes {
		return 0, ErrRequestTooLarge
	}
	if err := c.rn.Propose(data); err != nil {
		return 0, err
	}
	if done != nil {
		c.waits[id] = done
	}
	return id, nil
}

// ProposeConfChange proposes a membership change: adding a voter or a
// learner (m describes the member), promoting a learner (an add of an
// existing learner), removing or updating a member. done is called once the
// change is applied, as for Propose.
func (c *Core) ProposeConfChange(cc *raftpb.ConfChangeV2, m Member, done func(Result)) (uint64, error) {
	if c.fatal != nil {
		return 0, ErrStopped
	}
	id := c.idGen.next()
	ctx, err := json.Marshal(confChangeContext{Member: m, RequestID: id})
	if err != nil {
		return 0, fmt.Errorf("node: encoding conf change context: %w", err)
	}
	cc = proto.Clone(cc).(*raftpb.ConfChangeV2)
	cc.Context = ctx
	if err := c.rn.ProposeConfChange(cc); err != nil {
		return 0, err
	}
	if done != nil {
		c.waits[id] = done
	}
	return id, nil
}

// Forget drops the waiter of request id (its caller gave up).
func (c *Core) Forget(id uint64) { delete(c.waits, id) }

// ReadIndex queues a linearizable read: done(nil) is called, from a later
// Process or Tick, once this member has applied everything committed at the
// time of the call, so a read of KV() then is linearizable. Reads queued
// together share one raft ReadIndex round.
func (c *Core) ReadIndex(done func(error)) {
	if c.fatal != nil {
		done(ErrStopped)
		return
	}
	if c.cfg.Bugs.skipReadIndex() {
		done(nil)
		return
	}
	c.reads.pending = append(c.reads.pending, done)
}

// HasReady tells whether Process has work to do.
func (c *Core) HasReady() bool {
	return c.fatal == nil && (c.rn.HasReady() || c.reads.canIssue() || len(c.compactWaits) > 0)
}

// Process handles everything raft has ready: it persists entries and hard
// state to the WAL with one fsync, sends messages, installs a snapshot,
// applies committed entries, answers waiters and reads, and takes a raft
// snapshot when due. A returned error is fatal: the core stops.
func (c *Core) Process() error {
	if c.fatal != nil {
		return c.fatal
	}
	if err := c.process(); err != nil {
		c.fail(err)
		return err
	}
	c.advanceTicksIfAlone()
	if c.readsLostLeader {
		c.readsLostLeader = false
		c.reads.reissue(c)
	}
	return nil
}

func (c *Core) process() error {
	c.reads.issue(c)
	for c.rn.HasReady() {
		rd := c.rn.Ready()
		if rd.SoftState != nil {
			c.setSoftState(rd.SoftState)
		}
		if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
			c.term = rd.HardState.GetTerm()
			c.committed = rd.HardState.GetCommit()
		}
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := c.installSnapshot(rd.Snapshot); err != nil {
				return err
			}
		}
		start := c.cfg.Clock.Now()
		if err := c.wal.Save(rd.HardState, rd.Entries); err != nil {
			return fmt.Errorf("node: saving to WAL: %w", err)
		}
		if c.cfg.ObserveWALSave != nil && (len(rd.Entries) > 0 || (rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState))) {
			c.cfg.ObserveWALSave(c.cfg.Clock.Now().Sub(start))
		}
		if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
			if err := c.storage.SetHardState(rd.HardState); err != nil {
				return fmt.Errorf("node: raft storage: %w", err)
			}
		}
		if err := c.storage.Append(rd.Entries); err != nil {
			return fmt.Errorf("node: raft storage: %w", err)
		}
		if err := c.send(rd.Messages); err != nil {
			return err
		}
		for _, rs := range rd.ReadStates {
			c.reads.resolve(rs)
		}
		if err := c.applyEntries(rd.CommittedEntries); err != nil {
			return err
		}
		if c.removed {
			c.rn.Advance(rd)
			return ErrRemoved
		}
		c.rn.Advance(rd)
		c.reads.answer(c.applied)
		if err := c.maybeSnapshot(); err != nil {
			return err
		}
	}
	c.reads.issue(c)
	if c.kv.CompactRev() > 0 || len(c.compactWaits) > 0 {
		done, err := c.kv.CompactStep()
		if err != nil {
			return fmt.Errorf("node: compaction: %w", err)
		}
		if done {
			waits := c.compactWaits
			c.compactWaits = nil
			for _, w := range waits {
				w()
			}
		}
	}
	if err := c.kv.MaybeCommit(); err != nil {
		return fmt.Errorf("node: committing database batch: %w", err)
	}
	return nil
}

func (c *Core) setSoftState(ss *raft.SoftState) {
	if ss.Lead != c.lead {
		c.lg.Info("leader changed", zap.String("leader", fmt.Sprintf("%x", ss.Lead)), zap.Uint64("term", c.rn.BasicStatus().HardState.GetTerm()))
		// Raft drops a ReadIndex asked while no leader was known: ask the
		// new one now rather than when the retry timer comes round.
		c.readsLostLeader = ss.Lead != 0
	}
	c.lead = ss.Lead
	if ss.RaftState == raft.StateLeader && c.role != raft.StateLeader {
		c.lessor.Promote(c.electionTimeout())
	} else if ss.RaftState != raft.StateLeader && c.role == raft.StateLeader && !c.cfg.Bugs.followersExpireLeases() {
		c.lessor.Demote()
	}
	c.role = ss.RaftState
}

// send hands messages to the transport, attaching the database to snapshots.
func (c *Core) send(msgs []*raftpb.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	out, copied := msgs, false
	for i, m := range msgs {
		if m.GetType() != raftpb.MsgSnap {
			continue
		}
		var buf bytes.Buffer
		n, err := c.kv.Snapshot(&buf)
		if err != nil {
			return fmt.Errorf("node: snapshotting database for %x: %w", m.GetTo(), err)
		}
		if !copied { // never mutate raft's messages: they may share the storage's snapshot
			out, copied = append([]*raftpb.Message(nil), msgs...), true
		}
		// The database holds everything applied, so the snapshot is taken
		// at the applied index with the membership as of now, not at
		// raft's last snapshot: that one may predate the recipient's own
		// addition, and a member missing from a snapshot's ConfState
		// refuses it.
		meta := proto.Clone(m.GetSnapshot().GetMetadata()).(*raftpb.SnapshotMetadata)
		if term, err := c.storage.Term(c.applied); err == nil && c.applied > meta.GetIndex() && c.confState != nil {
			idx := c.applied
			meta = &raftpb.SnapshotMetadata{Index: &idx, Term: &term, ConfState: proto.Clone(c.confState).(*raftpb.ConfState)}
		}
		cp := proto.Clone(m).(*raftpb.Message)
		cp.Snapshot = &raftpb.Snapshot{Metadata: meta, Data: buf.Bytes()}
		out[i] = cp
		c.lg.Info("sending snapshot", zap.String("to", fmt.Sprintf("%x", m.GetTo())),
			zap.Uint64("index", meta.GetIndex()), zap.Int64("bytes", n))
	}
	c.tr.Send(out)
	return nil
}

// installSnapshot replaces the database with a leader's snapshot. The
// database goes first and durably, then the WAL's snapshot marker: a crash in
// between leaves a database ahead of the log, which replay tolerates.
func (c *Core) installSnapshot(snap *raftpb.Snapshot) error {
	meta := snap.GetMetadata()
	c.lg.Info("installing snapshot", zap.Uint64("index", meta.GetIndex()), zap.Uint64("term", meta.GetTerm()), zap.Int("bytes", len(snap.GetData())))
	// Crash-safe in three steps, as etcd: the database is saved beside the
	// live one and synced, then the WAL marker, then the swap. A restart
	// between marker and swap finishes the swap from the saved file.
	staged := snapDBPath(c.cfg.DataDir, meta.GetIndex())
	if err := writeFileSync(staged, snap.GetData()); err != nil {
		return fmt.Errorf("node: saving snapshot database: %w", err)
	}
	if err := c.wal.SaveSnapshot(meta); err != nil {
		return fmt.Errorf("node: saving snapshot marker: %w", err)
	}
	if err := c.replaceDBFrom(staged); err != nil {
		return err
	}
	if ci, _ := c.kv.ConsistentIndex(); ci < meta.GetIndex() {
		return fmt.Errorf("node: snapshot database at consistent index %d is behind its raft index %d", ci, meta.GetIndex())
	}
	if err := c.storage.ApplySnapshot(&raftpb.Snapshot{Metadata: meta}); err != nil {
		return fmt.Errorf("node: raft storage: %w", err)
	}
	c.confState = meta.GetConfState()
	c.applied = meta.GetIndex()
	c.snapIndex = meta.GetIndex()
	c.snapshotsInstalled++
	if err := c.loadMembers(); err != nil {
		return err
	}
	if err := c.loadAlarms(); err != nil {
		return err
	}
	if err := c.openLessor(); err != nil {
		return err
	}
	// Waiters of entries the snapshot covers will never see their apply.
	return nil
}

// maybeSnapshot takes a raft snapshot every SnapshotCount applied entries and
// compacts the log behind it.
func (c *Core) maybeSnapshot() error {
	if c.applied-c.snapIndex < c.cfg.SnapshotCount || c.confState == nil {
		return nil
	}
	// The database must be durable up to the snapshot before the WAL lets go of older entries.
	if err := c.kv.Commit(); err != nil {
		return fmt.Errorf("node: committing database for snapshot: %w", err)
	}
	snap, err := c.storage.CreateSnapshot(c.applied, c.confState, nil)
	if err != nil {
		return fmt.Errorf("node: creating raft snapshot at %d: %w", c.applied, err)
	}
	if err := c.wal.SaveSnapshot(snap.GetMetadata()); err != nil {
		return fmt.Errorf("node: saving snapshot marker: %w", err)
	}
	c.snapIndex = c.applied
	if c.applied > c.cfg.SnapshotCatchUpEntries {
		compactTo := c.applied - c.cfg.SnapshotCatchUpEntries
		if first, _ := c.storage.FirstIndex(); compactTo > first {
			if err := c.storage.Compact(compactTo); err != nil && !errors.Is(err, raft.ErrCompacted) {
				return fmt.Errorf("node: compacting raft log: %w", err)
			}
		}
	}
	if err := c.wal.ReleaseTo(c.snapIndex); err != nil {
		return fmt.Errorf("node: releasing WAL segments: %w", err)
	}
	c.lg.Info("took raft snapshot", zap.Uint64("index", c.snapIndex))
	return nil
}

func (c *Core) fail(err error) {
	if c.fatal != nil {
		return
	}
	c.fatal = err
	if !errors.Is(err, ErrStopped) {
		c.lg.Error("member stopped on a fatal error", zap.Error(err))
	}
	ids := make([]uint64, 0, len(c.waits))
	for id := range c.waits {
		ids = append(ids, id)
	}
	slices.Sort(ids) // deterministic order for the simulator
	for _, id := range ids {
		w := c.waits[id]
		delete(c.waits, id)
		w(Result{Err: ErrStopped})
	}
	c.reads.failAll(ErrStopped)
}

// Close stops the core: pending waiters and reads get ErrStopped, the
// database's open batch is committed and files are closed.
func (c *Core) Close() error {
	c.fail(ErrStopped)
	return c.closeFiles()
}

// Crash stops the core as a power cut would (simulator): the database's open
// batch is abandoned, the WAL is closed without further writes.
func (c *Core) Crash() {
	c.fail(ErrStopped)
	if c.kv != nil {
		_ = c.kv.Abandon()
		c.kv = nil
	}
	if c.wal != nil {
		_ = c.wal.Close()
		c.wal = nil
	}
}

func (c *Core) closeFiles() error {
	var errs []error
	if c.kv != nil {
		errs = append(errs, c.kv.Close())
		c.kv = nil
	}
	if c.wal != nil {
		errs = append(errs, c.wal.Close())
		c.wal = nil
	}
	return errors.Join(errs...)
}

// snapDBPath is where a received snapshot's database waits for its swap.
func snapDBPath(dataDir string, index uint64) string {
	return filepath.Join(dataDir, "member", "snap", fmt.Sprintf("%016x.snap.db", index))
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeFileSync writes data to path durably (file and directory synced).
func writeFileSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// replaceDBFrom swaps the database for the one saved at path, then
// removes the file.
func (c *Core) replaceDBFrom(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("node: opening snapshot database: %w", err)
	}
	err = c.kv.ReplaceDB(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("node: installing snapshot database: %w", err)
	}
	if err := os.Remove(path); err != nil {
		c.lg.Warn("removing an installed snapshot database", zap.String("path", path), zap.Error(err))
	}
	return nil
}
