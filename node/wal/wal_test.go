package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// testRoundTrip saves many Readys of varied sizes, reopens, and expects
// exactly what was saved back.
func testRoundTrip(t *testing.T, cfg Config) {
	w := mustCreate(t, cfg, "member=1 cluster=7")
	r := rand.New(rand.NewPCG(1, 1))
	var want []*raftpb.Entry
	var last *raftpb.HardState
	next := uint64(1)
	for i := range 200 {
		n := r.IntN(5)
		var es []*raftpb.Entry
		for range n {
			data := make([]byte, r.IntN(300))
			for j := range data {
				data[j] = byte(r.IntN(256))
			}
			es = append(es, &raftpb.Entry{Index: proto.Uint64(next), Term: proto.Uint64(uint64(1 + i/50)), Data: data})
			next++
		}
		var st *raftpb.HardState
		if i%3 != 0 {
			st = hs(uint64(1+i/50), 1, next-1)
			last = st
		}
		mustSave(t, w, st, es)
		want = append(want, es...)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, got := reopen(t, cfg)
	defer w2.Close()
	if string(got.md) != "member=1 cluster=7" {
		t.Fatalf("metadata = %q", got.md)
	}
	checkHardState(t, got.st, last)
	if got.snap.GetIndex() != 0 {
		t.Fatalf("snapshot = %v, want none", got.snap)
	}
	checkEntries(t, got.ents, want)
}

func TestRoundTripMem(t *testing.T) {
	cfg, _ := memConfig(0)
	testRoundTrip(t, cfg)
}

func TestRoundTripMemSmallSegments(t *testing.T) {
	cfg, _ := memConfig(4096)
	testRoundTrip(t, cfg)
	if n := len(segments(t, cfg)); n < 10 {
		t.Fatalf("only %d segments with 4 KiB segments; rotation did not happen", n)
	}
}

func TestRoundTripOS(t *testing.T) {
	testRoundTrip(t, Config{FS: vfs.OS(), Dir: filepath.Join(t.TempDir(), "wal"), SegmentSize: 16 << 10})
}

func TestEmptyWALReadsBackMetadataOnly(t *testing.T) {
	cfg, _ := memConfig(0)
	w := mustCreate(t, cfg, "md")
	_ = w.Close()
	w2, got := reopen(t, cfg)
	defer w2.Close()
	if string(got.md) != "md" || got.st.GetTerm() != 0 || got.snap.GetIndex() != 0 || len(got.ents) != 0 {
		t.Fatalf("empty WAL read back %+v", got)
	}
}

func TestAppendAfterReopen(t *testing.T) {
	cfg, _ := memConfig(2048)
	w := mustCreate(t, cfg, "")
	mustSave(t, w, hs(1, 1, 3), ents(1, 5, 1))
	_ = w.Close()
	w, got := reopen(t, cfg)
	checkEntries(t, got.ents, ents(1, 5, 1))
	mustSave(t, w, hs(2, 2, 9), ents(6, 40, 2))
	_ = w.Close()
	w, got = reopen(t, cfg)
	defer w.Close()
	checkHardState(t, got.st, hs(2, 2, 9))
	checkEntries(t, got.ents, append(ents(1, 5, 1), ents(6, 40, 2)...))
}

func TestConflictingEntryReplacesTheRestOfTheLog(t *testing.T) {
	for _, segSize := range []int64{0, 1024} {
		t.Run(fmt.Sprintf("segment=%d", segSize), func(t *testing.T) {
			cfg, _ := memConfig(segSize)
			w := mustCreate(t, cfg, "")
			mustSave(t, w, hs(1, 1, 2), ents(1, 10, 1))
			// A new leader at term 2 overwrites from index 6 and writes less.
			mustSave(t, w, hs(2, 2, 5), ents(6, 7, 2))
			_ = w.Close()
			w, got := reopen(t, cfg)
			want := append(ents(1, 5, 1), ents(6, 7, 2)...)
			checkEntries(t, got.ents, want)
			checkHardState(t, got.st, hs(2, 2, 5))
			// Appending after the overwrite continues from 8, and another
			// conflict after a reopen still applies.
			mustSave(t, w, nil, ents(8, 12, 2))
			mustSave(t, w, hs(3, 3, 7), ents(9, 9, 3))
			_ = w.Close()
			w, got = reopen(t, cfg)
			defer w.Close()
			want = append(want, ents(8, 8, 2)...)
			want = append(want, ents(9, 9, 3)...)
			checkEntries(t, got.ents, want)
		})
	}
}

func TestSnapshotMarkerLimitsEntriesReturned(t *testing.T) {
	cfg, _ := memConfig(0)
	w := mustCreate(t, cfg, "")
	mustSave(t, w, hs(1, 1, 20), ents(1, 20, 1))
	if err := w.SaveSnapshot(snapMeta(10, 1, 1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, hs(1, 1, 22), ents(21, 25, 1))
	_ = w.Close()
	w, got := reopen(t, cfg)
	defer w.Close()
	if !proto.Equal(got.snap, snapMeta(10, 1, 1, 2, 3)) {
		t.Fatalf("snapshot = %v", got.snap)
	}
	checkEntries(t, got.ents, ents(11, 25, 1))
	checkHardState(t, got.st, hs(1, 1, 22))
}

func TestSnapshotFromLeaderSkipsMissingEntries(t *testing.T) {
	// A lagging follower with entries 1..5 receives a snapshot at 100.
	cfg, _ := memConfig(0)
	w := mustCreate(t, cfg, "")
	mustSave(t, w, hs(1, 1, 3), ents(1, 5, 1))
	if err := w.SaveSnapshot(snapMeta(100, 4, 1)); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, hs(4, 2, 100), nil)
	if err := w.Save(nil, ents(7, 7, 4)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Save of an entry below the snapshot: %v, want ErrInvalid", err)
	}
	mustSave(t, w, hs(4, 2, 101), ents(101, 103, 4))
	_ = w.Close()
	w, got := reopen(t, cfg)
	defer w.Close()
	if got.snap.GetIndex() != 100 || got.snap.GetTerm() != 4 {
		t.Fatalf("snapshot = %v", got.snap)
	}
	checkEntries(t, got.ents, ents(101, 103, 4))
	checkHardState(t, got.st, hs(4, 2, 101))
	// The marker with nothing after it yet returns no entries.
	cfg2, _ := memConfig(0)
	w2 := mustCreate(t, cfg2, "")
	mustSave(t, w2, hs(1, 1, 3), ents(1, 5, 1))
	_ = w2.SaveSnapshot(snapMeta(100, 4))
	_ = w2.Close()
	w2, got = reopen(t, cfg2)
	defer w2.Close()
	checkEntries(t, got.ents, nil)
}

func TestSegmentRotation(t *testing.T) {
	const segSize = 1024
	cfg, m := memConfig(segSize)
	w := mustCreate(t, cfg, "md")
	for i := uint64(1); i <= 60; i++ {
		mustSave(t, w, hs(1, 1, i), []*raftpb.Entry{ent(i, 1, string(bytes.Repeat([]byte{'x'}, 100)))})
	}
	_ = w.Close()
	segs := segments(t, cfg)
	if len(segs) < 5 {
		t.Fatalf("%d segments, want at least 5", len(segs))
	}
	prevFirst := uint64(0)
	for i, p := range segs {
		seq, first, _ := parseSegmentName(filepath.Base(p))
		if seq != uint64(i) {
			t.Fatalf("segment %d has sequence %d", i, seq)
		}
		if i > 0 && first <= prevFirst {
			t.Fatalf("segment %s first index %d not above previous %d", p, first, prevFirst)
		}
		prevFirst = first
		fi, err := m.Stat(p)
		if err != nil || fi.Size() != segSize {
			t.Fatalf("segment %s size = %v (%v), want preallocated %d", p, fi.Size(), err, segSize)
		}
		// The first entry in each later segment is the one its name says.
		if i > 0 {
			buf, _ := readFile(m, p)
			scan, err := scanSegment(p, buf, false)
			if err != nil {
				t.Fatal(err)
			}
			var firstEnt *raftpb.Entry
			for _, rec := range scan.recs {
				if rec.kind == kindEntry {
					firstEnt = &raftpb.Entry{}
					_ = proto.Unmarshal(rec.payload, firstEnt)
					break
				}
			}
			if firstEnt == nil || firstEnt.GetIndex() != first {
				t.Fatalf("segment %s: first entry %v, want index %d", p, firstEnt, first)
			}
		}
	}
	w, got := reopen(t, cfg)
	defer w.Close()
	want := make([]*raftpb.Entry, 0, 60)
	for i := uint64(1); i <= 60; i++ {
		want = append(want, ent(i, 1, string(bytes.Repeat([]byte{'x'}, 100))))
	}
	checkEntries(t, got.ents, want)
	checkHardState(t, got.st, hs(1, 1, 60))
}

func TestRecordLargerThanASegment(t *testing.T) {
	cfg, _ := memConfig(512)
	w := mustCreate(t, cfg, "")
	big := ent(1, 1, string(bytes.Repeat([]byte{'b'}, 3000)))
	mustSave(t, w, hs(1, 1, 1), []*raftpb.Entry{big})
	mustSave(t, w, nil, ents(2, 3, 1))
	_ = w.Close()
	w, got := reopen(t, cfg)
	defer w.Close()
	checkEntries(t, got.ents, append([]*raftpb.Entry{big}, ents(2, 3, 1)...))
}

func TestReleaseToRemovesOldSegmentsAndKeepsReplay(t *testing.T) {
	cfg, _ := memConfig(512)
	w := mustCreate(t, cfg, "md")
	mustSave(t, w, hs(1, 1, 0), nil)
	for i := uint64(1); i <= 100; i++ {
		mustSave(t, w, nil, ents(i, i, 1))
	}
	// The HardState is written once, long ago: it must survive the release.
	if err := w.ReleaseTo(100); err != nil {
		t.Fatal(err)
	}
	before := segments(t, cfg)
	if len(before) < 6 {
		t.Fatalf("only %d segments", len(before))
	}
	// Snapshot at 60 taken after entries up to 100 were written: entries
	// 61..100 live in segments older than the marker's and must be kept.
	if err := w.SaveSnapshot(snapMeta(60, 1, 1)); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, nil, ents(101, 110, 1))
	if err := w.ReleaseTo(59); err != nil { // no marker at or below 59
		t.Fatal(err)
	}
	if got := segments(t, cfg); len(got) < len(before) {
		t.Fatalf("ReleaseTo below every marker removed segments: %d -> %d", len(before), len(got))
	}
	if err := w.ReleaseTo(60); err != nil {
		t.Fatal(err)
	}
	after := segments(t, cfg)
	if len(after) >= len(before) || after[0] == before[0] {
		t.Fatalf("ReleaseTo(60) kept every segment: before %v after %v", before, after)
	}
	// The oldest kept segment's first index is at most 61, and the next
	// one (if any) starts above 61: exactly the segments replay needs.
	_, first0, _ := parseSegmentName(filepath.Base(after[0]))
	if first0 > 61 {
		t.Fatalf("oldest kept segment starts at %d: entry 61 was released", first0)
	}
	if len(after) > 1 {
		if _, first1, _ := parseSegmentName(filepath.Base(after[1])); first1 <= 61 {
			t.Fatalf("segment %s (first %d) still kept though the next one also starts at or below 61", after[0], first1)
		}
	}
	_ = w.Close()
	w, got := reopen(t, cfg)
	if string(got.md) != "md" {
		t.Fatalf("metadata after release = %q", got.md)
	}
	checkHardState(t, got.st, hs(1, 1, 0))
	if got.snap.GetIndex() != 60 {
		t.Fatalf("snapshot after release = %v", got.snap)
	}
	checkEntries(t, got.ents, ents(61, 110, 1))
	// Snapshot at 110 then release everything but the last segment's needs.
	if err := w.SaveSnapshot(snapMeta(110, 1, 1)); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, hs(2, 1, 111), ents(111, 111, 2))
	if err := w.ReleaseTo(1000); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	w, got = reopen(t, cfg)
	defer w.Close()
	if got.snap.GetIndex() != 110 {
		t.Fatalf("snapshot = %v", got.snap)
	}
	checkEntries(t, got.ents, ents(111, 111, 2))
	checkHardState(t, got.st, hs(2, 1, 111))
}

func TestSaveDoesExactlyOneFsync(t *testing.T) {
	cfg, m := memConfig(0)
	w := mustCreate(t, cfg, "")
	defer w.Close()
	base := m.SyncCount()
	mustSave(t, w, hs(1, 1, 0), ents(1, 100, 1))
	if got := m.SyncCount() - base; got != 1 {
		t.Fatalf("Save of 100 entries and a HardState did %d fsyncs, want 1", got)
	}
	mustSave(t, w, &raftpb.HardState{}, nil)
	mustSave(t, w, nil, nil)
	if got := m.SyncCount() - base; got != 1 {
		t.Fatalf("empty Saves did %d fsyncs, want 0", got-1)
	}
	mustSave(t, w, hs(1, 1, 50), nil)
	if got := m.SyncCount() - base; got != 1 {
		t.Fatalf("a Save moving only the commit index did %d fsyncs, want 0", got-1)
	}
	mustSave(t, w, hs(2, 1, 50), nil)
	if got := m.SyncCount() - base; got != 2 {
		t.Fatalf("HardState-only Save with a new term did %d fsyncs, want 1", got-1)
	}
	if err := w.SaveSnapshot(snapMeta(50, 1)); err != nil {
		t.Fatal(err)
	}
	if got := m.SyncCount() - base; got != 3 {
		t.Fatalf("SaveSnapshot did %d fsyncs, want 1", got-2)
	}
}

func TestFailedFsyncMakesTheWALRefuseSaves(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpSync, vfs.OpWrite} {
		t.Run(string(op), func(t *testing.T) {
			m := vfs.NewMem()
			ff := vfs.NewFaulty(m)
			cfg := Config{FS: ff, Dir: "/wal"}
			w := mustCreate(t, cfg, "")
			mustSave(t, w, hs(1, 1, 1), ents(1, 3, 1))
			ff.FailAfter(op, 0)
			err := w.Save(hs(1, 1, 3), ents(4, 6, 1))
			if !errors.Is(err, vfs.ErrInjected) {
				t.Fatalf("Save with failing %s = %v, want ErrInjected", op, err)
			}
			// The fault was one-shot: the FS works again, the WAL must not.
			err = w.Save(hs(1, 1, 3), ents(4, 6, 1))
			if !errors.Is(err, ErrFailed) || !errors.Is(err, vfs.ErrInjected) {
				t.Fatalf("Save after failure = %v, want ErrFailed wrapping the cause", err)
			}
			if err := w.SaveSnapshot(snapMeta(2, 1)); !errors.Is(err, ErrFailed) {
				t.Fatalf("SaveSnapshot after failure = %v, want ErrFailed", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			// What was acknowledged is still there after a crash.
			cfg.FS = m.Crash(nil, false)
			w, got := reopen(t, cfg)
			defer w.Close()
			checkEntries(t, got.ents, ents(1, 3, 1))
			checkHardState(t, got.st, hs(1, 1, 1))
		})
	}
}

func TestFailedSegmentCutMakesTheWALRefuseSaves(t *testing.T) {
	m := vfs.NewMem()
	ff := vfs.NewFaulty(m)
	cfg := Config{FS: ff, Dir: "/wal", SegmentSize: 512}
	w := mustCreate(t, cfg, "")
	defer w.Close()
	ff.FailAfter(vfs.OpRename, 0)
	err := w.Save(nil, ents(1, 20, 1))
	if !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("Save needing a new segment with failing rename = %v", err)
	}
	if err := w.Save(nil, ents(1, 1, 1)); !errors.Is(err, ErrFailed) {
		t.Fatalf("Save after failed cut = %v, want ErrFailed", err)
	}
}

func TestSaveRejectsBadEntriesWithoutBreaking(t *testing.T) {
	cfg, m := memConfig(0)
	w := mustCreate(t, cfg, "")
	defer w.Close()
	mustSave(t, w, nil, ents(1, 3, 1))
	base := m.SyncCount()
	for name, es := range map[string][]*raftpb.Entry{
		"gap":            ents(5, 6, 1),
		"not-contiguous": {ent(4, 1, ""), ent(6, 1, "")},
		"index-zero":     {ent(0, 1, "")},
		"nil":            {nil},
	} {
		if err := w.Save(hs(1, 1, 1), es); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: Save = %v, want ErrInvalid", name, err)
		}
	}
	if m.SyncCount() != base {
		t.Fatal("a rejected Save reached the disk")
	}
	mustSave(t, w, nil, ents(4, 4, 1))
}

func TestCreateAndOpenErrors(t *testing.T) {
	cfg, m := memConfig(0)
	if Exist(m, cfg.Dir) {
		t.Fatal("Exist before Create")
	}
	if _, err := Open(cfg); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of missing WAL = %v, want ErrNotExist", err)
	}
	w := mustCreate(t, cfg, "")
	if !Exist(m, cfg.Dir) {
		t.Fatal("Exist after Create = false")
	}
	if _, err := Create(cfg, nil); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create = %v, want ErrExist", err)
	}
	if _, _, _, _, err := w.ReadAll(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := w.ReadAll(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("second ReadAll = %v, want ErrInvalid", err)
	}
	_ = w.Close()
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	if err := w.Save(hs(1, 1, 1), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close = %v", err)
	}
	// A non-empty directory that is not a WAL is refused too.
	if err := m.MkdirAll("/other", 0o755); err != nil {
		t.Fatal(err)
	}
	f, _ := m.Create("/other/file")
	_ = f.Close()
	if _, err := Create(Config{FS: m, Dir: "/other"}, nil); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create in non-empty dir = %v, want ErrExist", err)
	}
	// An existing empty directory is fine.
	if err := m.MkdirAll("/empty", 0o755); err != nil {
		t.Fatal(err)
	}
	w2, err := Create(Config{FS: m, Dir: "/empty"}, nil)
	if err != nil {
		t.Fatalf("Create in empty dir: %v", err)
	}
	_ = w2.Close()
	if _, err := Open(Config{FS: m}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open without Dir = %v, want ErrInvalid", err)
	}
}

func TestReadAllAfterSaveIsRefused(t *testing.T) {
	cfg, _ := memConfig(0)
	w := mustCreate(t, cfg, "")
	mustSave(t, w, nil, ents(1, 1, 1))
	_ = w.Close()
	w, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	mustSave(t, w, nil, ents(2, 2, 1))
	if _, _, _, _, err := w.ReadAll(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ReadAll after Save = %v, want ErrInvalid", err)
	}
}

func TestLeftoverTempSegmentIsRemovedOnOpen(t *testing.T) {
	cfg, m := memConfig(0)
	w := mustCreate(t, cfg, "")
	mustSave(t, w, nil, ents(1, 2, 1))
	_ = w.Close()
	tmp := filepath.Join(cfg.Dir, segmentName(1, 3)+tmpExt)
	f, _ := m.Create(tmp)
	_, _ = f.Write([]byte("half a segment"))
	_ = f.Close()
	w, got := reopen(t, cfg)
	defer w.Close()
	checkEntries(t, got.ents, ents(1, 2, 1))
	if _, err := m.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("leftover %s still there: %v", tmp, err)
	}
}

func TestReleaseAfterOneSaveSpanningSegments(t *testing.T) {
	cfg, _ := memConfig(512)
	w := mustCreate(t, cfg, "md")
	mustSave(t, w, hs(1, 1, 80), ents(1, 80, 1)) // one Save, several segments
	if n := len(segments(t, cfg)); n < 4 {
		t.Fatalf("%d segments, want several", n)
	}
	for _, p := range segments(t, cfg)[1:] {
		_, first, _ := parseSegmentName(filepath.Base(p))
		recs, _ := records(t, cfg.FS, p)
		for _, rec := range recs {
			if rec.kind == kindEntry {
				e := &raftpb.Entry{}
				_ = proto.Unmarshal(rec.payload, e)
				if e.GetIndex() != first {
					t.Fatalf("segment %s: first entry %d, name says %d", p, e.GetIndex(), first)
				}
				break
			}
		}
	}
	if err := w.SaveSnapshot(snapMeta(50, 1)); err != nil {
		t.Fatal(err)
	}
	before := len(segments(t, cfg))
	if err := w.ReleaseTo(50); err != nil {
		t.Fatal(err)
	}
	if after := len(segments(t, cfg)); after >= before {
		t.Fatalf("ReleaseTo(50) removed nothing (%d segments)", after)
	}
	_ = w.Close()
	w, got := reopen(t, cfg)
	defer w.Close()
	checkEntries(t, got.ents, ents(51, 80, 1))
}

func TestDefaultSegmentSizeIsPreallocated(t *testing.T) {
	m := vfs.NewMem()
	w := mustCreate(t, Config{FS: m, Dir: "/wal"}, "")
	mustSave(t, w, hs(1, 1, 1), ents(1, 1, 1))
	_ = w.Close()
	fi, err := m.Stat(filepath.Join("/wal", segmentName(0, 0)))
	if err != nil || fi.Size() != DefaultSegmentSize {
		t.Fatalf("segment size = %v (%v), want %d", fi, err, DefaultSegmentSize)
	}
}
