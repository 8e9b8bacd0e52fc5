package etcdwal

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/vfs"
)

func importConfig(fsys vfs.FS, memberDir string) ImportConfig {
	return ImportConfig{
		FS:          fsys,
		WALDir:      filepath.Join(memberDir, "wal"),
		SnapDir:     filepath.Join(memberDir, "snap"),
		Metadata:    cairnMetadata,
		SegmentSize: 1 << 12, // small: the imported log spans several segments
	}
}

// readCairn opens the Cairn WAL in dir and returns what ReadAll gives.
func readCairn(t *testing.T, fsys vfs.FS, dir string) (md []byte, hs *raftpb.HardState, snap *raftpb.SnapshotMetadata, es []*raftpb.Entry) {
	t.Helper()
	w, err := wal.Open(wal.Config{FS: fsys, Dir: dir, SegmentSize: 1 << 12})
	if err != nil {
		t.Fatalf("opening the imported WAL: %v", err)
	}
	defer w.Close()
	md, hs, snap, es, err = w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return md, hs, snap, es
}

// checkImported checks that the Cairn WAL in walDir holds the log want
// (read independently from etcd's files) under Cairn's metadata.
func checkImported(t *testing.T, fsys vfs.FS, walDir string, want *Log) {
	t.Helper()
	if f, err := Detect(fsys, walDir); err != nil || f != FormatCairn {
		t.Fatalf("Detect after import: %v, %v", f, err)
	}
	md, hs, snap, es := readCairn(t, fsys, walDir)
	var meta struct {
		MemberID  uint64 `json:"memberID"`
		ClusterID uint64 `json:"clusterID"`
	}
	if err := json.Unmarshal(md, &meta); err != nil || meta.MemberID != want.Metadata.NodeID || meta.ClusterID != want.Metadata.ClusterID {
		t.Fatalf("metadata %s (%v), want %+v", md, err, want.Metadata)
	}
	// The values: a HardState holding only unknown fields is empty to
	// raft and Cairn's WAL does not store it.
	if hs.GetTerm() != want.HardState.GetTerm() || hs.GetVote() != want.HardState.GetVote() || hs.GetCommit() != want.HardState.GetCommit() {
		t.Fatalf("hardstate %v, want %v", hs, want.HardState)
	}
	if want.Snapshot.GetIndex() == 0 {
		if snap.GetIndex() != 0 {
			t.Fatalf("snapshot marker %v, want none", snap)
		}
	} else if !proto.Equal(snap, want.Snapshot) {
		t.Fatalf("snapshot marker %v, want %v", snap, want.Snapshot)
	}
	checkEntries(t, es, want.Entries...)
}

// checkBackup checks that etcd's WAL files were moved aside unchanged.
func checkBackup(t *testing.T, fsys vfs.FS, walDir string, orig map[string][]byte) {
	t.Helper()
	n := 0
	for p, b := range orig {
		if filepath.Dir(p) != walDir {
			// etcd's snapshot files stay where they were.
			if got := readMem(t, fsys, p); !bytes.Equal(got, b) {
				t.Fatalf("%s changed", p)
			}
			continue
		}
		n++
		moved := filepath.Join(BackupDir(walDir), filepath.Base(p))
		if got := readMem(t, fsys, moved); !bytes.Equal(got, b) {
			t.Fatalf("%s: %d bytes, want etcd's %d unchanged", moved, len(got), len(b))
		}
	}
	if names, err := fsys.List(BackupDir(walDir)); err != nil || len(names) != n {
		t.Fatalf("backup holds %v (%v), want %d files", names, err, n)
	}
}

// TestImportFixtures imports the WALs real etcd wrote and checks the Cairn
// WAL reads back as the same log, the one etcd reported.
func TestImportFixtures(t *testing.T) {
	for _, name := range []string{"member", "restored"} {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			m := vfs.NewMem()
			orig := f.toMem(t, m, "/data/member")
			cfg := importConfig(m, "/data/member")
			before, err := Read(m, cfg.WALDir, cfg.SnapDir)
			if err != nil {
				t.Fatal(err)
			}
			l, err := Import(cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkImported(t, m, cfg.WALDir, before)
			checkImported(t, m, cfg.WALDir, l)
			checkBackup(t, m, cfg.WALDir, orig)

			// What etcd said of these files, through the Cairn WAL.
			_, hs, snap, es := readCairn(t, m, cfg.WALDir)
			r := f.expect.EtcdRestart
			last := snap.GetIndex()
			if len(es) > 0 {
				last = es[len(es)-1].GetIndex()
			}
			if snap.GetIndex() != r.SnapshotIndex || hs.GetCommit() != r.CommitIndex || last != r.LastIndex ||
				l.Metadata.NodeID != hexID(t, f.expect.MemberID) {
				t.Fatalf("imported snapshot %d, commit %d, last index %d; etcd: %+v", snap.GetIndex(), hs.GetCommit(), last, r)
			}

			// Once is enough.
			if _, err := Import(cfg); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("second import: %v", err)
			}
		})
	}
}

// TestImportOS runs an import on the real file system.
func TestImportOS(t *testing.T) {
	f := loadFixture(t, "member")
	dir := filepath.Join(t.TempDir(), "member")
	if err := os.CopyFS(dir, os.DirFS(f.dir())); err != nil {
		t.Fatal(err)
	}
	cfg := importConfig(vfs.OS(), dir)
	before, err := Read(vfs.OS(), cfg.WALDir, cfg.SnapDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Import(cfg); err != nil {
		t.Fatal(err)
	}
	checkImported(t, vfs.OS(), cfg.WALDir, before)
	after, err := Read(vfs.OS(), BackupDir(cfg.WALDir), cfg.SnapDir)
	if err != nil {
		t.Fatalf("the moved etcd WAL no longer reads: %v", err)
	}
	checkEntries(t, after.Entries, before.Entries...)
	for _, leftover := range []string{stagingDir(cfg.WALDir), stagingDir(cfg.WALDir) + ".tmp"} {
		if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s left behind: %v", leftover, err)
		}
	}
}

// TestImportSynthetic imports a multi-segment etcd WAL with overwritten
// entries and a torn tail.
func TestImportSynthetic(t *testing.T) {
	m := vfs.NewMem()
	w := threeSegments()
	w.entries(ents(24, 26, 3)...) // replaces 24 and 25
	w.state(hardState(3, 2, 25))
	w.entries(ent(27, 3, strings.Repeat("z", 100)))
	w.write(t, m, "/data/member/wal", 1<<10)
	p := filepath.Join("/data/member/wal", SegmentName(2, 21))
	b := readMem(t, m, p)
	offs := offsets(t, b)
	writeFile(t, m, p, b[:offs[len(offs)-1]+50]) // tear entry 27
	cfg := importConfig(m, "/data/member")
	cfg.SnapDir = ""
	cfg.SegmentSize = 256
	l, err := Import(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if l.TornTail == nil || l.TornTail.Offset != offs[len(offs)-1] {
		t.Fatalf("torn tail %v", l.TornTail)
	}
	want := append(append(ents(16, 20, 1), ents(21, 23, 2)...), ents(24, 26, 3)...)
	checkEntries(t, l.Entries, want...)
	checkImported(t, m, cfg.WALDir, l)
	if names, _ := m.List(cfg.WALDir); len(names) < 2 {
		t.Fatalf("want the import to span segments, got %v", names)
	}
}

func TestImportRefuses(t *testing.T) {
	t.Run("no WAL", func(t *testing.T) {
		if _, err := Import(importConfig(vfs.NewMem(), "/d")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	})
	t.Run("Cairn WAL", func(t *testing.T) {
		m := vfs.NewMem()
		cairnWAL(t, m, "/d/wal")
		if _, err := Import(importConfig(m, "/d")); !errors.Is(err, fs.ErrExist) {
			t.Fatal(err)
		}
	})
	t.Run("no metadata func", func(t *testing.T) {
		m := vfs.NewMem()
		threeSegments().write(t, m, "/d/wal", 0)
		cfg := importConfig(m, "/d")
		cfg.Metadata = nil
		if _, err := Import(cfg); !errors.Is(err, wal.ErrInvalid) {
			t.Fatal(err)
		}
	})
	t.Run("backup exists", func(t *testing.T) {
		m := vfs.NewMem()
		threeSegments().write(t, m, "/d/wal", 0)
		writeFile(t, m, "/d/wal.etcd-imported/x", nil)
		if _, err := Import(importConfig(m, "/d")); !errors.Is(err, fs.ErrExist) {
			t.Fatal(err)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		m := vfs.NewMem()
		threeSegments().write(t, m, "/d/wal", 0)
		p := filepath.Join("/d/wal", SegmentName(0, 0))
		b := readMem(t, m, p)
		b[lastDataByte(b, offsets(t, b)[4])] ^= 1
		writeFile(t, m, p, b)
		if _, err := Import(importConfig(m, "/d")); !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
		if f, err := Detect(m, "/d/wal"); f != FormatEtcd || err != nil {
			t.Fatalf("after a refused import: %v %v", f, err)
		}
		if names, _ := m.List("/d"); len(names) != 1 {
			t.Fatalf("a refused import left %v", names)
		}
	})
	t.Run("marker without conf state", func(t *testing.T) {
		m := vfs.NewMem()
		w := newEtcdLog(md)
		w.entries(ents(1, 5, 1)...)
		w.marker(3, 1, nil)
		w.state(hardState(1, 1, 5))
		w.write(t, m, "/d/wal", 0)
		if _, err := Import(importConfig(m, "/d")); err == nil || !strings.Contains(err.Error(), "conf state") {
			t.Fatal(err)
		}
	})
	t.Run("metadata func fails", func(t *testing.T) {
		m := vfs.NewMem()
		threeSegments().write(t, m, "/d/wal", 0)
		cfg := importConfig(m, "/d")
		boom := errors.New("boom")
		cfg.Metadata = func(Metadata) ([]byte, error) { return nil, boom }
		if _, err := Import(cfg); !errors.Is(err, boom) {
			t.Fatal(err)
		}
	})
}

// TestImportInterrupted stops an import between moving etcd's WAL aside
// and moving the Cairn WAL into its place: Detect says so and Import
// finishes the job.
func TestImportInterrupted(t *testing.T) {
	f := loadFixture(t, "member")
	m := vfs.NewMem()
	orig := f.toMem(t, m, "/data/member")
	faulty := vfs.NewFaulty(m)
	cfg := importConfig(faulty, "/data/member")
	want, err := Read(m, cfg.WALDir, cfg.SnapDir)
	if err != nil {
		t.Fatal(err)
	}
	faulty.SetHook(func(op vfs.Op, name string) error {
		if op == vfs.OpRename && name == stagingDir(cfg.WALDir) {
			return vfs.ErrInjected
		}
		return nil
	})
	if _, err := Import(cfg); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("import: %v", err)
	}
	if format, err := Detect(m, cfg.WALDir); format != FormatImportInterrupted || err != nil {
		t.Fatalf("Detect: %v, %v", format, err)
	}
	if _, err := Read(m, cfg.WALDir, ""); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of the emptied WAL dir: %v", err)
	}
	cfg.FS = m
	l, err := Import(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, l.Entries, want.Entries...)
	checkImported(t, m, cfg.WALDir, want)
	checkBackup(t, m, cfg.WALDir, orig)
}

// TestImportCrash fails each file-system operation of an import in turn,
// then either retries at once or cuts the power (keeping only what was
// synced, possibly with torn unsynced writes) and retries: every retry must
// end with the Cairn WAL holding etcd's log and etcd's WAL moved aside
// unchanged, whatever the point of failure.
func TestImportCrash(t *testing.T) {
	f := loadFixture(t, "member")
	base := vfs.NewMem()
	orig := f.toMem(t, base, "/data/member")
	cfg0 := importConfig(base, "/data/member")
	want, err := Read(base, cfg0.WALDir, cfg0.SnapDir)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, mode := range []string{"retry", "crash", "crash-tear"} {
		for n := 1; ; n++ {
			m := base.Crash(nil, false) // a fresh copy of the synced fixture
			faulty := vfs.NewFaulty(m)
			ops := 0
			var failed string
			faulty.SetHook(func(op vfs.Op, name string) error {
				ops++
				if ops == n {
					failed = string(op) + " " + name
					return vfs.ErrInjected
				}
				return nil
			})
			_, err := Import(importConfig(faulty, "/data/member"))
			if faulty.Injected() == 0 {
				if err != nil {
					t.Fatalf("%s: import without a fault: %v", mode, err)
				}
				if n < 20 {
					t.Fatalf("only %d file-system operations: the hook is not seeing the import", n)
				}
				t.Logf("%s: failed each of %d operations", mode, n-1)
				break
			}
			// A failed operation either fails the import or was one whose
			// failure is harmless (wal.Create takes a failed List of a
			// directory it is about to create for an absent one).
			if err == nil {
				t.Logf("%s: op %d (%s) failed, import succeeded", mode, n, failed)
			}
			after := vfs.FS(m)
			switch mode {
			case "crash":
				after = m.Crash(nil, false)
			case "crash-tear":
				after = m.Crash(rng, true)
			}
			format, err := Detect(after, cfg0.WALDir)
			if err != nil {
				t.Fatalf("%s, op %d: Detect: %v", mode, n, err)
			}
			if format != FormatCairn {
				if _, err := Import(importConfig(after, "/data/member")); err != nil {
					t.Fatalf("%s, op %d (%v): import after the failure: %v", mode, n, format, err)
				}
			}
			checkImported(t, after, cfg0.WALDir, want)
			checkBackup(t, after, cfg0.WALDir, orig)
		}
	}
}
