package wal

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap/zaptest/observer"
)

func patchFile(t *testing.T, fsys vfs.FS, path string, off int64, b []byte) {
	t.Helper()
	f, err := fsys.OpenReadWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// records frames the records of a (good) segment file.
func records(t *testing.T, fsys vfs.FS, path string) ([]record, []byte) {
	t.Helper()
	buf, err := readFile(fsys, path)
	if err != nil {
		t.Fatal(err)
	}
	scan, err := scanSegment(path, buf, true)
	if err != nil || scan.torn {
		t.Fatalf("scan %s: %v torn=%v", path, err, scan.torn)
	}
	return scan.recs, buf
}

func expectCorrupt(t *testing.T, cfg Config, file string, off int64) {
	t.Helper()
	w, err := Open(cfg)
	if err == nil {
		_ = w.Close()
		t.Fatalf("Open succeeded; want ErrCorrupt at %s:%d", file, off)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != file || ce.Offset != off {
		t.Fatalf("Open = %v, want a CorruptError at %s:%d", err, file, off)
	}
}

// twentyEntries makes a one-segment WAL with entries 1..20, one per Save.
func twentyEntries(t *testing.T) (Config, *vfs.MemFS, string) {
	cfg, m := memConfig(0)
	w := mustCreate(t, cfg, "md")
	for i := uint64(1); i <= 20; i++ {
		mustSave(t, w, nil, ents(i, i, 1))
	}
	_ = w.Close()
	return cfg, m, segments(t, cfg)[0]
}

func TestFlippedBitInTheMiddleIsCorrupt(t *testing.T) {
	cfg, m, path := twentyEntries(t)
	recs, buf := records(t, m, path)
	mid := recs[10] // an entry record with valid records after it
	b := buf[mid.off+headerSize+3] ^ 0x10
	patchFile(t, m, path, mid.off+headerSize+3, []byte{b})
	expectCorrupt(t, cfg, path, mid.off)
}

func TestFlippedBitInALengthFieldIsCorrupt(t *testing.T) {
	cfg, m, path := twentyEntries(t)
	recs, buf := records(t, m, path)
	mid := recs[7]
	patchFile(t, m, path, mid.off+1, []byte{buf[mid.off+1] ^ 0x01})
	expectCorrupt(t, cfg, path, mid.off)
}

func TestFlippedBitInANonLastSegmentIsCorrupt(t *testing.T) {
	cfg, m := memConfig(512)
	w := mustCreate(t, cfg, "md")
	for i := uint64(1); i <= 40; i++ {
		mustSave(t, w, nil, ents(i, i, 1))
	}
	_ = w.Close()
	segs := segments(t, cfg)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	// The very last record of a non-last segment: even with nothing after
	// it in its file, it cannot be a torn write.
	recs, buf := records(t, m, segs[1])
	last := recs[len(recs)-1]
	patchFile(t, m, segs[1], last.off+headerSize+1, []byte{buf[last.off+headerSize+1] ^ 0x80})
	expectCorrupt(t, cfg, segs[1], last.off)
}

func TestUndecodablePayloadWithGoodCRCIsCorrupt(t *testing.T) {
	for _, which := range []string{"middle", "last"} {
		t.Run(which, func(t *testing.T) {
			cfg, m, path := twentyEntries(t)
			recs, _ := records(t, m, path)
			rec := recs[10]
			if which == "last" {
				rec = recs[len(recs)-1]
			}
			garbage := bytes.Repeat([]byte{0xff}, len(rec.payload))
			patchFile(t, m, path, rec.off, appendRecord(nil, rec.off, kindEntry, garbage))
			expectCorrupt(t, cfg, path, rec.off)
		})
	}
}

func TestUnknownKindWithGoodCRCIsCorrupt(t *testing.T) {
	cfg, m, path := twentyEntries(t)
	recs, _ := records(t, m, path)
	rec := recs[5]
	patchFile(t, m, path, rec.off, appendRecord(nil, rec.off, kind(42), rec.payload))
	expectCorrupt(t, cfg, path, rec.off)
}

func TestRecordCopiedToAnotherOffsetIsCorrupt(t *testing.T) {
	cfg, m, path := twentyEntries(t)
	recs, buf := records(t, m, path)
	// Overwrite record 8 with record 9's bytes (same size): its CRC was
	// computed for another offset.
	a, b := recs[8], recs[9]
	if b.off-a.off != recs[10].off-b.off {
		t.Fatal("records 8 and 9 differ in size; pick others")
	}
	patchFile(t, m, path, a.off, bytes.Clone(buf[b.off:recs[10].off]))
	expectCorrupt(t, cfg, path, a.off)
}

func TestMissingSegmentIsCorrupt(t *testing.T) {
	cfg, m := memConfig(512)
	w := mustCreate(t, cfg, "md")
	for i := uint64(1); i <= 40; i++ {
		mustSave(t, w, nil, ents(i, i, 1))
	}
	_ = w.Close()
	segs := segments(t, cfg)
	if err := m.Remove(segs[1]); err != nil {
		t.Fatal(err)
	}
	expectCorrupt(t, cfg, segs[2], 0)
}

// tornLast damages the last record of a twenty-entry WAL with damage(buf,
// rec) and checks that Open repairs it: entries 1..19 remain, a Warn names
// the file and offset, the tail is zeroed to the preallocated size, and the
// WAL appends from there.
func testTornLastRecord(t *testing.T, cfg Config, damage func(t *testing.T, path string, rec record)) {
	w := mustCreate(t, cfg, "md")
	for i := uint64(1); i <= 20; i++ {
		mustSave(t, w, hs(1, 1, i-1), ents(i, i, 1))
	}
	// The last record is the HardState: make entry 20 the last one.
	mustSave(t, w, nil, ents(21, 21, 1))
	_ = w.Close()
	path := segments(t, cfg)[0]
	recs, _ := records(t, cfg.FS, path)
	last := recs[len(recs)-1]
	damage(t, path, last)

	logger, logs := observedLogger()
	cfg.Logger = logger
	w, got := reopen(t, cfg)
	checkEntries(t, got.ents, ents(1, 20, 1))
	checkHardState(t, got.st, hs(1, 1, 19))
	warns := logs.FilterMessage("repairing torn wal tail").All()
	if len(warns) != 1 {
		t.Fatalf("got %d torn-tail warnings, want 1: %v", len(warns), logs.All())
	}
	fields := warns[0].ContextMap()
	if fields["file"] != path || fields["offset"] != last.off {
		t.Fatalf("warning fields %v, want file %s offset %d", fields, path, last.off)
	}
	buf, err := readFile(cfg.FS, path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(buf)) != cfg.SegmentSize || !allZero(buf[last.off:]) {
		t.Fatalf("after repair: size %d (want %d), tail zeroed=%v", len(buf), cfg.SegmentSize, allZero(buf[last.off:]))
	}
	mustSave(t, w, hs(2, 1, 21), ents(21, 22, 2))
	_ = w.Close()
	w, got = reopen(t, cfg)
	defer w.Close()
	checkEntries(t, got.ents, append(ents(1, 20, 1), ents(21, 22, 2)...))
	checkHardState(t, got.st, hs(2, 1, 21))
}

func tornVariants() map[string]func(t *testing.T, cfg Config, path string, rec record) {
	return map[string]func(t *testing.T, cfg Config, path string, rec record){
		"body-cut": func(t *testing.T, cfg Config, path string, rec record) {
			// The write stopped partway through the body.
			n := int64(len(rec.payload)) + 1
			patchFile(t, cfg.FS, path, rec.off+headerSize+n/2, make([]byte, align8(n)-n/2))
		},
		"header-cut": func(t *testing.T, cfg Config, path string, rec record) {
			// Only three bytes of the length field made it.
			patchFile(t, cfg.FS, path, rec.off+3, make([]byte, recordSize(len(rec.payload))-3))
		},
		"flipped-bit": func(t *testing.T, cfg Config, path string, rec record) {
			// A bad CRC with nothing valid after it counts as torn.
			buf, _ := readFile(cfg.FS, path)
			patchFile(t, cfg.FS, path, rec.off+headerSize+2, []byte{buf[rec.off+headerSize+2] ^ 4})
		},
		"file-cut": func(t *testing.T, cfg Config, path string, rec record) {
			// The file itself ends inside the record.
			f, err := cfg.FS.OpenReadWrite(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(rec.off + headerSize + 2); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestTornLastRecordIsRepaired(t *testing.T) {
	for name, damage := range tornVariants() {
		t.Run("mem/"+name, func(t *testing.T) {
			cfg, _ := memConfig(4096)
			testTornLastRecord(t, cfg, func(t *testing.T, path string, rec record) { damage(t, cfg, path, rec) })
		})
		t.Run("os/"+name, func(t *testing.T) {
			cfg := Config{FS: vfs.OS(), Dir: filepath.Join(t.TempDir(), "wal"), SegmentSize: 4096}
			testTornLastRecord(t, cfg, func(t *testing.T, path string, rec record) { damage(t, cfg, path, rec) })
		})
	}
}

// TestCrashWithTornWriteKeepsEveryAcknowledgedSave crashes a MemFS in the
// middle of an unacknowledged Save (its fsync failed) with torn writes on,
// over many seeds, and checks the recovered log is every acknowledged Save
// plus a prefix of the unacknowledged one, and that the WAL works on.
func TestCrashWithTornWriteKeepsEveryAcknowledgedSave(t *testing.T) {
	repaired := 0
	for seed := uint64(0); seed < 150; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		m := vfs.NewMem()
		ff := vfs.NewFaulty(m)
		cfg := Config{FS: ff, Dir: "/wal", SegmentSize: 2048}
		w := mustCreate(t, cfg, "md")
		var acked []*raftpb.Entry
		var ackedHS *raftpb.HardState = &raftpb.HardState{}
		var syncedHS *raftpb.HardState = &raftpb.HardState{} // the last HardState a Save fsynced
		next := uint64(1)
		for round := range 1 + r.IntN(30) {
			n := uint64(r.IntN(4))
			es := ents(next, next+n-1, 1)
			if n == 0 {
				es = nil
			}
			st := hs(1, 1, next-1+uint64(round%2))
			mustSave(t, w, st, es)
			acked, ackedHS, next = append(acked, es...), st, next+n
			if w.LastSaveSynced() {
				syncedHS = st
			}
		}
		unacked := ents(next, next+uint64(r.IntN(6)), 1)
		for _, e := range unacked {
			e.Data = bytes.Repeat([]byte{byte(seed)}, r.IntN(200))
		}
		unackedHS := hs(2, 1, next)
		ff.FailAfter(vfs.OpSync, 0)
		if err := w.Save(unackedHS, unacked); !errors.Is(err, vfs.ErrInjected) {
			t.Fatalf("seed %d: unacknowledged Save = %v", seed, err)
		}
		crashed := m.Crash(rand.New(rand.NewPCG(seed, 1)), true)

		logger, logs := observedLogger()
		cfg = Config{FS: crashed, Dir: "/wal", SegmentSize: 2048, Logger: logger}
		w, got := reopen(t, cfg)
		if len(got.ents) < len(acked) {
			t.Fatalf("seed %d: recovered %s, lost acknowledged entries (want at least %s)", seed, span(got.ents), span(acked))
		}
		checkEntries(t, got.ents[:len(acked)], acked)
		extra := got.ents[len(acked):]
		if len(extra) > len(unacked) {
			t.Fatalf("seed %d: %d entries beyond the acknowledged ones, only %d were written", seed, len(extra), len(unacked))
		}
		checkEntries(t, extra, unacked[:len(extra)])
		// The unacknowledged HardState, written last, may survive only
		// with all of its Save's entries.
		// A Save that moved only the commit index was not synced: the
		// HardState may be any from the last synced one on, with the same
		// term and vote.
		if !(len(extra) == len(unacked) && hardStateEqual(got.st, unackedHS)) {
			if got.st.GetTerm() != ackedHS.GetTerm() || got.st.GetVote() != ackedHS.GetVote() ||
				got.st.GetCommit() < syncedHS.GetCommit() || got.st.GetCommit() > ackedHS.GetCommit() {
				t.Fatalf("seed %d: recovered HardState %v, want term %d vote %d and commit in [%d, %d]", seed, got.st,
					ackedHS.GetTerm(), ackedHS.GetVote(), syncedHS.GetCommit(), ackedHS.GetCommit())
			}
		}
		checkRepairWarnings(t, seed, crashed, logs)
		repaired += len(logs.FilterMessage("repairing torn wal tail").All())

		// The repaired WAL appends and replays.
		nextIdx := uint64(len(got.ents)) + 1
		mustSave(t, w, hs(3, 1, nextIdx), ents(nextIdx, nextIdx+2, 3))
		_ = w.Close()
		w, got2 := reopen(t, cfg)
		checkEntries(t, got2.ents, append(got.ents, ents(nextIdx, nextIdx+2, 3)...))
		_ = w.Close()
	}
	t.Logf("%d of 150 crashes left a torn record", repaired)
	if repaired < 20 {
		t.Fatalf("only %d of 150 crashes tore a record; the test is not exercising repair", repaired)
	}
}

func hardStateEqual(a, b *raftpb.HardState) bool {
	return a.GetTerm() == b.GetTerm() && a.GetVote() == b.GetVote() && a.GetCommit() == b.GetCommit()
}

// checkRepairWarnings checks every torn-tail warning names a file and an
// offset from which the file now holds only zeros.
func checkRepairWarnings(t *testing.T, seed uint64, fsys vfs.FS, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.FilterMessage("repairing torn wal tail").All() {
		fields := e.ContextMap()
		file, _ := fields["file"].(string)
		off, ok := fields["offset"].(int64)
		if file == "" || !ok {
			t.Fatalf("seed %d: warning without file/offset: %v", seed, fields)
		}
		buf, err := readFile(fsys, file)
		if err != nil {
			t.Fatal(err)
		}
		if off <= 0 || off > int64(len(buf)) || !allZero(buf[off:]) {
			t.Fatalf("seed %d: %s not zeroed from offset %d after repair", seed, file, off)
		}
	}
}

func TestCorruptErrorMessageNamesFileAndOffset(t *testing.T) {
	err := error(&CorruptError{File: "/wal/x.wal", Offset: 4096, Reason: "crc mismatch"})
	want := "wal: corrupt record in /wal/x.wal at offset 4096: crc mismatch"
	if err.Error() != want || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error = %q (Is ErrCorrupt %v), want %q", err, errors.Is(err, ErrCorrupt), want)
	}
}

// TestCommitOnlyHardStateIsNotSynced checks Save's fsync rule (raft.MustSync):
// entries, a new term and a new vote are synced; a HardState that moves only
// the commit index is written but not synced, so a crash may roll it back to
// the last synced one and never further, and the next synced Save makes it
// durable.
func TestCommitOnlyHardStateIsNotSynced(t *testing.T) {
	m := vfs.NewMem()
	cfg := Config{FS: m, Dir: "/wal", SegmentSize: 1 << 20}
	w := mustCreate(t, cfg, "md")
	steps := []struct {
		st   *raftpb.HardState
		es   []*raftpb.Entry
		sync bool
	}{
		{hs(1, 1, 0), nil, true},           // first HardState
		{hs(1, 1, 0), ents(1, 3, 1), true}, // entries
		{hs(1, 1, 3), nil, false},          // commit only
		{nil, ents(4, 4, 1), true},         // entries, no HardState
		{hs(1, 1, 4), nil, false},          // commit only
		{hs(2, 0, 4), nil, true},           // new term
		{hs(2, 3, 4), nil, true},           // new vote
		{hs(2, 3, 4), nil, false},          // unchanged
	}
	for i, s := range steps {
		mustSave(t, w, s.st, s.es)
		if got := w.LastSaveSynced(); got != s.sync {
			t.Fatalf("step %d: Save(%v, %d entries) synced = %v, want %v", i, s.st, len(s.es), got, s.sync)
		}
	}
	// A commit-only change after the last sync is lost in a crash that
	// keeps only synced bytes; the synced HardState comes back.
	mustSave(t, w, hs(2, 3, 9), nil)
	_, got := reopen(t, Config{FS: m.Crash(rand.New(rand.NewPCG(1, 2)), false), Dir: "/wal"})
	checkHardState(t, got.st, hs(2, 3, 4))
	checkEntries(t, got.ents, ents(1, 4, 1))
	// Entries saved after it sync it too.
	mustSave(t, w, nil, ents(5, 5, 2))
	_, got = reopen(t, Config{FS: m.Crash(rand.New(rand.NewPCG(1, 3)), false), Dir: "/wal"})
	checkHardState(t, got.st, hs(2, 3, 9))
	checkEntries(t, got.ents, append(ents(1, 4, 1), ents(5, 5, 2)...))
}
