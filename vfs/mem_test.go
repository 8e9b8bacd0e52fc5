package vfs

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

func readFile(t *testing.T, fsys FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func syncDir(t *testing.T, m *MemFS, dir string) {
	t.Helper()
	if err := m.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
}

func writeAll(t *testing.T, f File, b []byte) {
	t.Helper()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestCrashKeepsSyncedBytesOnly(t *testing.T) {
	m := NewMem()
	f, err := m.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, f, []byte("synced"))
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	writeAll(t, f, []byte("-unsynced"))
	g, _ := m.Create("never-synced")
	writeAll(t, g, []byte("lost"))
	syncDir(t, m, ".")

	c := m.Crash(rand.New(rand.NewPCG(1, 2)), false)
	if got := readFile(t, c, "a"); string(got) != "synced" {
		t.Fatalf("after crash a = %q, want %q", got, "synced")
	}
	if got := readFile(t, c, "never-synced"); len(got) != 0 {
		t.Fatalf("after crash never-synced = %q, want empty (file exists, contents lost)", got)
	}
	// The original keeps everything and stays usable.
	if got := readFile(t, m, "a"); string(got) != "synced-unsynced" {
		t.Fatalf("original a = %q", got)
	}
	if m.SyncCount() != 1 || c.SyncCount() != 0 {
		t.Fatalf("SyncCount = %d (orig), %d (crashed); want 1, 0", m.SyncCount(), c.SyncCount())
	}
}

func TestCrashOverwriteInPreallocatedFile(t *testing.T) {
	m := NewMem()
	f, _ := m.Create("seg")
	if err := f.Truncate(64); err != nil {
		t.Fatal(err)
	}
	writeAll(t, f, []byte("AAAA"))
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	writeAll(t, f, []byte("BBBB"))
	if err := f.Truncate(8); err != nil { // unsynced shrink is lost
		t.Fatal(err)
	}
	syncDir(t, m, ".")
	want := append([]byte("AAAA"), make([]byte, 60)...)
	if got := readFile(t, m.Crash(nil, true), "seg"); !bytes.Equal(got, want) {
		t.Fatalf("crash with nil rand = %q, want %q", got, want)
	}
}

func TestCrashTearKeepsAPrefixOfUnsyncedBytes(t *testing.T) {
	seen := map[int]bool{}
	for seed := uint64(0); seed < 200; seed++ {
		m := NewMem()
		f, _ := m.Create("log")
		writeAll(t, f, []byte("0123"))
		_ = f.Sync()
		writeAll(t, f, []byte("456789"))
		syncDir(t, m, ".")
		got := readFile(t, m.Crash(rand.New(rand.NewPCG(seed, 7)), true), "log")
		full := "0123456789"
		if len(got) < 4 || len(got) > len(full) || string(got) != full[:len(got)] {
			t.Fatalf("seed %d: torn file %q is not a prefix of %q keeping the synced %q", seed, got, full, "0123")
		}
		seen[len(got)] = true
	}
	for k := 4; k <= 10; k++ {
		if !seen[k] {
			t.Fatalf("over 200 seeds no crash kept exactly %d bytes; seen %v", k, seen)
		}
	}
}

func TestCrashTearInPreallocatedFileKeepsPrefixOfOverwrite(t *testing.T) {
	for seed := uint64(0); seed < 50; seed++ {
		m := NewMem()
		f, _ := m.Create("seg")
		_ = f.Truncate(16)
		_ = f.Sync()
		_, _ = f.Seek(4, io.SeekStart)
		writeAll(t, f, []byte("abcdef"))
		syncDir(t, m, ".")
		got := readFile(t, m.Crash(rand.New(rand.NewPCG(seed, 1)), true), "seg")
		if len(got) != 16 {
			t.Fatalf("seed %d: size %d, want 16", seed, len(got))
		}
		k := bytes.IndexByte(got[4:], 0)
		if k < 0 {
			k = 12
		}
		if k > 6 || string(got[4:4+k]) != "abcdef"[:k] || !bytes.Equal(got[4+k:], make([]byte, 12-k)) || !bytes.Equal(got[:4], make([]byte, 4)) {
			t.Fatalf("seed %d: torn contents %q are not zeros + prefix of abcdef + zeros", seed, got)
		}
	}
}

func TestCrashIsDeterministicForASeed(t *testing.T) {
	build := func() *MemFS {
		m := NewMem()
		for i := range 5 {
			f, _ := m.Create(fmt.Sprintf("f%d", i))
			writeAll(t, f, []byte("synced"))
			_ = f.Sync()
			writeAll(t, f, bytes.Repeat([]byte{byte('a' + i)}, 100))
		}
		syncDir(t, m, ".")
		return m
	}
	a := build().Crash(rand.New(rand.NewPCG(42, 42)), true)
	b := build().Crash(rand.New(rand.NewPCG(42, 42)), true)
	for i := range 5 {
		n := fmt.Sprintf("f%d", i)
		if !bytes.Equal(readFile(t, a, n), readFile(t, b, n)) {
			t.Fatalf("file %s differs between two crashes with the same seed", n)
		}
	}
}

func TestSyncCopiesOnlyWhatChangedButKeepsEverything(t *testing.T) {
	m := NewMem()
	f, _ := m.Create("x")
	_ = f.Truncate(32)
	_ = f.Sync()
	_, _ = f.Seek(30, io.SeekStart)
	writeAll(t, f, []byte("XYZW")) // grows the file to 34
	_ = f.Sync()
	_ = f.Truncate(10)
	_ = f.Truncate(20) // shrink then regrow: bytes 10..20 must read as zeros
	_ = f.Sync()
	syncDir(t, m, ".")
	got := readFile(t, m.Crash(nil, false), "x")
	if !bytes.Equal(got, make([]byte, 20)) {
		t.Fatalf("after shrink/regrow/sync crash = %q, want 20 zero bytes", got)
	}
}

func TestMemFSConcurrentUse(t *testing.T) {
	m := NewMem()
	if err := m.MkdirAll("d", 0o755); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("d/f%d", w)
			f, err := m.Create(name)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range 200 {
				if _, err := f.Write([]byte{byte(i)}); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					if err := f.Sync(); err != nil {
						t.Error(err)
						return
					}
					_ = m.Crash(rand.New(rand.NewPCG(uint64(w), uint64(i))), true)
				}
				_, _ = m.List("d")
			}
			_ = f.Sync()
			_ = f.Close()
		}()
	}
	wg.Wait()
	if got := m.SyncCount(); got != 8*21 {
		t.Fatalf("SyncCount = %d, want %d", got, 8*21)
	}
	syncDir(t, m, ".")
	syncDir(t, m, "d")
	c := m.Crash(nil, false)
	for w := range 8 {
		b := readFile(t, c, fmt.Sprintf("d/f%d", w))
		if len(b) != 200 || b[199] != 199 {
			t.Fatalf("file %d after concurrent writes: len %d", w, len(b))
		}
	}
}
