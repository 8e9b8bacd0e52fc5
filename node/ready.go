package node

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Process handles everything raft has ready: it persists entries and hard
// state to the WAL with one fsync, sends messages, installs a snapshot,
// applies committed entries, answers waiters and reads, and takes a raft
// snapshot when due. A returned error is fatal: the core stops.
func (c *Core) Process() error {
	if c.fatal != nil {
		return c.fatal
	}
	if c.removed {
		c.fail(ErrRemoved)
		return ErrRemoved
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
		// A leader sends before its own fsync, so that its followers
		// write in parallel with it (raft thesis 10.2.1, as etcd does):
		// its messages carry no vote or acknowledgement that its disk
		// must back, and raft counts the leader's own copy of an entry
		// only when Advance reports it saved. Anyone else sends only
		// what is durable: a follower's MsgAppResp acknowledges the
		// entries of this very Ready.
		leaderSent := c.role == raft.StateLeader
		if leaderSent {
			if err := c.send(rd.Messages); err != nil {
				return err
			}
		}
		start := c.cfg.Clock.Now()
		if err := c.wal.Save(rd.HardState, rd.Entries); err != nil {
			return fmt.Errorf("node: saving to WAL: %w", err)
		}
		if n := len(rd.Entries); n > 0 {
			c.durable = rd.Entries[n-1].GetIndex()
		}
		// Observed as etcd's WAL fsync duration: only Saves that synced
		// (one moving only the commit index does not).
		if c.cfg.ObserveWALSave != nil && (len(rd.Entries) > 0 || (rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState))) && c.wal.LastSaveSynced() {
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
		if !leaderSent {
			if err := c.send(rd.Messages); err != nil {
				return err
			}
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
	if c.compactionDue() {
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
	// Decided now, not at start: a restarted member knows its voters only
	// once it has replayed the conf changes in its log.
	voters := c.rn.Status().Config.Voters.IDs()
	if _, self := voters[c.id]; !self || len(voters) != 1 {
		return
	}
	for i := 1; i < c.cfg.ElectionTicks; i++ {
		c.rn.Tick()
	}
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

// send hands messages to the transport. A MsgSnap goes with a view of the
// database (opening it only commits the open batch; the transport reads it
// out on its own goroutines), so a snapshot of any size costs the loop
// nothing.
func (c *Core) send(msgs []*raftpb.Message) error {
	if !slices.ContainsFunc(msgs, func(m *raftpb.Message) bool { return m.GetType() == raftpb.MsgSnap }) {
		if len(msgs) > 0 {
			c.tr.Send(msgs)
		}
		return nil
	}
	var batch []*raftpb.Message // in order: what precedes a snapshot goes first
	for _, m := range msgs {
		if m.GetType() != raftpb.MsgSnap {
			batch = append(batch, m)
			continue
		}
		if len(batch) > 0 {
			c.tr.Send(batch)
			batch = nil
		}
		db, err := c.kv.OpenSnapshot()
		if err != nil {
			return fmt.Errorf("node: snapshotting database for %x: %w", m.GetTo(), err)
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
		cp := proto.Clone(m).(*raftpb.Message) // never mutate raft's messages: they may share the storage's snapshot
		cp.Snapshot = &raftpb.Snapshot{Metadata: meta}
		c.lg.Info("sending snapshot", zap.String("to", fmt.Sprintf("%x", m.GetTo())),
			zap.Uint64("index", meta.GetIndex()), zap.Int64("bytes", db.Size()))
		c.tr.SendSnapshot(cp, db)
	}
	if len(batch) > 0 {
		c.tr.Send(batch)
	}
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
	if c.kv != nil && !c.kvClosed {
		_ = c.kv.Abandon()
		c.kvClosed = true
	}
	if c.wal != nil {
		_ = c.wal.Close()
		c.wal = nil
	}
}

// closeFiles closes the database and the WAL. The closed store stays in
// c.kv: its methods answer as a closed store does (nothing, ErrClosed), so
// a read of the core's state after it stopped never meets a nil store.
func (c *Core) closeFiles() error {
	var errs []error
	if c.kv != nil && !c.kvClosed {
		errs = append(errs, c.kv.Close())
		c.kvClosed = true
	}
	if c.wal != nil {
		errs = append(errs, c.wal.Close())
		c.wal = nil
	}
	return errors.Join(errs...)
}

// compactionDue tells whether the loop steps the compaction in progress
// now: at most once per compaction pace (--compaction-sleep-interval, as
// etcd sleeps between its batches), however often the loop turns, so a
// compaction under load takes a slice of a core rather than all of it
// (mvcc's CompactStep catches up with the time since its last step when
// the loop turns more rarely). With no compaction in progress it only
// answers waiters, at once.
func (c *Core) compactionDue() bool {
	if !c.kv.Compacting() {
		return len(c.compactWaits) > 0
	}
	pace := c.cfg.CompactionPace
	if pace <= 0 {
		pace = defaultCompactionPace
	}
	now := c.cfg.Clock.Now()
	if !c.lastCompactStep.IsZero() && now.Sub(c.lastCompactStep) < pace {
		return false
	}
	c.lastCompactStep = now
	return true
}

// defaultCompactionPace is etcd's default --compaction-sleep-interval.
const defaultCompactionPace = 10 * time.Millisecond
