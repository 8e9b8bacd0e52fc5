package vfs

import (
	"errors"
	"io/fs"
	"slices"
	"testing"
)

// The directory rules of MemFS.Crash (see MemFS): each directory keeps
// only the entries it had at its last SyncDir.

func mustExist(t *testing.T, fsys FS, name string) {
	t.Helper()
	if _, err := fsys.Stat(name); err != nil {
		t.Fatalf("Stat(%s) = %v, want it to exist", name, err)
	}
}

func mustNotExist(t *testing.T, fsys FS, name string) {
	t.Helper()
	if _, err := fsys.Stat(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(%s) = %v, want not exist", name, err)
	}
}

// syncedFile creates name holding data, synced, its directory synced.
func syncedFile(t *testing.T, m *MemFS, name, data string) File {
	t.Helper()
	f, err := m.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, f, []byte(data))
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	syncDir(t, m, dirOf(name))
	return f
}

func dirOf(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			if i == 0 {
				return "/"
			}
			return name[:i]
		}
	}
	return "."
}

func mkdir(t *testing.T, m *MemFS, dir string) {
	t.Helper()
	if err := MkdirAllSynced(m, dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestCrashLosesACreateWhoseDirectoryWasNotSynced(t *testing.T) {
	m := NewMem()
	mkdir(t, m, "/d")
	f, _ := m.Create("/d/f")
	writeAll(t, f, []byte("data"))
	if err := f.Sync(); err != nil { // the contents are synced, the name is not
		t.Fatal(err)
	}
	mustNotExist(t, m.Crash(nil, false), "/d/f")

	syncDir(t, m, "/d")
	if got := readFile(t, m.Crash(nil, false), "/d/f"); string(got) != "data" {
		t.Fatalf("after SyncDir and a crash /d/f = %q, want data", got)
	}
}

func TestCrashUndoesARenameNotFollowedBySyncDir(t *testing.T) {
	m := NewMem()
	mkdir(t, m, "/d")
	f := syncedFile(t, m, "/d/a.tmp", "v1")
	if err := m.Rename("/d/a.tmp", "/d/a"); err != nil {
		t.Fatal(err)
	}
	c := m.Crash(nil, false)
	mustNotExist(t, c, "/d/a")
	if got := readFile(t, c, "/d/a.tmp"); string(got) != "v1" {
		t.Fatalf("the old name holds %q after the crash, want v1", got)
	}

	// Contents follow the file, not its name: synced after the rename,
	// they are what the old name shows.
	writeAll(t, f, []byte("+v2"))
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, m.Crash(nil, false), "/d/a.tmp"); string(got) != "v1+v2" {
		t.Fatalf("the old name holds %q, want the file's synced v1+v2", got)
	}

	syncDir(t, m, "/d")
	c = m.Crash(nil, false)
	mustNotExist(t, c, "/d/a.tmp")
	if got := readFile(t, c, "/d/a"); string(got) != "v1+v2" {
		t.Fatalf("after SyncDir the new name holds %q, want v1+v2", got)
	}
}

func TestCrashRenameAcrossDirectoriesNeedsBothSynced(t *testing.T) {
	m := NewMem()
	mkdir(t, m, "/src")
	mkdir(t, m, "/dst")
	syncedFile(t, m, "/src/f", "x")
	if err := m.Rename("/src/f", "/dst/f"); err != nil {
		t.Fatal(err)
	}
	// Only the destination synced: the file is under both names, one file.
	syncDir(t, m, "/dst")
	c := m.Crash(nil, false)
	mustExist(t, c, "/src/f")
	mustExist(t, c, "/dst/f")
	g, err := c.OpenReadWrite("/dst/f")
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, g, []byte("Y"))
	if got := readFile(t, c, "/src/f"); string(got) != "Y" {
		t.Fatalf("a write through /dst/f reads %q through /src/f, want the same file", got)
	}

	// Only the source synced: the file is under neither name.
	m2 := NewMem()
	mkdir(t, m2, "/src")
	mkdir(t, m2, "/dst")
	syncedFile(t, m2, "/src/f", "x")
	if err := m2.Rename("/src/f", "/dst/f"); err != nil {
		t.Fatal(err)
	}
	syncDir(t, m2, "/src")
	c = m2.Crash(nil, false)
	mustNotExist(t, c, "/src/f")
	mustNotExist(t, c, "/dst/f")

	// Both synced: only the new name.
	syncDir(t, m2, "/dst")
	c = m2.Crash(nil, false)
	mustNotExist(t, c, "/src/f")
	if got := readFile(t, c, "/dst/f"); string(got) != "x" {
		t.Fatalf("/dst/f = %q, want x", got)
	}
}

func TestCrashUndoesARenameOverAFile(t *testing.T) {
	m := NewMem()
	mkdir(t, m, "/d")
	syncedFile(t, m, "/d/old", "old")
	syncedFile(t, m, "/d/new.tmp", "new")
	if err := m.Rename("/d/new.tmp", "/d/old"); err != nil {
		t.Fatal(err)
	}
	c := m.Crash(nil, false)
	if got := readFile(t, c, "/d/old"); string(got) != "old" {
		t.Fatalf("the replaced name holds %q after the crash, want the replaced file's old", got)
	}
	if got := readFile(t, c, "/d/new.tmp"); string(got) != "new" {
		t.Fatalf("the renamed file's old name holds %q, want new", got)
	}
	syncDir(t, m, "/d")
	c = m.Crash(nil, false)
	if got := readFile(t, c, "/d/old"); string(got) != "new" {
		t.Fatalf("after SyncDir /d/old = %q, want new", got)
	}
	mustNotExist(t, c, "/d/new.tmp")
}

func TestCrashBringsBackARemoveNotFollowedBySyncDir(t *testing.T) {
	m := NewMem()
	mkdir(t, m, "/d")
	f := syncedFile(t, m, "/d/f", "synced")
	writeAll(t, f, []byte("+unsynced"))
	if err := m.Remove("/d/f"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, m.Crash(nil, false), "/d/f"); string(got) != "synced" {
		t.Fatalf("the removed file is back with %q, want its synced contents", got)
	}
	syncDir(t, m, "/d")
	mustNotExist(t, m.Crash(nil, false), "/d/f")
}

func TestCrashBringsBackARemoveAllNotFollowedBySyncDir(t *testing.T) {
	m := NewMem()
	mkdir(t, m, "/d/sub")
	syncedFile(t, m, "/d/sub/f", "f")
	if err := m.RemoveAll("/d"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, m.Crash(nil, false), "/d/sub/f"); string(got) != "f" {
		t.Fatalf("after RemoveAll and a crash /d/sub/f = %q, want f back", got)
	}
	syncDir(t, m, "/")
	mustNotExist(t, m.Crash(nil, false), "/d")
}

func TestCrashKeepsANewDirectoryOnlyOnceItsParentIsSynced(t *testing.T) {
	m := NewMem()
	if err := m.MkdirAll("/a/b/c", 0o755); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, m.Crash(nil, false), "/a")

	// Each level needs its parent synced.
	syncDir(t, m, "/")
	c := m.Crash(nil, false)
	mustExist(t, c, "/a")
	mustNotExist(t, c, "/a/b")
	syncDir(t, m, "/a/b") // c's parent, but b itself is not durable in a
	mustNotExist(t, m.Crash(nil, false), "/a/b")
	syncDir(t, m, "/a")
	c = m.Crash(nil, false)
	mustExist(t, c, "/a/b/c")
	if names, _ := c.List("/a/b/c"); len(names) != 0 {
		t.Fatalf("/a/b/c holds %v after the crash, want nothing", names)
	}

	// A synced directory holds only its own synced entries.
	syncedFile(t, m, "/a/b/c/f", "f")
	if err := m.MkdirAll("/a/b/c/new", 0o755); err != nil {
		t.Fatal(err)
	}
	names, err := m.Crash(nil, false).List("/a/b/c")
	if err != nil || !slices.Equal(names, []string{"f"}) {
		t.Fatalf("List(/a/b/c) after a crash = %v, %v; want [f]", names, err)
	}
}

func TestMkdirAllSyncedMakesEveryNewLevelDurable(t *testing.T) {
	m := NewMem()
	if err := m.MkdirAll("/x", 0o755); err != nil {
		t.Fatal(err)
	}
	syncDir(t, m, "/")
	if err := MkdirAllSynced(m, "/x/y/z", 0o700); err != nil {
		t.Fatal(err)
	}
	mustExist(t, m.Crash(nil, false), "/x/y/z")
	if err := MkdirAllSynced(m, "/x/y/z", 0o700); err != nil {
		t.Fatalf("MkdirAllSynced on an existing directory = %v", err)
	}
	if err := MkdirAllSynced(m, "rel/dir", 0o700); err != nil {
		t.Fatal(err)
	}
	mustExist(t, m.Crash(nil, false), "rel/dir")
	syncedFile(t, m, "/x/file", "")
	if err := MkdirAllSynced(m, "/x/file/sub", 0o700); err == nil {
		t.Fatal("MkdirAllSynced under a file succeeded")
	}
}

func TestMkdirAllSyncedOnOS(t *testing.T) {
	dir := t.TempDir()
	if err := MkdirAllSynced(OS(), dir+"/a/b", 0o700); err != nil {
		t.Fatal(err)
	}
	if st, err := OS().Stat(dir + "/a/b"); err != nil || !st.IsDir() {
		t.Fatalf("Stat = %v, %v; want a directory", st, err)
	}
}

func TestCrashRenamedDirectoryCarriesItsSyncedEntries(t *testing.T) {
	m := NewMem()
	mkdir(t, m, "/p/tmp")
	syncedFile(t, m, "/p/tmp/seg", "seg")
	if err := m.Rename("/p/tmp", "/p/wal"); err != nil {
		t.Fatal(err)
	}
	c := m.Crash(nil, false)
	mustNotExist(t, c, "/p/wal")
	if got := readFile(t, c, "/p/tmp/seg"); string(got) != "seg" {
		t.Fatalf("/p/tmp/seg = %q after the unsynced rename, want seg", got)
	}
	syncDir(t, m, "/p")
	c = m.Crash(nil, false)
	mustNotExist(t, c, "/p/tmp")
	if got := readFile(t, c, "/p/wal/seg"); string(got) != "seg" {
		t.Fatalf("/p/wal/seg = %q, want seg", got)
	}
	// A new file in the renamed directory needs that directory synced, by
	// its new name.
	g, _ := m.Create("/p/wal/seg2")
	_ = g.Sync()
	mustNotExist(t, m.Crash(nil, false), "/p/wal/seg2")
	syncDir(t, m, "/p/wal")
	mustExist(t, m.Crash(nil, false), "/p/wal/seg2")
}

func TestCrashOfACrashKeepsEverything(t *testing.T) {
	m := NewMem()
	mkdir(t, m, "/d/e")
	syncedFile(t, m, "/d/e/f", "f")
	syncedFile(t, m, "/d/g", "g")
	c := m.Crash(nil, false)
	cc := c.Crash(nil, false)
	for _, n := range []string{"/d/e/f", "/d/g"} {
		if a, b := readFile(t, c, n), readFile(t, cc, n); string(a) != string(b) || len(a) != 1 {
			t.Fatalf("%s: %q after one crash, %q after two", n, a, b)
		}
	}
}

// Synced entry sets taken at different times may bind a directory under
// itself; Crash must still end.
func TestCrashWithADirectoryCycleInSyncedEntries(t *testing.T) {
	m := NewMem()
	mkdir(t, m, "/a/b")
	if err := m.Rename("/a/b", "/b"); err != nil {
		t.Fatal(err)
	}
	if err := m.Rename("/a", "/b/a"); err != nil {
		t.Fatal(err)
	}
	syncDir(t, m, "/")
	syncDir(t, m, "/b")
	// Synced: / -> b, b -> a, a -> b (from before).
	c := m.Crash(nil, false)
	mustExist(t, c, "/b/a")
	mustNotExist(t, c, "/b/a/b")
}
