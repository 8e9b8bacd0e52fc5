package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
)

// testFS runs the same behavioural checks against every FS implementation.
func testFS(t *testing.T, name string, newFS func(t *testing.T) (FS, string)) {
	t.Run(name+"/WriteReadSeekTruncate", func(t *testing.T) {
		fsys, root := newFS(t)
		p := filepath.Join(root, "a")
		f, err := fsys.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("hello world")); err != nil {
			t.Fatal(err)
		}
		if sz, err := f.Size(); err != nil || sz != 11 {
			t.Fatalf("Size = %d, %v; want 11", sz, err)
		}
		buf := make([]byte, 5)
		if n, err := f.ReadAt(buf, 6); err != nil || n != 5 || string(buf) != "world" {
			t.Fatalf("ReadAt = %d %q %v", n, buf, err)
		}
		if n, err := f.ReadAt(buf, 8); n != 3 || err != io.EOF {
			t.Fatalf("short ReadAt = %d, %v; want 3, EOF", n, err)
		}
		if off, err := f.Seek(2, io.SeekStart); err != nil || off != 2 {
			t.Fatalf("Seek = %d, %v", off, err)
		}
		if _, err := f.Write([]byte("LL")); err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(20); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := fsys.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]byte("heLLo world"), make([]byte, 9)...)
		if !bytes.Equal(got, want) {
			t.Fatalf("contents = %q, want %q", got, want)
		}
		if _, err := r.Write([]byte("x")); err == nil {
			t.Fatal("Write on a read-only file succeeded")
		}
		_ = r.Close()
		rw, err := fsys.OpenReadWrite(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rw.Write([]byte("J")); err != nil {
			t.Fatal(err)
		}
		if err := rw.Truncate(5); err != nil {
			t.Fatal(err)
		}
		_ = rw.Close()
		fi, err := fsys.Stat(p)
		if err != nil || fi.Size() != 5 || fi.IsDir() {
			t.Fatalf("Stat = %v, %v; want size 5 file", fi, err)
		}
		// Create truncates an existing file.
		f2, err := fsys.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if sz, _ := f2.Size(); sz != 0 {
			t.Fatalf("Create of existing file left size %d", sz)
		}
		_ = f2.Close()
	})
	t.Run(name+"/Namespace", func(t *testing.T) {
		fsys, root := newFS(t)
		d := filepath.Join(root, "d", "e")
		if err := fsys.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"c", "a", "b"} {
			f, err := fsys.Create(filepath.Join(d, n))
			if err != nil {
				t.Fatal(err)
			}
			_ = f.Close()
		}
		if err := fsys.MkdirAll(filepath.Join(d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		names, err := fsys.List(d)
		if err != nil || !slices.Equal(names, []string{"a", "b", "c", "sub"}) {
			t.Fatalf("List = %v, %v", names, err)
		}
		if err := fsys.Rename(filepath.Join(d, "a"), filepath.Join(d, "z")); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Remove(filepath.Join(d, "b")); err != nil {
			t.Fatal(err)
		}
		if err := fsys.SyncDir(d); err != nil {
			t.Fatal(err)
		}
		names, _ = fsys.List(d)
		if !slices.Equal(names, []string{"c", "sub", "z"}) {
			t.Fatalf("List after rename/remove = %v", names)
		}
		if _, err := fsys.Open(filepath.Join(d, "a")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open of renamed-away file: %v, want ErrNotExist", err)
		}
		if err := fsys.Remove(filepath.Join(d, "nope")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Remove missing: %v, want ErrNotExist", err)
		}
		if _, err := fsys.Create(filepath.Join(root, "missing", "f")); err == nil {
			t.Fatal("Create in a missing directory succeeded")
		}
		if err := fsys.Remove(d); err == nil {
			t.Fatal("Remove of a non-empty directory succeeded")
		}
		// Rename a directory onto a missing name moves its contents.
		moved := filepath.Join(root, "moved")
		if err := fsys.Rename(d, moved); err != nil {
			t.Fatal(err)
		}
		names, err = fsys.List(moved)
		if err != nil || !slices.Equal(names, []string{"c", "sub", "z"}) {
			t.Fatalf("List of moved dir = %v, %v", names, err)
		}
		if err := fsys.RemoveAll(filepath.Join(root, "d")); err != nil {
			t.Fatal(err)
		}
		if err := fsys.RemoveAll(moved); err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.Stat(moved); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stat after RemoveAll: %v", err)
		}
		if err := fsys.RemoveAll(moved); err != nil {
			t.Fatalf("RemoveAll of a missing dir: %v", err)
		}
	})
}

func TestFSImplementations(t *testing.T) {
	testFS(t, "OS", func(t *testing.T) (FS, string) { return OS(), t.TempDir() })
	testFS(t, "Mem", func(t *testing.T) (FS, string) {
		m := NewMem()
		if err := m.MkdirAll("/root", 0o755); err != nil {
			t.Fatal(err)
		}
		return m, "/root"
	})
}
