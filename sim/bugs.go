package sim

import (
	"fmt"

	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/vfs"
)

// Planted bugs, each a known way to break etcd's guarantees. The simulator
// must find every one of them (see bugs_test.go); without one, the swarm
// must be clean.
const (
	// BugStaleReads serves linearizable reads without a ReadIndex round.
	BugStaleReads = "stale-reads"
	// BugAckBeforeFsync gives members a disk that acknowledges fsync without
	// persisting anything after a WAL segment's first sync: raft acknowledges
	// entries a crash then loses.
	BugAckBeforeFsync = "ack-before-fsync"
	// BugDoubleApply applies entries again after a restart, ignoring the
	// database's consistent index.
	BugDoubleApply = "double-apply"
	// BugFollowersExpireLeases lets followers expire leases by their own
	// clocks, though they never see keep-alives.
	BugFollowersExpireLeases = "followers-expire-leases"
	// BugFlipValues makes one member (n2) store every put's value with a
	// bit flipped: silent corruption, which the cluster's own compact hash
	// check must catch (a CORRUPT alarm naming n2) before the simulator's
	// omniscient checks do.
	BugFlipValues = "flip-values"
	// BugIgnoreAuthRevokes makes one member (n2) skip permission revokes:
	// it permits what the others refuse at the same index.
	BugIgnoreAuthRevokes = "ignore-auth-revokes"
	// BugKeepRemovedMembers makes one member (n2) keep removed members in
	// its member list: the membership check must see it disagree.
	BugKeepRemovedMembers = "keep-removed-members"
	// BugIgnoreRemoval makes members go on running after their removal:
	// the membership check must see a removed member still running.
	BugIgnoreRemoval = "ignore-removal"
	// BugSnapshotWithoutData makes members install a snapshot's index but
	// keep their old database: a follower that lagged behind the log and
	// caught up through a snapshot must be seen to diverge.
	BugSnapshotWithoutData = "snapshot-without-data"
	// BugSkipStagedSync makes members save a received snapshot's database
	// without syncing it before the WAL's marker: a power cut between the
	// marker and the swap must be seen to lose it.
	BugSkipStagedSync = "skip-staged-sync"
	// BugSkipWALDirSync makes members skip the sync of the WAL directory
	// after cutting a new segment: a power cut loses the segment's name,
	// and the entries acknowledged from it (vfs.MemFS keeps only synced
	// directory entries). The exhaustive crash points must find it.
	BugSkipWALDirSync = "skip-wal-dir-sync"
	// BugV2IgnorePrevIndex makes every member apply v2 compare-and-swaps
	// and compare-and-deletes without their prevIndex comparison: the v2
	// history check (v2.go) must find it.
	BugV2IgnorePrevIndex = "v2-ignore-prev-index"
)

// flippedMember is the index of the member BugFlipValues corrupts.
const flippedMember = 1

// Bugs lists the planted bugs.
var Bugs = []string{BugStaleReads, BugAckBeforeFsync, BugDoubleApply, BugFollowersExpireLeases, BugFlipValues, BugIgnoreAuthRevokes,
	BugKeepRemovedMembers, BugIgnoreRemoval, BugSnapshotWithoutData}

// targetedBugs are planted bugs only a targeted fault reaches often enough
// (TestNewChecksCatchTheirBugs runs them with the options they need;
// TestNewChecksCatchTheirBugsExhaustive cuts the power at every operation
// of the step they break).
var targetedBugs = []string{BugSkipStagedSync, BugV2IgnorePrevIndex, BugSkipWALDirSync}

func checkBug(name string) error {
	for _, b := range append(append([]string{""}, Bugs...), targetedBugs...) {
		if b == name {
			return nil
		}
	}
	return fmt.Errorf("sim: unknown planted bug %q", name)
}

func bugsFor(name string, member int) node.Bugs {
	return node.Bugs{
		SkipReadIndex:         name == BugStaleReads,
		ReapplyAfterRestart:   name == BugDoubleApply,
		FollowersExpireLeases: name == BugFollowersExpireLeases,
		FlipValues:            name == BugFlipValues && member == flippedMember,
		IgnoreAuthRevokes:     name == BugIgnoreAuthRevokes && member == flippedMember,
		KeepRemovedMembers:    name == BugKeepRemovedMembers && member == flippedMember,
		IgnoreRemoval:         name == BugIgnoreRemoval,
		SnapshotWithoutData:   name == BugSnapshotWithoutData,
		SkipStagedSync:        name == BugSkipStagedSync,
		V2IgnorePrevIndex:     name == BugV2IgnorePrevIndex,
		SkipWALDirSync:        name == BugSkipWALDirSync,
	}
}

// walFS is the file system a member's WAL sees.
func (n *simNode) walFS() vfs.FS {
	if n.c.opts.Bug == BugAckBeforeFsync {
		return lyingFS{n.fs}
	}
	return n.fs
}

// lyingFS wraps an FS whose files persist only their first fsync.
type lyingFS struct{ vfs.FS }

type lyingFile struct {
	vfs.File
	synced bool
}

func (f *lyingFile) Sync() error {
	if f.synced {
		return nil // the lie: nothing reaches the platter
	}
	f.synced = true
	return f.File.Sync()
}

func (l lyingFS) Create(name string) (vfs.File, error) {
	f, err := l.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &lyingFile{File: f}, nil
}

func (l lyingFS) OpenReadWrite(name string) (vfs.File, error) {
	f, err := l.FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return &lyingFile{File: f}, nil
}
