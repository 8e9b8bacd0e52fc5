// Package faultfs is a fault-injecting FUSE file system for the chaos
// runner: a loopback over a backing directory that keeps what the programs
// above it have not made durable apart from what they have, so that a
// simulated power cut can drop the former, and that can stall or fail
// fsyncs, writes and reads on command.
//
// # The durability model
//
// The backing directory always holds the durable state of file contents;
// its namespace (names in directories) holds the current state, and an undo
// log remembers every namespace change that is not durable yet.
//
//   - File contents. A write goes into memory, page by page (4 KiB), over
//     the backing file; reads see the memory over the backing bytes. A
//     truncate or a size-extending fallocate changes only the size in
//     memory. fsync or fdatasync of the file (any descriptor of it) writes
//     its pages and size to the backing file: from then on they survive a
//     power cut. Nothing is written back on its own (no dirty-page
//     write-back after 30 s as on ext4): the model keeps the least that
//     POSIX promises, which is what a program must rely on.
//   - Names. Creating, linking, renaming or removing a name is done on the
//     backing directory at once and logged. It becomes durable when every
//     directory it touched (the parent, or both parents of a rename) has
//     been fsynced after it, or when the file or directory it created or
//     moved, or one below that one, is fsynced (as on ext4, XFS and btrfs,
//     a synced file or directory is reachable after a crash; etcd and
//     cairn create member/ with a plain mkdir and sync only what is below
//     it, and never sync the directory of bbolt's database file; with
//     Options.StrictNames only directory fsyncs count, as POSIX says). A power
//     cut undoes the changes that are not, newest first: a created file disappears (even if its data was
//     fsynced), a removed one comes back (removed names are parked in a
//     trash folder until their removal is durable), a rename is reversed.
//     This is stricter than ext4, which commits every metadata change of
//     the file system with the next fsync of any file (and within its 5 s
//     journal commit interval anyway): a program that survives this model
//     survives ext4 with data=ordered, not the other way round.
//   - Attributes other than the size (mode, owner, times) and extended
//     attributes go to the backing file at once and are not rolled back.
//
// A power cut (PowerCut) unmounts the file system, which must have no user
// left (kill the process first), drops every page not synced, undoes the
// namespace changes not durable, and mounts it again.
//
// # Faults
//
// SetFaults installs, and ClearFaults removes: a stall of every fsync
// (files and directories), a stall of every read, an errno (EIO, ENOSPC)
// returned by every write, truncate that grows a file, fallocate, create
// and mkdir, and an errno returned by every fsync; optionally only for
// paths that contain a given string.
package faultfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

const pageSize = 4096

// Faults are the faults a FS injects until they are changed. The zero
// value injects none.
type Faults struct {
	// SyncDelay stalls every fsync and fdatasync, of files and
	// directories, before it does its work.
	SyncDelay time.Duration
	// ReadDelay stalls every read of a file.
	ReadDelay time.Duration
	// WriteErr, when not 0, fails every write, fallocate, growing
	// truncate, create and mkdir (syscall.EIO, syscall.ENOSPC).
	WriteErr syscall.Errno
	// SyncErr, when not 0, fails every fsync without making anything
	// durable.
	SyncErr syscall.Errno
	// Path, when not empty, limits the faults to paths (relative to the
	// mount point) that contain it.
	Path string
}

func (f Faults) String() string {
	var parts []string
	if f.SyncDelay > 0 {
		parts = append(parts, "fsync stall "+f.SyncDelay.String())
	}
	if f.ReadDelay > 0 {
		parts = append(parts, "read stall "+f.ReadDelay.String())
	}
	if f.WriteErr != 0 {
		parts = append(parts, "writes fail with "+errnoName(f.WriteErr))
	}
	if f.SyncErr != 0 {
		parts = append(parts, "fsyncs fail with "+errnoName(f.SyncErr))
	}
	if len(parts) == 0 {
		return "no faults"
	}
	s := strings.Join(parts, ", ")
	if f.Path != "" {
		s += " on paths containing " + f.Path
	}
	return s
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EIO:
		return "EIO"
	case syscall.ENOSPC:
		return "ENOSPC"
	}
	return fmt.Sprintf("errno %d (%v)", int(e), e)
}

// Stats counts what a FS did.
type Stats struct {
	PowerCuts      int
	DroppedPages   int // unsynced pages dropped by power cuts
	DroppedResizes int // unsynced size changes dropped by power cuts
	UndoneOps      int // namespace changes undone by power cuts
	UndoErrors     int // undos that failed
	// StaleUndos counts undos dropped because later changes that stay
	// (made durable by a directory fsync) changed the names they would
	// restore: a file removed from a directory whose own removal is
	// durable does not come back.
	StaleUndos   int
	Syncs        int64 // fsyncs of files and directories
	FailedWrites int64 // writes failed by Faults.WriteErr
	FailedSyncs  int64 // fsyncs failed by Faults.SyncErr
}

// FS is one fault-injecting file system mounted at a mount point.
type FS struct {
	data   string // backing folder of the mounted tree
	trash  string // removed names parked until their removal is durable
	mnt    string
	debug  bool
	strict bool

	mountMu sync.Mutex
	server  *fuse.Server

	mu      sync.Mutex
	faults  Faults
	files   map[uint64]*dirtyFile // by backing inode number
	ops     []*nsOp               // namespace changes not durable yet, oldest first
	seq     uint64
	synced  map[uint64]uint64 // directory inode → seq of its last fsync
	trashID int
	stats   Stats
}

// Options configure New.
type Options struct {
	// Backing is a folder for the durable state (created if missing); it
	// must be on one file system, not under Mountpoint.
	Backing string
	// Mountpoint is where the file system is mounted (created if missing).
	Mountpoint string
	// Debug logs every FUSE request.
	Debug bool
	// StrictNames makes only directory fsyncs make names durable, as
	// POSIX alone promises. By default a file's fsync also makes durable
	// the names leading to it (its creation, its last rename, its
	// directories'), as ext4, XFS and btrfs do and as etcd and cairn rely
	// on for bbolt's database file.
	StrictNames bool
}

// New mounts a fault-injecting file system at opts.Mountpoint over
// opts.Backing. It needs /dev/fuse and the right to mount (root, or
// fusermount).
func New(opts Options) (*FS, error) {
	if opts.Backing == "" || opts.Mountpoint == "" {
		return nil, errors.New("faultfs: Backing and Mountpoint are required")
	}
	f := &FS{
		data:   filepath.Join(opts.Backing, "data"),
		trash:  filepath.Join(opts.Backing, "trash"),
		mnt:    opts.Mountpoint,
		debug:  opts.Debug,
		strict: opts.StrictNames,
		files:  map[uint64]*dirtyFile{},
		synced: map[uint64]uint64{},
	}
	for _, d := range []string{f.data, f.trash, f.mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("faultfs: %w", err)
		}
	}
	if err := f.Mount(); err != nil {
		return nil, err
	}
	return f, nil
}

// Mountpoint is where the file system is mounted.
func (f *FS) Mountpoint() string { return f.mnt }

// Mount mounts the file system again after Unmount.
func (f *FS) Mount() error {
	f.mountMu.Lock()
	defer f.mountMu.Unlock()
	if f.server != nil {
		return errors.New("faultfs: already mounted")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(f.data, &st); err != nil {
		return fmt.Errorf("faultfs: %w", err)
	}
	lr := &fs.LoopbackRoot{Path: f.data, Dev: uint64(st.Dev)}
	lr.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, f: f}
	}
	root := &node{LoopbackNode: fs.LoopbackNode{RootData: lr}, f: f, root: true}
	lr.RootNode = root
	sec := time.Second
	srv, err := fs.Mount(f.mnt, root, &fs.Options{
		AttrTimeout:  &sec,
		EntryTimeout: &sec,
		MountOptions: fuse.MountOptions{
			DirectMount: true,
			FsName:      "faultfs:" + f.data,
			Name:        "faultfs",
			Debug:       f.debug,
		},
	})
	if err != nil {
		return fmt.Errorf("faultfs: mount %s: %w", f.mnt, err)
	}
	f.server = srv
	return nil
}

// Unmount unmounts the file system; it fails while a process uses it.
// What is not durable stays pending: Mount shows it again, PowerCut drops
// it.
func (f *FS) Unmount() error {
	f.mountMu.Lock()
	defer f.mountMu.Unlock()
	if f.server == nil {
		return nil
	}
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err = f.server.Unmount(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("faultfs: unmount %s: %w", f.mnt, err)
		}
		// The killed process's descriptors close when the kernel
		// has reaped it; retry until then.
		time.Sleep(50 * time.Millisecond)
	}
	f.server.Wait()
	f.server = nil
	return nil
}

// Close unmounts the file system (see Unmount); pending changes stay in
// the backing folder as they are (the namespace as it is now, contents as
// last synced).
func (f *FS) Close() error { return f.Unmount() }

// PowerCut simulates the loss of power: it unmounts the file system (no
// process may use it any more: kill it first), drops every write and size
// change not fsynced, undoes every namespace change not made durable by a
// directory fsync, and mounts the file system again.
func (f *FS) PowerCut() error {
	if err := f.Unmount(); err != nil {
		return err
	}
	f.mu.Lock()
	f.dropLocked()
	f.mu.Unlock()
	return f.Mount()
}

// dropLocked forgets unsynced contents and undoes the pending namespace
// changes, newest first.
func (f *FS) dropLocked() {
	f.stats.PowerCuts++
	for _, d := range f.files {
		f.stats.DroppedPages += len(d.pages)
		if d.size != d.synced {
			f.stats.DroppedResizes++
		}
	}
	clear(f.files)
	for i := len(f.ops) - 1; i >= 0; i-- {
		switch err := f.ops[i].undo(); {
		case err == nil:
			f.stats.UndoneOps++
		case errors.Is(err, errStale):
			f.stats.StaleUndos++
		default:
			f.stats.UndoErrors++
		}
	}
	f.ops = nil
	clear(f.synced)
	_ = os.RemoveAll(f.trash)
	_ = os.MkdirAll(f.trash, 0o755)
}

// SetFaults replaces the faults in force.
func (f *FS) SetFaults(x Faults) {
	f.mu.Lock()
	f.faults = x
	f.mu.Unlock()
}

// ClearFaults removes every fault.
func (f *FS) ClearFaults() { f.SetFaults(Faults{}) }

// Faults returns the faults in force.
func (f *FS) Faults() Faults {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faults
}

// Stats returns counts of what the file system did.
func (f *FS) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Pending returns the number of files with unsynced contents and of
// namespace changes not durable yet.
func (f *FS) Pending() (files, ops int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.files), len(f.ops)
}

// faultsFor returns the faults that apply to rel (a path relative to the
// mount point).
func (f *FS) faultsFor(rel string) Faults {
	f.mu.Lock()
	x := f.faults
	f.mu.Unlock()
	if x.Path != "" && !strings.Contains(rel, x.Path) {
		return Faults{}
	}
	return x
}

// nsOp is a namespace change that is not durable yet.
type nsOp struct {
	seq  uint64
	dirs []uint64 // inode numbers of the directories it touched
	// target is the inode number of the name created or moved (0 for a
	// removal).
	target uint64
	undo   func() error // puts the namespace back as it was before
	done   func()       // runs once it is durable
}

// record logs a namespace change touching the directories dirs, which
// created or moved the name of inode target (0: a removal).
func (f *FS) record(dirs []uint64, target uint64, undo func() error, done func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	f.ops = append(f.ops, &nsOp{seq: f.seq, dirs: dirs, target: target, undo: undo, done: done})
}

// syncNames makes durable the names that lead to chain[0], a file or
// directory just fsynced: the creation or move of chain[0] and of its
// ancestors chain[1:] (as ext4, XFS and btrfs do: a synced file or
// directory is reachable after a crash); with isDir, also the namespace
// changes in directory chain[0], those whose every directory has now been
// synced after them. Under Options.StrictNames a file's fsync makes no
// name durable.
func (f *FS) syncNames(chain []uint64, isDir bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !isDir && f.strict {
		return
	}
	f.seq++
	if isDir {
		f.synced[chain[0]] = f.seq
	}
	kept := f.ops[:0]
	for _, op := range f.ops {
		durable := op.target != 0 && slices.Contains(chain, op.target)
		if !durable {
			durable = true
			for _, d := range op.dirs {
				if f.synced[d] <= op.seq {
					durable = false
					break
				}
			}
		}
		if durable {
			if op.done != nil {
				op.done()
			}
			continue
		}
		kept = append(kept, op)
	}
	for i := len(kept); i < len(f.ops); i++ {
		f.ops[i] = nil
	}
	f.ops = kept
}

// parkInTrash moves the backing path p to the trash and returns where.
func (f *FS) parkInTrash(p string) (string, error) {
	f.mu.Lock()
	f.trashID++
	t := filepath.Join(f.trash, fmt.Sprintf("%d", f.trashID))
	f.mu.Unlock()
	return t, os.Rename(p, t)
}

// forget drops the unsynced contents of inode ino (its last name is gone
// for good).
func (f *FS) forget(ino uint64) {
	delete(f.files, ino) // called with f.mu held (from syncNames' done)
}

func lstatIno(p string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// ctxSleep waits d or until ctx is done.
func ctxSleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Available reports why FUSE file systems cannot be mounted here (nil if
// they can): /dev/fuse must open, and mounting needs root or fusermount.
func Available() error {
	fd, err := syscall.Open("/dev/fuse", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("/dev/fuse: %w", err)
	}
	syscall.Close(fd)
	if os.Geteuid() == 0 {
		return nil
	}
	for _, b := range []string{"/usr/bin/fusermount3", "/usr/bin/fusermount", "/bin/fusermount"} {
		if _, err := os.Stat(b); err == nil {
			return nil
		}
	}
	return errors.New("not root and no fusermount")
}
