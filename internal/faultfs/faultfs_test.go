package faultfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// mount mounts a FS for the test, or skips the test where the machine
// cannot mount FUSE file systems (no /dev/fuse, not root).
func mount(t *testing.T) *FS {
	t.Helper()
	return mountWith(t, Options{})
}

// mountWith is mount with options (Backing and Mountpoint are set here).
func mountWith(t *testing.T, opts Options) *FS {
	t.Helper()
	if err := Available(); err != nil {
		t.Fatalf("FUSE is not usable here (these tests need /dev/fuse, and root or fusermount: apt-get install fuse3; CI machines have both): %v", err)
	}
	dir := t.TempDir()
	opts.Backing, opts.Mountpoint = filepath.Join(dir, "backing"), filepath.Join(dir, "mnt")
	f, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return f
}

func (f *FS) path(name string) string { return filepath.Join(f.Mountpoint(), name) }

// writeFile creates name with data, fsyncs it and, if syncDir, its
// directory.
func writeFile(t *testing.T, f *FS, name string, data []byte, syncFile, syncDir bool) {
	t.Helper()
	fh, err := os.OpenFile(f.path(name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(data); err != nil {
		t.Fatal(err)
	}
	if syncFile {
		if err := fh.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	if syncDir {
		syncDirOf(t, f.path(name))
	}
}

func syncDirOf(t *testing.T, p string) {
	t.Helper()
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func wantContent(t *testing.T, f *FS, name string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(f.path(name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s holds %q, want %q", name, trunc(got), trunc(want))
	}
}

func wantMissing(t *testing.T, f *FS, name string) {
	t.Helper()
	if _, err := os.Lstat(f.path(name)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s: %v, want it gone", name, err)
	}
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

func powerCut(t *testing.T, f *FS) {
	t.Helper()
	if err := f.PowerCut(); err != nil {
		t.Fatal(err)
	}
}

func TestUnsyncedWritesVanishSyncedSurvive(t *testing.T) {
	f := mount(t)
	writeFile(t, f, "a", []byte("synced"), true, true)
	fh, err := os.OpenFile(f.path("a"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write([]byte(" and not")); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte("S"), 0); err == nil {
		t.Fatal("WriteAt on an O_APPEND file succeeded")
	}
	fh.Close()
	// Before the cut the program sees what it wrote.
	wantContent(t, f, "a", []byte("synced and not"))
	if files, _ := f.Pending(); files != 1 {
		t.Fatalf("%d files with unsynced data, want 1", files)
	}
	powerCut(t, f)
	wantContent(t, f, "a", []byte("synced"))
	if st := f.Stats(); st.PowerCuts != 1 || st.DroppedPages != 1 {
		t.Fatalf("stats %+v, want 1 power cut dropping 1 page", st)
	}
}

func TestLargeOverwriteAndTruncate(t *testing.T) {
	f := mount(t)
	base := bytes.Repeat([]byte("0123456789"), 3000) // 30000 bytes, 8 pages
	writeFile(t, f, "big", base, true, true)
	fh, err := os.OpenFile(f.path("big"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	// Overwrite across a page boundary, sync, then truncate without sync.
	if _, err := fh.WriteAt([]byte("XXXXXXXX"), 4092); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(base)
	copy(want[4092:], "XXXXXXXX")
	if err := fh.Truncate(5000); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte("tail"), 9000); err != nil {
		t.Fatal(err)
	}
	cut := make([]byte, 9004)
	copy(cut, want[:5000])
	copy(cut[9000:], "tail")
	wantContent(t, f, "big", cut)
	if st, err := fh.Stat(); err != nil || st.Size() != 9004 {
		t.Fatalf("stat: %v, size %d, want 9004", err, st.Size())
	}
	fh.Close()
	powerCut(t, f)
	wantContent(t, f, "big", want)

	// The same, synced: the truncated part stays zero.
	fh, err = os.OpenFile(f.path("big"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(5000); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte("tail"), 9000); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	powerCut(t, f)
	wantContent(t, f, "big", cut)
}

// TestNewFileNeedsDirSyncWhenStrict: with StrictNames (POSIX) only a
// directory fsync makes names durable.
func TestNewFileNeedsDirSyncWhenStrict(t *testing.T) {
	f := mountWith(t, Options{StrictNames: true})
	if err := os.Mkdir(f.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	syncDirOf(t, f.path("d"))
	writeFile(t, f, "d/dirsync", []byte("y"), true, true)
	writeFile(t, f, "d/nofilesync", []byte("z"), false, true)
	// Created after the directory's last fsync (which made every earlier
	// name in it durable).
	writeFile(t, f, "d/nodirsync", []byte("x"), true, false)
	powerCut(t, f)
	wantMissing(t, f, "d/nodirsync")
	wantContent(t, f, "d/dirsync", []byte("y"))
	// The name is durable, its contents were never synced.
	wantContent(t, f, "d/nofilesync", nil)

	// A directory whose own creation was never synced (nor itself)
	// disappears with what is in it.
	if err := os.Mkdir(f.path("e"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f, "e/f", []byte("x"), true, false)
	powerCut(t, f)
	wantMissing(t, f, "e")

	// Syncing a directory makes the names leading to it durable too.
	if err := os.MkdirAll(f.path("g/h"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f, "g/h/f", []byte("x"), true, true)
	writeFile(t, f, "g/sibling", []byte("y"), true, false)
	powerCut(t, f)
	wantContent(t, f, "g/h/f", []byte("x"))
	wantMissing(t, f, "g/sibling")
}

func TestRenameWithoutDirSyncIsRolledBack(t *testing.T) {
	f := mount(t)
	writeFile(t, f, "target", []byte("old"), true, true)
	writeFile(t, f, "tmp", []byte("new"), true, true)
	if err := os.Rename(f.path("tmp"), f.path("target")); err != nil {
		t.Fatal(err)
	}
	wantContent(t, f, "target", []byte("new"))
	wantMissing(t, f, "tmp")
	powerCut(t, f)
	wantContent(t, f, "target", []byte("old"))
	wantContent(t, f, "tmp", []byte("new"))

	// With the directory synced the rename survives.
	if err := os.Rename(f.path("tmp"), f.path("target")); err != nil {
		t.Fatal(err)
	}
	syncDirOf(t, f.path("target"))
	powerCut(t, f)
	wantContent(t, f, "target", []byte("new"))
	wantMissing(t, f, "tmp")
	if _, ops := f.Pending(); ops != 0 {
		t.Fatalf("%d namespace changes pending after a power cut", ops)
	}
}

func TestUnlinkWithoutDirSyncIsRolledBack(t *testing.T) {
	f := mount(t)
	writeFile(t, f, "a", []byte("keep"), true, true)
	writeFile(t, f, "b", []byte("gone"), true, true)
	if err := os.Remove(f.path("a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.path("b")); err != nil {
		t.Fatal(err)
	}
	syncDirOf(t, f.path("b"))
	// The unsynced removal of a, made durable by the sync too (same
	// directory): both stay removed.
	powerCut(t, f)
	wantMissing(t, f, "a")
	wantMissing(t, f, "b")

	writeFile(t, f, "c", []byte("back"), true, true)
	if err := os.Remove(f.path("c")); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, f, "c")
	powerCut(t, f)
	wantContent(t, f, "c", []byte("back"))
}

func TestFaults(t *testing.T) {
	f := mount(t)
	if err := os.Mkdir(f.path("wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f, "wal/seg", []byte("abc"), true, true)
	writeFile(t, f, "db", []byte("abc"), true, true)
	for _, errno := range []syscall.Errno{syscall.EIO, syscall.ENOSPC} {
		f.SetFaults(Faults{WriteErr: errno, Path: "wal"})
		fh, err := os.OpenFile(f.path("wal/seg"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fh.Write([]byte("x")); !errors.Is(err, errno) {
			t.Errorf("write with %s: %v", errnoName(errno), err)
		}
		fh.Close()
		if _, err := os.Create(f.path("wal/new")); !errors.Is(err, errno) {
			t.Errorf("create with %s: %v", errnoName(errno), err)
		}
		// Other paths are not hit.
		writeFile(t, f, "db", []byte("def"), true, false)
		f.ClearFaults()
		writeFile(t, f, "wal/seg", []byte("ghi"), true, false)
		wantContent(t, f, "wal/seg", []byte("ghi"))
	}
	if st := f.Stats(); st.FailedWrites != 4 {
		t.Errorf("%d failed writes, want 4", st.FailedWrites)
	}

	f.SetFaults(Faults{SyncErr: syscall.EIO})
	fh, err := os.OpenFile(f.path("db"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.Write([]byte("unsynced")); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync under SyncErr: %v", err)
	}

	const stall = 300 * time.Millisecond
	f.SetFaults(Faults{SyncDelay: stall, ReadDelay: stall})
	start := time.Now()
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < stall {
		t.Errorf("fsync took %s under a %s stall", took, stall)
	}
	f.ClearFaults()
	start = time.Now()
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= stall {
		t.Errorf("fsync took %s once the stall was cleared", took)
	}

	fh.Close()

	// Reads: remount first, so that the kernel has nothing cached.
	if err := f.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := f.Mount(); err != nil {
		t.Fatal(err)
	}
	f.SetFaults(Faults{ReadDelay: stall})
	start = time.Now()
	wantContent(t, f, "wal/seg", []byte("ghi"))
	if took := time.Since(start); took < stall {
		t.Errorf("read took %s under a %s stall", took, stall)
	}
	f.ClearFaults()
}

// TestDurablyRemovedTreeStaysRemoved: the files of a directory whose
// removal is durable do not come back into a new directory of the same
// name (their own removals were never synced: their directory is gone).
func TestDurablyRemovedTreeStaysRemoved(t *testing.T) {
	f := mount(t)
	if err := os.MkdirAll(f.path("member/wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f, "member/wal/old", []byte("old"), true, true)
	if err := os.RemoveAll(f.path("member")); err != nil {
		t.Fatal(err)
	}
	syncDirOf(t, f.path("member"))
	if err := os.MkdirAll(f.path("member/wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f, "member/wal/new", []byte("new"), true, true)
	powerCut(t, f)
	wantContent(t, f, "member/wal/new", []byte("new"))
	wantMissing(t, f, "member/wal/old")
	if st := f.Stats(); st.UndoErrors != 0 || st.StaleUndos == 0 {
		t.Fatalf("stats %+v: want stale undos and no failed one", st)
	}
}

// TestFileFsyncMakesItsNameDurable: by default, as on ext4, XFS and
// btrfs, a file's fsync makes the names leading to it durable (bbolt never
// syncs the directory of the database file it creates).
func TestFileFsyncMakesItsNameDurable(t *testing.T) {
	f := mount(t)
	if err := os.MkdirAll(f.path("member/snap"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f, "member/snap/db", []byte("db"), true, false)
	writeFile(t, f, "member/snap/unsynced", []byte("x"), false, false)
	powerCut(t, f)
	wantContent(t, f, "member/snap/db", []byte("db"))
	wantMissing(t, f, "member/snap/unsynced")
}
