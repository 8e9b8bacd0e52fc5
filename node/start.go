package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/node/wal/etcdwal"
	"github.com/cairnkv/cairn/vfs"
)

// walMetadata is stored once at the head of the WAL.
type walMetadata struct {
	MemberID  uint64 `json:"memberID"`
	ClusterID uint64 `json:"clusterID"`
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
		cfg:        cfg,
		lg:         cfg.Logger.With(zap.String("member", cfg.Name), zap.String("member-id", fmt.Sprintf("%x", cfg.ID))),
		storage:    raft.NewMemoryStorage(),
		tr:         cfg.Transport,
		id:         cfg.ID,
		members:    map[uint64]Member{},
		removedIDs: map[uint64]bool{},
		waits:      map[uint64]func(Result){},
		idGen:      newIDGenerator(cfg.ID, cfg.Clock.Now().UnixMilli()),
		// ReadIndex contexts start from the clock, so a leader's answer to a
		// read an earlier incarnation asked for is never taken for a new one.
		reads: readQueue{nextCtx: uint64(cfg.Clock.Now().UnixNano()), slow: cfg.ObserveSlowReadIndex},
		role:  raft.StateFollower,
	}
	// Synced: a power cut must not take the new data dir's member/ (and the
	// WAL or database in it) after they were synced.
	if err := vfs.MkdirAllSynced(vfs.OS(), filepath.Dir(DBPath(cfg.DataDir)), 0o700); err != nil {
		return nil, fmt.Errorf("node: creating data dir: %w", err)
	}
	walCfg := wal.Config{FS: cfg.Bugs.walFS(cfg.WALFS, cfg.WALDir), Dir: cfg.WALDir, SegmentSize: cfg.WALSegmentSize, Logger: cfg.Logger,
		ObserveWrite: cfg.ObserveWALWrite, Clock: cfg.Clock}
	if err := core.importEtcdWAL(); err != nil {
		core.closeFiles()
		return nil, err
	}
	switch {
	case wal.Exist(cfg.WALFS, cfg.WALDir):
		err = core.restart(walCfg)
		if errors.Is(err, errUnfinishedBootstrap) {
			err = core.bootstrapAnew(walCfg)
		}
	case cfg.Join:
		err = core.join(walCfg)
	default:
		err = core.bootstrap(walCfg)
	}
	if err != nil {
		core.closeFiles()
		return nil, err
	}
	core.alone = !cfg.NoInitialElectionTickAdvance // until its voters are known (advanceTicksIfAlone)
	core.durable, _ = core.storage.LastIndex()     // what the WAL held at start
	if core.removedIDs[core.id] {
		core.closeFiles()
		return nil, ErrRemoved
	}
	return core, nil
}

// importEtcdWAL converts an etcd WAL in the WAL dir (a data dir made by
// etcdutl snapshot restore, or by an etcd member) into Cairn's, keeping
// etcd's files beside it (etcdwal.Import), so that the member restarts
// from it; and finishes an import a crash interrupted.
func (c *Core) importEtcdWAL() error {
	format, err := etcdwal.Detect(c.cfg.WALFS, c.cfg.WALDir)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if format != etcdwal.FormatEtcd && format != etcdwal.FormatImportInterrupted {
		return nil
	}
	c.lg.Info("importing etcd's WAL", zap.String("wal-dir", c.cfg.WALDir), zap.String("backup-dir", etcdwal.BackupDir(c.cfg.WALDir)))
	log, err := etcdwal.Import(etcdwal.ImportConfig{
		FS: c.cfg.WALFS, WALDir: c.cfg.WALDir, SnapDir: filepath.Join(c.cfg.DataDir, "member", "snap"),
		SegmentSize: c.cfg.WALSegmentSize, Logger: c.lg,
		Metadata: func(m etcdwal.Metadata) ([]byte, error) {
			if m.NodeID != c.id {
				return nil, fmt.Errorf("the WAL is member %x's, not this member's (%x): check --name and --initial-cluster against the restore's", m.NodeID, c.id)
			}
			return json.Marshal(walMetadata{MemberID: m.NodeID, ClusterID: m.ClusterID})
		},
	})
	if err != nil {
		return fmt.Errorf("node: importing etcd's WAL in %s: %w", c.cfg.WALDir, err)
	}
	c.lg.Info("imported etcd's WAL", zap.Int("entries", len(log.Entries)))
	return nil
}

func (c *Core) openKV() error {
	kv, err := mvcc.Open(mvcc.Config{
		Path:                 DBPath(c.cfg.DataDir),
		BatchInterval:        c.cfg.BackendBatchInterval,
		BatchLimit:           c.cfg.BackendBatchLimit,
		Clock:                c.cfg.Clock,
		NoSync:               c.cfg.BackendNoSync,
		Mlock:                c.cfg.BackendMlock,
		CompactionBatchLimit: c.cfg.CompactionBatchLimit,
		CompactionPace:       c.cfg.CompactionPace,
		Logger:               c.cfg.Logger,
		Watch:                c.cfg.WatchLimits,
	})
	if err != nil {
		return fmt.Errorf("node: opening database: %w", err)
	}
	c.kv = kv
	if err := c.loadAlarms(); err != nil {
		return err
	}
	if err := c.loadAuth(); err != nil {
		return err
	}
	if err := c.loadV2(); err != nil {
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
		PreVote:                   !c.cfg.DisablePreVote,
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
	if err := c.createFresh(walCfg, "bootstrap"); err != nil {
		return err
	}
	// The log starts with one committed conf change per initial member, as
	// raft's Bootstrap writes it; they are made durable here, before the
	// member runs, so that a member stopped before its first Ready still
	// knows its cluster when it restarts (raft's Bootstrap keeps them in
	// memory until the first Ready is saved).
	members := sortedMembers(membersByID(c.cfg.InitialMembers))
	ents := make([]*raftpb.Entry, 0, len(members))
	ccs := make([]*raftpb.ConfChange, 0, len(members))
	for i, m := range members {
		ctx, _ := json.Marshal(confChangeContext{Member: m})
		cc := &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(m.ID), Context: ctx}
		ccs = append(ccs, cc)
		data, err := proto.Marshal(cc)
		if err != nil {
			return fmt.Errorf("node: encoding bootstrap conf change: %w", err)
		}
		ents = append(ents, &raftpb.Entry{Type: raftpb.EntryConfChange.Enum(), Term: proto.Uint64(1), Index: proto.Uint64(uint64(i + 1)), Data: data})
	}
	hs := &raftpb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(uint64(len(ents)))}
	if err := c.wal.Save(hs, ents); err != nil {
		return fmt.Errorf("node: saving bootstrap entries to WAL: %w", err)
	}
	if err := c.storage.SetHardState(hs); err != nil {
		return fmt.Errorf("node: raft storage: %w", err)
	}
	if err := c.storage.Append(ents); err != nil {
		return fmt.Errorf("node: raft storage: %w", err)
	}
	c.term, c.committed = 1, uint64(len(ents))
	rn, err := raft.NewRawNode(c.raftConfig(0))
	if err != nil {
		return fmt.Errorf("node: starting raft: %w", err)
	}
	// As raft's Bootstrap does, the configuration takes effect now; the
	// entries are applied again with the rest of the log (a no-op for raft).
	for _, cc := range ccs {
		rn.ApplyConfChange(cc)
	}
	c.rn = rn
	c.lg.Info("bootstrapped new cluster member",
		zap.String("cluster-id", fmt.Sprintf("%x", c.clusterID)), zap.Int("members", len(members)))
	return nil
}

// createFresh opens an empty database and creates the WAL, for a member
// that has never run: one bootstrapping a new cluster or one joining (what
// names the refusal).
func (c *Core) createFresh(walCfg wal.Config, what string) error {
	if err := c.openKV(); err != nil {
		return err
	}
	// The database file is new: its directory entry is durable only once
	// the directory is synced (bbolt syncs the file, not its directory).
	if err := syncDir(filepath.Dir(DBPath(c.cfg.DataDir))); err != nil {
		return fmt.Errorf("node: syncing the database's directory: %w", err)
	}
	if ci, _ := c.kv.ConsistentIndex(); ci != 0 {
		return fmt.Errorf("node: database %s has applied entries (consistent index %d) but there is no WAL in %s: refusing to %s over it", DBPath(c.cfg.DataDir), ci, c.cfg.WALDir, what)
	}
	meta, _ := json.Marshal(walMetadata{MemberID: c.id, ClusterID: c.clusterID})
	w, err := wal.Create(walCfg, meta)
	if err != nil {
		return fmt.Errorf("node: creating WAL: %w", err)
	}
	c.wal = w
	return nil
}

// join starts a member added to a running cluster: empty log, no
// bootstrap entries; the leader's appends (or a snapshot) bring the log,
// the membership and the data.
func (c *Core) join(walCfg wal.Config) error {
	if c.cfg.ClusterID == 0 {
		return errors.New("node: joining a cluster needs its ClusterID")
	}
	c.clusterID = c.cfg.ClusterID
	if err := c.createFresh(walCfg, "join"); err != nil {
		return err
	}
	rn, err := raft.NewRawNode(c.raftConfig(0))
	if err != nil {
		return fmt.Errorf("node: starting raft: %w", err)
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
	if hs.GetTerm() == 0 && snapMeta.GetIndex() == 0 && c.bootstrapsToWAL(meta) {
		// No hard state and no snapshot: no save ever completed (the
		// bootstrap's carries its term and commit); entries are a torn
		// one's.
		return errUnfinishedBootstrap
	}
	if err := c.openKV(); err != nil {
		return err
	}
	ci, _ := c.kv.ConsistentIndex()
	if snapMeta != nil && ci < snapMeta.GetIndex() {
		// A crash between a received snapshot's WAL marker and the swap of
		// its database: finish the swap.
		if staged := snapDBPath(c.cfg.DataDir, snapMeta.GetIndex()); c.stagedExists(staged) {
			c.lg.Warn("finishing the install of a snapshot interrupted by a crash", zap.Uint64("index", snapMeta.GetIndex()))
			if err := c.installStaged(staged, true); err != nil {
				return err
			}
			if err := c.loadAlarms(); err != nil {
				return err
			}
			if err := c.loadAuth(); err != nil {
				return err
			}
			if err := c.loadV2(); err != nil {
				return err
			}
			if err := c.openLessor(); err != nil {
				return err
			}
			ci, _ = c.kv.ConsistentIndex()
		}
	}
	// Snapshot databases received but never installed (or partly received)
	// before a restart are of no use now.
	c.removeStagedSnapshots(0, true)
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
	if c.cfg.ForceNewCluster {
		if hs, ents, err = c.forceNewCluster(snapMeta, hs, ents); err != nil {
			return err
		}
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

// errUnfinishedBootstrap: the WAL holds no completed save, and is the
// one this member's bootstrap would create.
var errUnfinishedBootstrap = errors.New("node: the WAL holds no completed save of the bootstrap")

// bootstrapsToWAL tells whether bootstrapping this member as its Config
// says would create a WAL with metadata meta: the member is one of the
// initial members, the cluster theirs. A member that joined a running
// cluster has the cluster's ID, which the initial members it restarts with
// (itself among them) do not give.
func (c *Core) bootstrapsToWAL(meta walMetadata) bool {
	if c.cfg.Join || meta.MemberID != c.id {
		return false
	}
	ids := make([]uint64, 0, len(c.cfg.InitialMembers))
	for _, m := range c.cfg.InitialMembers {
		ids = append(ids, m.ID)
	}
	if !slices.Contains(ids, c.id) {
		return false
	}
	id := c.cfg.ClusterID
	if id == 0 {
		id = ClusterID(ids, c.cfg.ClusterToken)
	}
	return meta.ClusterID == id
}

// bootstrapAnew bootstraps again a member whose first start was cut (a
// crash, a kill) after its WAL was created and before the save of the
// cluster's first entries was synced: at most a torn part of them is
// there, without their hard state. It never acknowledged anything, so it
// starts as the first time, over a new WAL. Restarted from that log it
// would know no member (its conf changes never committed): a one-member
// cluster would never elect itself, and say nothing.
func (c *Core) bootstrapAnew(walCfg wal.Config) error {
	c.lg.Warn("the WAL holds no completed save: the member's first start was interrupted; bootstrapping again", zap.String("wal-dir", c.cfg.WALDir))
	if err := c.wal.Close(); err != nil {
		return fmt.Errorf("node: closing the unfinished WAL: %w", err)
	}
	c.wal = nil
	if err := c.cfg.WALFS.RemoveAll(c.cfg.WALDir); err != nil {
		return fmt.Errorf("node: removing the unfinished WAL: %w", err)
	}
	return c.bootstrap(walCfg)
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
	removed := map[uint64]bool{}
	err = c.kv.AuxForEach(removedBucket, func(k, _ []byte) error {
		id, err := strconv.ParseUint(string(k), 16, 64)
		if err != nil {
			return fmt.Errorf("node: bucket %q: key %q is not a member ID", removedBucket, k)
		}
		removed[id] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("node: loading removed members: %w", err)
	}
	c.removedIDs = removed
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
