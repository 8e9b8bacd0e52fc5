package vfs

import (
	"errors"
	"io"
	"io/fs"
	"testing"
)

func TestNoSyncBehavesAsTheFSItWraps(t *testing.T) {
	testFS(t, "NoSync(OS)", func(t *testing.T) (FS, string) { return NoSync(OS()), t.TempDir() })
}

// TestNoSyncMakesNothingDurable: what is written through NoSync and
// "synced" is still lost by a power cut, and the wrapped file system
// never sees a sync.
func TestNoSyncMakesNothingDurable(t *testing.T) {
	m := NewMem()
	fsys := NoSync(m)
	if err := fsys.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Create("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("record")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync = %v, want nil", err)
	}
	if err := fsys.SyncDir("/d"); err != nil {
		t.Fatalf("SyncDir = %v, want nil", err)
	}
	rw, err := fsys.OpenReadWrite("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := m.SyncCount(); n != 0 {
		t.Fatalf("the wrapped file system saw %d syncs, want 0", n)
	}
	// Nor did the directory sync reach it: the directory is gone.
	if _, err := m.Crash(nil, false).Stat("/d"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after a crash Stat(/d) = %v, want not exist: SyncDir went through NoSync", err)
	}
	// With the directories synced behind NoSync's back, the file is there,
	// empty.
	for _, d := range []string{"/", "/d"} {
		if err := m.SyncDir(d); err != nil {
			t.Fatal(err)
		}
	}
	after := m.Crash(nil, false)
	g, err := after.Open("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(g)
	if len(b) != 0 {
		t.Fatalf("after a crash the file holds %q, want nothing: no write was ever synced", b)
	}
}
