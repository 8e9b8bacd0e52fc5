package node

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/v2store"
)

// Result is the outcome of an applied proposal.
type Result struct {
	// Index is the raft index the request was applied at.
	Index uint64
	// Resp is the response: *pb.PutResponse, *pb.DeleteRangeResponse,
	// *pb.TxnResponse, *pb.RangeResponse, *pb.CompactionResponse, ... with a
	// filled header; nil for requests that have none (member changes).
	Resp proto.Message
	// V2 is a v2 request's event (node/v2.go); nil for any other request.
	V2 *v2store.Event
	// Err is the client-facing error (an mvcc sentinel such as mvcc.ErrCompacted),
	// or ErrStopped.
	Err error
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
	auth    *auth.Store
	v2      *v2store.Store // the v2 API's tree (v2.go)
	// applyingIndex is the raft index of the entry being applied.
	applyingIndex uint64
	tr            Transport

	id, clusterID uint64
	members       map[uint64]Member
	confState     *raftpb.ConfState
	// alone: this member may be the only voter and its election ticks
	// are still to be fast-forwarded (see advanceTicksIfAlone).
	alone bool
	// readsLostLeader: a leader became known; unanswered read rounds are
	// asked again after this Ready.
	readsLostLeader bool

	applied   uint64 // last applied raft index
	snapIndex uint64 // index of the newest raft snapshot
	trimmedAt uint64 // applied index of the last trim of the in-memory log (maybeTrimLog)
	// lastCompactStep is when the loop last stepped a compaction
	// (compactionDue).
	lastCompactStep time.Time
	kvClosed        bool // kv was closed (or abandoned) by Close or Crash
	term            uint64
	committed       uint64
	lead            uint64
	role            raft.StateType

	idGen idGenerator
	waits map[uint64]func(Result)
	reads readQueue
	// compactWaits are physical compactions' callers, answered when the
	// MVCC store's physical compaction completes.
	compactWaits []func()
	ticks        uint64
	// snapshotsInstalled counts snapshots received from a leader.
	snapshotsInstalled uint64
	// durable is the last log index the WAL holds (invariants.go).
	durable uint64

	fatal error
	// removed is set when this member's own removal is applied, or a peer
	// tells it that it was removed (RemovedByPeer).
	removed bool
	// removedIDs are the members ever removed from the cluster.
	removedIDs map[uint64]bool
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
//
// A message from a member that was removed from the cluster is refused with
// ErrSenderRemoved, so that the transport tells the sender, which
// then stops (RemovedByPeer): a member partitioned or down while it was
// removed learns it this way, as etcd's do from their peers' 410 Gone.
func (c *Core) Step(m *raftpb.Message) error {
	if c.fatal != nil {
		return c.fatal
	}
	if c.removedIDs[m.GetFrom()] {
		return ErrSenderRemoved
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

// IsRemoved tells whether member id was removed from the cluster.
func (c *Core) IsRemoved(id uint64) bool { return c.removedIDs[id] }

// RemovedIDs returns the IDs of the members removed from the cluster.
func (c *Core) RemovedIDs() []uint64 {
	out := make([]uint64, 0, len(c.removedIDs))
	for id := range c.removedIDs {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// NumRemoved is how many members were ever removed from the cluster.
func (c *Core) NumRemoved() int { return len(c.removedIDs) }

// RemovedByPeer records that a peer refused this member's message because
// the cluster removed it (ErrSenderRemoved at the peer). The next Process
// stops the core with ErrRemoved.
func (c *Core) RemovedByPeer(peer uint64) {
	if c.cfg.Bugs.ignoreRemoval() {
		return
	}
	if !c.removed {
		c.lg.Warn("a peer reports this member was removed from the cluster", zap.String("peer", fmt.Sprintf("%x", peer)))
	}
	c.removed = true
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

// HasReady tells whether Process has work to do (stopping, once a peer
// reported this member removed, is work too).
func (c *Core) HasReady() bool {
	return c.fatal == nil && (c.removed || c.rn.HasReady() || c.reads.canIssue() || len(c.compactWaits) > 0)
}
