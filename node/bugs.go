package node

import (
	"errors"
	"path/filepath"

	"github.com/cairnkv/cairn/vfs"
)

// Bugs plants known bugs in a Core, so tests can prove that the simulator's
// checks catch them. They take effect only in binaries built with the
// `cairnbugs` build tag (go test -tags cairnbugs); any other build refuses a
// Config that sets one, so no production binary can run with a planted bug.
type Bugs struct {
	// SkipReadIndex answers linearizable reads at once, without a raft
	// ReadIndex round: a partitioned old leader serves stale reads.
	SkipReadIndex bool
	// ReapplyAfterRestart ignores the consistent index on restart, so
	// entries already in the database are applied a second time.
	ReapplyAfterRestart bool
	// FollowersExpireLeases lets every member, not only the leader, expire
	// leases by its own clock; followers never see keep-alives.
	FollowersExpireLeases bool
	// FlipValues makes this member store every put's value with its last
	// byte changed: its data silently diverges from the cluster's.
	FlipValues bool
	// IgnoreAuthRevokes makes this member answer permission revokes
	// without applying them: it goes on permitting what the others refuse.
	IgnoreAuthRevokes bool
	// KeepRemovedMembers makes this member leave removed members in its
	// member list (raft's configuration still drops them).
	KeepRemovedMembers bool
	// IgnoreRemoval makes this member go on running after the cluster
	// removed it, whether it applies its removal or a peer reports it.
	IgnoreRemoval bool
	// SnapshotWithoutData makes this member install a snapshot's index and
	// membership but keep its old database.
	SnapshotWithoutData bool
	// SkipStagedSync makes this member save a received snapshot's database
	// without syncing it before the WAL's snapshot marker.
	SkipStagedSync bool
	// SkipWALDirSync makes this member skip the sync of its WAL directory
	// after cutting a new segment (and after releasing old ones): the new
	// segment's name, and the entries saved into it, a power cut loses.
	SkipWALDirSync bool
	// V2IgnorePrevIndex makes this member apply a v2 compare-and-swap or
	// compare-and-delete without its prevIndex comparison (node/v2.go).
	V2IgnorePrevIndex bool
}

func (b Bugs) any() bool {
	return b.SkipReadIndex || b.ReapplyAfterRestart || b.FollowersExpireLeases || b.FlipValues || b.IgnoreAuthRevokes ||
		b.KeepRemovedMembers || b.IgnoreRemoval || b.SnapshotWithoutData || b.SkipStagedSync || b.V2IgnorePrevIndex ||
		b.SkipWALDirSync
}

var errBugsNotBuilt = errors.New("node: planted bugs need a build with the cairnbugs tag")

func (b Bugs) check() error {
	if b.any() && !bugsEnabled {
		return errBugsNotBuilt
	}
	return nil
}

func (b Bugs) skipReadIndex() bool         { return bugsEnabled && b.SkipReadIndex }
func (b Bugs) reapplyAfterRestart() bool   { return bugsEnabled && b.ReapplyAfterRestart }
func (b Bugs) followersExpireLeases() bool { return bugsEnabled && b.FollowersExpireLeases }
func (b Bugs) flipValues() bool            { return bugsEnabled && b.FlipValues }
func (b Bugs) ignoreAuthRevokes() bool     { return bugsEnabled && b.IgnoreAuthRevokes }
func (b Bugs) keepRemovedMembers() bool    { return bugsEnabled && b.KeepRemovedMembers }
func (b Bugs) ignoreRemoval() bool         { return bugsEnabled && b.IgnoreRemoval }
func (b Bugs) snapshotWithoutData() bool   { return bugsEnabled && b.SnapshotWithoutData }
func (b Bugs) skipStagedSync() bool        { return bugsEnabled && b.SkipStagedSync }
func (b Bugs) v2IgnorePrevIndex() bool     { return bugsEnabled && b.V2IgnorePrevIndex }
func (b Bugs) skipWALDirSync() bool        { return bugsEnabled && b.SkipWALDirSync }

// walFS is the file system the WAL in dir is given: fsys, or with
// SkipWALDirSync, fsys whose syncs of dir itself do nothing (the syncs of
// its parent, which make a new WAL durable, still happen).
func (b Bugs) walFS(fsys vfs.FS, dir string) vfs.FS {
	if !b.skipWALDirSync() {
		return fsys
	}
	return skipDirSyncFS{FS: fsys, dir: filepath.Clean(dir)}
}

type skipDirSyncFS struct {
	vfs.FS
	dir string
}

func (f skipDirSyncFS) SyncDir(dir string) error {
	if filepath.Clean(dir) == f.dir {
		return nil // the bug
	}
	return f.FS.SyncDir(dir)
}
