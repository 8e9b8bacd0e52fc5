package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/vfs"
)

// installSnapshot replaces the database with a leader's snapshot. The
// database goes first and durably, then the WAL's snapshot marker: a crash in
// between leaves a database ahead of the log, which replay tolerates.
func (c *Core) installSnapshot(snap *raftpb.Snapshot) error {
	if observe := c.cfg.ObserveSnapshotApply; observe != nil {
		observe(true)
		defer observe(false)
	}
	meta := snap.GetMetadata()
	staged := snapDBPath(c.cfg.DataDir, meta.GetIndex())
	// Crash-safe in three steps, as etcd: the database is saved beside the
	// live one and synced, then the WAL marker, then the swap. A restart
	// between marker and swap finishes the swap from the saved file.
	if bytes.Equal(snap.GetData(), StagedSnapshotData) {
		// The shell saved the database as it arrived (StageSnapshot).
		st, err := c.snapFS().Stat(staged)
		if err != nil {
			return fmt.Errorf("node: the database of snapshot %d was not staged: %w", meta.GetIndex(), err)
		}
		c.lg.Info("installing snapshot", zap.Uint64("index", meta.GetIndex()), zap.Uint64("term", meta.GetTerm()), zap.Int64("bytes", st.Size()))
	} else {
		c.lg.Info("installing snapshot", zap.Uint64("index", meta.GetIndex()), zap.Uint64("term", meta.GetTerm()), zap.Int("bytes", len(snap.GetData())))
		if err := c.saveStaged(staged, snap.GetData()); err != nil {
			return fmt.Errorf("node: saving snapshot database: %w", err)
		}
	}
	if err := c.wal.SaveSnapshot(meta); err != nil {
		return fmt.Errorf("node: saving snapshot marker: %w", err)
	}
	if c.cfg.Bugs.snapshotWithoutData() {
		c.kv.SetConsistentIndex(meta.GetIndex(), meta.GetTerm()) // the planted bug: the index, not the data
	} else if err := c.installStaged(staged, false); err != nil {
		return err
	}
	c.removeStagedSnapshots(meta.GetIndex(), false)
	if ci, _ := c.kv.ConsistentIndex(); ci < meta.GetIndex() {
		return fmt.Errorf("node: snapshot database at consistent index %d is behind its raft index %d", ci, meta.GetIndex())
	}
	if err := c.storage.ApplySnapshot(&raftpb.Snapshot{Metadata: meta}); err != nil {
		return fmt.Errorf("node: raft storage: %w", err)
	}
	c.confState = meta.GetConfState()
	c.applied = meta.GetIndex()
	c.durable = max(c.durable, meta.GetIndex())
	c.snapIndex = meta.GetIndex()
	c.snapshotsInstalled++
	if err := c.loadMembers(); err != nil {
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
	// Waiters of entries the snapshot covers are left waiting: this member
	// never applies those entries, so it cannot tell their outcome. Their
	// callers time out (the shell forgets them), as etcd's do.
	return nil
}

// maybeSnapshot takes a raft snapshot every SnapshotCount applied entries and
// compacts the log behind it.
func (c *Core) maybeSnapshot() error {
	if c.applied-c.snapIndex < c.cfg.SnapshotCount || c.confState == nil {
		return c.maybeTrimLog()
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
	c.trimmedAt = c.applied
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

// trimEvery is how many applied entries the in-memory raft log grows by
// before it is trimmed to the last SnapshotCatchUpEntries, as etcd 3.7 does
// every 100 (its in-memory snapshots). The WAL's snapshots stay at every
// SnapshotCount entries; without this the log held up to SnapshotCount +
// SnapshotCatchUpEntries entries in memory.
const trimEvery = 100

// maybeTrimLog trims the in-memory raft log every trimEvery applied entries
// to the SnapshotCatchUpEntries behind the applied index. The raft storage
// takes an in-memory snapshot at the applied index first, so that a
// follower behind the trimmed log is sent a snapshot from after it (the
// database's, at the applied index, as send does). Not while a follower is
// receiving a snapshot (as etcd): once installed, it needs the entries
// right after it.
func (c *Core) maybeTrimLog() error {
	if c.applied < c.trimmedAt+trimEvery || c.confState == nil {
		return nil
	}
	if c.role == raft.StateLeader {
		snapshotting := false
		c.rn.WithProgress(func(_ uint64, _ raft.ProgressType, pr tracker.Progress) {
			snapshotting = snapshotting || pr.State == tracker.StateSnapshot
		})
		if snapshotting {
			return nil
		}
	}
	c.trimmedAt = c.applied
	if c.applied <= c.cfg.SnapshotCatchUpEntries {
		return nil
	}
	compactTo := c.applied - c.cfg.SnapshotCatchUpEntries
	if first, _ := c.storage.FirstIndex(); compactTo <= first {
		return nil
	}
	if _, err := c.storage.CreateSnapshot(c.applied, c.confState, nil); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
		return fmt.Errorf("node: raft storage snapshot at %d: %w", c.applied, err)
	}
	if err := c.storage.Compact(compactTo); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("node: compacting raft log: %w", err)
	}
	return nil
}

// snapDBPath is where a received snapshot's database waits for its swap.
func snapDBPath(dataDir string, index uint64) string {
	return filepath.Join(dataDir, "member", "snap", fmt.Sprintf("%016x.snap.db", index))
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

// replaceDBFrom swaps the database for the one saved at path, which it
// takes in place (no copy).
func (c *Core) replaceDBFrom(path string) error {
	if err := c.kv.ReplaceDBFile(path); err != nil {
		return fmt.Errorf("node: installing snapshot database: %w", err)
	}
	return nil
}

// StagedSnapshotData is the data of a received MsgSnap whose database the
// shell has already saved with StageSnapshot: the core installs that file
// instead of writing the message's data.
var StagedSnapshotData = []byte("cairn:staged-snapshot-db")

// StageSnapshot saves the database of the snapshot at index, read from r,
// where the core installs it from, durably, and returns its size. It is
// written under a temporary name and renamed into place, so a partial file
// is never installed and concurrent deliveries of the same snapshot do not
// mix. The production shell calls it for a snapshot streamed from a peer,
// then steps the message with its data set to StagedSnapshotData.
func StageSnapshot(dataDir string, index uint64, r io.Reader) (int64, error) {
	n, _, err := StageSnapshotTimed(dataDir, index, r, nil)
	return n, err
}

// StageSnapshotTimed is StageSnapshot that also returns how long the
// file's fsync took, by clk (0 when clk is nil).
func StageSnapshotTimed(dataDir string, index uint64, r io.Reader, clk clock.Clock) (n int64, fsync time.Duration, err error) {
	path := snapDBPath(dataDir, index)
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".part*")
	if err != nil {
		return 0, 0, fmt.Errorf("node: staging snapshot database: %w", err)
	}
	h := newStagedHash()
	n, err = io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		var start time.Time
		if clk != nil {
			start = clk.Now()
		}
		err = f.Sync()
		if clk != nil {
			fsync = clk.Now().Sub(start)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		stageMu.Lock()
		err = writeStagedSum(vfs.OS(), path, encodeSum(h, n))
		if err == nil {
			err = os.Rename(f.Name(), path)
		}
		stageMu.Unlock()
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return n, fsync, fmt.Errorf("node: staging snapshot database: %w", err)
	}
	return n, fsync, nil
}

// removeStagedSnapshots removes the staged snapshot databases of indexes
// below below, which raft would refuse now, and with all set, every staged
// or partial one (at start, before the transport receives anything: while
// running, the shell may be staging one).
func (c *Core) removeStagedSnapshots(below uint64, all bool) {
	dir := filepath.Dir(snapDBPath(c.cfg.DataDir, 0))
	names, err := c.stagedNames(dir)
	if err != nil {
		return
	}
	for _, name := range names {
		var index uint64
		stale := all && strings.Contains(name, ".snap.db")
		base := strings.TrimSuffix(name, stagedSumSuffix)
		if n, err := fmt.Sscanf(base, "%016x.snap.db", &index); err == nil && n == 1 && base == filepath.Base(snapDBPath("", index)) && index < below {
			stale = true
		}
		if !stale {
			continue
		}
		if err := c.snapFS().Remove(filepath.Join(dir, name)); err != nil {
			c.lg.Warn("removing a staged snapshot database", zap.String("path", name), zap.Error(err))
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
