package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// DefaultSegmentSize is the preallocated size of a segment when
// Config.SegmentSize is zero.
const DefaultSegmentSize = 64 << 20

// flushThreshold bounds the bytes Save buffers before writing them out.
const flushThreshold = 1 << 20

// Config configures a WAL. The zero value of every field but FS and Dir is
// usable.
type Config struct {
	FS  vfs.FS
	Dir string
	// SegmentSize is the preallocated size of each segment file; 0 means
	// DefaultSegmentSize. A record larger than a segment gets a segment of
	// its own, which grows past SegmentSize.
	SegmentSize int64
	// Logger receives the repair of a torn tail (Warn) and segment changes
	// (Info); nil means no logging.
	Logger *zap.Logger
	// ObserveWrite, if set, receives each write of buffered records to a
	// segment file (before its fsync): the bytes written and how long the
	// write took, by Clock (which must then be set).
	ObserveWrite func(n int, d time.Duration)
	Clock        clock.Clock
}

func (c *Config) validate() error {
	if c.FS == nil {
		return fmt.Errorf("%w: Config.FS is nil", ErrInvalid)
	}
	if c.Dir == "" {
		return fmt.Errorf("%w: Config.Dir is empty", ErrInvalid)
	}
	if c.SegmentSize < 0 {
		return fmt.Errorf("%w: Config.SegmentSize %d is negative", ErrInvalid, c.SegmentSize)
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = DefaultSegmentSize
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.ObserveWrite != nil && c.Clock == nil {
		return fmt.Errorf("%w: Config.ObserveWrite without Config.Clock", ErrInvalid)
	}
	return nil
}

// WAL is an open write-ahead log. It is safe for concurrent use; calls are
// serialized.
type WAL struct {
	mu  sync.Mutex
	cfg Config
	log *zap.Logger

	metadata []byte
	replayed *replay // what Open found, held until ReadAll
	readDone bool
	saved    bool

	segs      []segment // live segments, oldest first; the last is f
	f         vfs.File
	off       int64 // append offset in f; the file offset is kept equal to it
	headerEnd int64 // offset just past f's segment header records
	buf       []byte

	lastIndex uint64   // index of the last entry written
	snapIndex uint64   // index of the newest snapshot marker
	markers   []uint64 // snapshot marker indexes, oldest first
	hsBytes   []byte   // encoding of the last HardState written (nil if none)
	hsTerm    uint64   // term and vote of that HardState
	hsVote    uint64
	synced    bool   // whether the last Save that wrote anything fsynced
	snapBytes []byte // encoding of the newest snapshot marker (nil if none)

	err    error // sticky: set by a failed write or sync
	closed bool
}

// Exist reports whether dir holds a WAL (at least one segment file).
func Exist(fsys vfs.FS, dir string) bool {
	names, err := fsys.List(dir)
	if err != nil {
		return false
	}
	for _, n := range names {
		if _, _, ok := parseSegmentName(n); ok {
			return true
		}
	}
	return false
}

// Create makes a new WAL in cfg.Dir holding metadata, and opens it for
// appending. It fails, wrapping fs.ErrExist, if a WAL already exists there or
// Dir is a non-empty directory. Creation is atomic: the WAL is built in
// Dir+".tmp" and renamed into place.
func Create(cfg Config, metadata []byte) (*WAL, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	fsys, dir := cfg.FS, filepath.Clean(cfg.Dir)
	if Exist(fsys, dir) {
		return nil, fmt.Errorf("wal: create in %s: %w", dir, fs.ErrExist)
	}
	if _, err := fsys.Stat(dir); err == nil {
		names, err := fsys.List(dir)
		if err != nil {
			return nil, fmt.Errorf("wal: create: %w", err)
		}
		if len(names) > 0 {
			return nil, fmt.Errorf("wal: create: %s is not an empty directory: %w", dir, fs.ErrExist)
		}
	}
	w := &WAL{cfg: cfg, log: cfg.Logger, metadata: bytes.Clone(metadata), replayed: newReplay()}
	tmpDir := dir + tmpExt
	// The directories above the WAL must be durable before it is: a power
	// cut would take a new parent's entry, and the WAL with it, however
	// well the WAL itself was synced.
	parent := filepath.Dir(dir)
	if err := vfs.MkdirAllSynced(fsys, parent, 0o700); err != nil {
		return nil, fmt.Errorf("wal: create: %w", err)
	}
	if err := fsys.RemoveAll(tmpDir); err != nil {
		return nil, fmt.Errorf("wal: create: %w", err)
	}
	if err := fsys.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, fmt.Errorf("wal: create: %w", err)
	}
	f, hdrEnd, err := w.createSegment(tmpDir, 0, 0)
	if err != nil {
		return nil, err
	}
	err = func() error {
		if _, err := fsys.Stat(dir); err == nil {
			if err := fsys.Remove(dir); err != nil {
				return err
			}
		}
		if err := fsys.Rename(tmpDir, dir); err != nil {
			return err
		}
		return fsys.SyncDir(parent)
	}()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("wal: create: %w", err)
	}
	w.f, w.off, w.headerEnd = f, hdrEnd, hdrEnd
	w.segs = []segment{{seq: 0, first: 0, name: segmentName(0, 0)}}
	w.log.Info("created wal", zap.String("dir", dir), zap.Int64("segment-size", cfg.SegmentSize))
	return w, nil
}

// Open opens the WAL in cfg.Dir, reads and checks all of it, repairs a torn
// tail (see the package documentation) and readies it for appending. Bad data
// gives an error wrapping ErrCorrupt; a missing WAL one wrapping
// fs.ErrNotExist. Call ReadAll next to get what was read.
func Open(cfg Config) (*WAL, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	fsys, dir := cfg.FS, filepath.Clean(cfg.Dir)
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: open: %w", err)
	}
	w := &WAL{cfg: cfg, log: cfg.Logger}
	for _, n := range names {
		if seq, first, ok := parseSegmentName(n); ok {
			w.segs = append(w.segs, segment{seq: seq, first: first, name: n})
		} else if strings.HasSuffix(n, segmentExt+tmpExt) {
			// A segment whose creation a crash interrupted; never renamed
			// into place, so it holds nothing acknowledged.
			if err := fsys.Remove(filepath.Join(dir, n)); err != nil {
				return nil, fmt.Errorf("wal: open: remove leftover %s: %w", n, err)
			}
			w.log.Info("removed unfinished segment", zap.String("file", n))
		}
	}
	if len(w.segs) == 0 {
		return nil, fmt.Errorf("wal: open: no wal in %s: %w", dir, fs.ErrNotExist)
	}
	for i := 1; i < len(w.segs); i++ {
		if w.segs[i].seq != w.segs[i-1].seq+1 {
			return nil, corruptf(filepath.Join(dir, w.segs[i].name), 0,
				"segment sequence %d follows %d: a segment is missing", w.segs[i].seq, w.segs[i-1].seq)
		}
	}

	r := newReplay()
	var lastScan segmentScan
	for i, seg := range w.segs {
		path := filepath.Join(dir, seg.name)
		last := i == len(w.segs)-1
		buf, err := readFile(fsys, path)
		if err != nil {
			return nil, err
		}
		scan, err := scanSegment(path, buf, last)
		if err != nil {
			return nil, err
		}
		hdrEnd, err := w.checkSegmentHeader(path, seg, scan, i == 0)
		if err != nil {
			return nil, err
		}
		for _, rec := range scan.recs[2:] {
			if err := r.apply(path, rec); err != nil {
				return nil, err
			}
		}
		if last {
			lastScan, w.headerEnd = scan, hdrEnd
		}
		// The records alias buf; keep only what replay decoded (proto
		// copies bytes fields), and the small encodings below.
		r.hsBytes, r.snapBytes = bytes.Clone(r.hsBytes), bytes.Clone(r.snapBytes)
	}

	lastPath := filepath.Join(dir, w.segs[len(w.segs)-1].name)
	f, err := fsys.OpenReadWrite(lastPath)
	if err != nil {
		return nil, fmt.Errorf("wal: open: %w", err)
	}
	if lastScan.torn {
		if err := w.repairTail(f, lastPath, lastScan); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	if _, err := f.Seek(lastScan.end, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("wal: open: %w", err)
	}
	w.f, w.off = f, lastScan.end
	w.replayed = r
	w.lastIndex = r.lastIndex
	w.snapIndex = r.snap.GetIndex()
	w.markers = r.markers
	w.hsBytes, w.snapBytes = r.hsBytes, r.snapBytes
	w.hsTerm, w.hsVote = r.hs.GetTerm(), r.hs.GetVote()
	return w, nil
}

// readFile returns the whole contents of the named file.
func readFile(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, fmt.Errorf("wal: open: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("wal: open: %w", err)
	}
	buf := make([]byte, size)
	if n, err := f.ReadAt(buf, 0); n != len(buf) {
		return nil, fmt.Errorf("wal: read %s: got %d of %d bytes: %w", path, n, size, err)
	}
	return buf, nil
}

// checkSegmentHeader checks that a segment starts with its segment record and
// the WAL's metadata, and returns the offset just past its header records
// (the segment, metadata, and any HardState and snapshot records that
// immediately follow them). The first segment sets w.metadata.
func (w *WAL) checkSegmentHeader(path string, seg segment, scan segmentScan, first bool) (int64, error) {
	if len(scan.recs) < 2 {
		return 0, corruptf(path, scan.end, "segment header incomplete (%d records)", len(scan.recs))
	}
	if scan.recs[0].kind != kindSegment {
		return 0, corruptf(path, 0, "segment starts with a %v record", scan.recs[0].kind)
	}
	seq, firstIdx, err := decodeSegmentPayload(scan.recs[0].payload)
	if err != nil {
		return 0, corruptf(path, 0, "%v", err)
	}
	if seq != seg.seq || firstIdx != seg.first {
		return 0, corruptf(path, 0, "segment record says sequence %d, first index %d; the file name says %d, %d",
			seq, firstIdx, seg.seq, seg.first)
	}
	md := scan.recs[1]
	if md.kind != kindMetadata {
		return 0, corruptf(path, md.off, "expected the metadata record, found a %v record", md.kind)
	}
	if first {
		w.metadata = bytes.Clone(md.payload)
	} else if !bytes.Equal(md.payload, w.metadata) {
		return 0, corruptf(path, md.off, "metadata differs from the first segment's")
	}
	for _, rec := range scan.recs[2:] {
		if rec.kind == kindSegment || rec.kind == kindMetadata {
			return 0, corruptf(path, rec.off, "unexpected %v record", rec.kind)
		}
	}
	end := scan.end
	for _, rec := range scan.recs[2:] {
		if rec.kind != kindHardState && rec.kind != kindSnapshot {
			end = rec.off
			break
		}
	}
	return end, nil
}

// repairTail cuts the last segment at a torn record: zeroes everything from
// scan.end, keeping the preallocated size, and syncs.
func (w *WAL) repairTail(f vfs.File, path string, scan segmentScan) error {
	w.log.Warn("repairing torn wal tail",
		zap.String("file", path), zap.Int64("offset", scan.end), zap.String("reason", scan.tornReason))
	if err := f.Truncate(scan.end); err != nil {
		return fmt.Errorf("wal: repair %s: %w", path, err)
	}
	if scan.end < w.cfg.SegmentSize {
		if err := f.Truncate(w.cfg.SegmentSize); err != nil {
			return fmt.Errorf("wal: repair %s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: repair %s: %w", path, err)
	}
	return nil
}

// createSegment writes a complete new segment (preallocated, header records
// written, synced) to a temporary name in dir, renames it into place, syncs
// dir, and returns it open for appending at the returned offset.
func (w *WAL) createSegment(dir string, seq, first uint64) (vfs.File, int64, error) {
	fsys := w.cfg.FS
	name := segmentName(seq, first)
	tmp := filepath.Join(dir, name+tmpExt)
	f, err := fsys.Create(tmp)
	if err != nil {
		return nil, 0, fmt.Errorf("wal: create segment: %w", err)
	}
	hdr := appendRecord(nil, 0, kindSegment, encodeSegmentPayload(seq, first))
	hdr = appendRecord(hdr, int64(len(hdr)), kindMetadata, w.metadata)
	if w.hsBytes != nil {
		hdr = appendRecord(hdr, int64(len(hdr)), kindHardState, w.hsBytes)
	}
	if w.snapBytes != nil {
		hdr = appendRecord(hdr, int64(len(hdr)), kindSnapshot, w.snapBytes)
	}
	err = func() error {
		if err := f.Truncate(w.cfg.SegmentSize); err != nil {
			return err
		}
		if _, err := f.Write(hdr); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if err := fsys.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
		return fsys.SyncDir(dir)
	}()
	if err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("wal: create segment %s: %w", name, err)
	}
	return f, int64(len(hdr)), nil
}

// ReadAll returns what Open read: the metadata given to Create, the last
// HardState saved (empty if none), the newest snapshot marker (empty if none)
// and the log entries after the marker's index, where an entry saved at an
// index replaced the one saved there before and dropped all later ones. It
// must be called at most once, before any Save or SaveSnapshot.
func (w *WAL) ReadAll() (metadata []byte, st *raftpb.HardState, snap *raftpb.SnapshotMetadata, ents []*raftpb.Entry, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, nil, nil, nil, ErrClosed
	}
	if w.readDone {
		return nil, nil, nil, nil, fmt.Errorf("%w: ReadAll called twice", ErrInvalid)
	}
	if w.saved {
		return nil, nil, nil, nil, fmt.Errorf("%w: ReadAll called after Save", ErrInvalid)
	}
	r := w.replayed
	w.replayed, w.readDone = nil, true
	return bytes.Clone(w.metadata), r.hs, r.snap, r.ents, nil
}

// usable returns the error that stops a write, if any.
func (w *WAL) usable() error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return fmt.Errorf("%w: %w", ErrFailed, w.err)
	}
	return nil
}

// fail records a write or sync failure; the WAL accepts no more writes.
func (w *WAL) fail(err error) error {
	w.err = err
	w.log.Error("wal write failed; refusing further writes", zap.Error(err))
	return err
}

// Save appends the entries, then st unless it is empty
// (raft.IsEmptyHardState), and makes them durable with one fsync (more only if
// a segment fills up); a HardState that differs from the last one only in its
// commit index is written but not synced (raft.MustSync). With nothing to save it does nothing. The entries must
// have consecutive indexes, the first above the newest snapshot marker and at
// most one past the highest index saved so far (a lower one overwrites the
// log from there on, as raft does after a conflict); otherwise Save writes
// nothing and returns an error wrapping ErrInvalid. A failed write or fsync is
// returned and makes every later Save and SaveSnapshot fail with ErrFailed.
func (w *WAL) Save(st *raftpb.HardState, ents []*raftpb.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.checkEntries(ents); err != nil {
		return err
	}
	writeHS := !raft.IsEmptyHardState(st)
	if !writeHS && len(ents) == 0 {
		return nil
	}
	w.saved = true
	var hsBytes []byte
	if writeHS {
		var err error
		if hsBytes, err = proto.Marshal(st); err != nil {
			return fmt.Errorf("wal: encode hardstate: %w", err)
		}
	}
	var payload []byte
	for _, e := range ents {
		var err error
		payload, err = proto.MarshalOptions{}.MarshalAppend(payload[:0], e)
		if err != nil {
			return w.fail(fmt.Errorf("wal: encode entry %d: %w", e.GetIndex(), err))
		}
		if err := w.add(kindEntry, payload); err != nil {
			return w.fail(err)
		}
		// Kept current entry by entry: a segment cut later in this call
		// must be named after the entries already written.
		w.lastIndex = e.GetIndex()
	}
	if writeHS {
		if err := w.add(kindHardState, hsBytes); err != nil {
			return w.fail(err)
		}
	}
	if err := w.flush(); err != nil {
		return w.fail(err)
	}
	// As raft.MustSync: entries, a new term or a new vote must be on disk
	// before raft may act on them; a HardState that moves only the commit
	// index may be lost in a power cut (commit is learned again from the
	// leader, and a restart re-applies from the database's consistent
	// index), so it is written and left for the next fsync, as etcd does.
	w.synced = len(ents) > 0 || (writeHS && (w.hsBytes == nil || st.GetTerm() != w.hsTerm || st.GetVote() != w.hsVote))
	if w.synced {
		if err := w.f.Sync(); err != nil {
			return w.fail(fmt.Errorf("wal: sync: %w", err))
		}
	}
	if writeHS {
		w.hsBytes = hsBytes
		w.hsTerm, w.hsVote = st.GetTerm(), st.GetVote()
	}
	return nil
}

// LastSaveSynced reports whether the last Save that wrote anything fsynced
// the WAL (see Save: a HardState that moves only the commit index is not
// synced).
func (w *WAL) LastSaveSynced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.synced
}

func (w *WAL) checkEntries(ents []*raftpb.Entry) error {
	for i, e := range ents {
		if e == nil {
			return fmt.Errorf("%w: entry %d is nil", ErrInvalid, i)
		}
		idx := e.GetIndex()
		if i > 0 {
			if prev := ents[i-1].GetIndex(); idx != prev+1 {
				return fmt.Errorf("%w: entry index %d follows %d", ErrInvalid, idx, prev)
			}
			continue
		}
		if idx <= w.snapIndex {
			return fmt.Errorf("%w: entry index %d is not above the snapshot index %d", ErrInvalid, idx, w.snapIndex)
		}
		if hi := max(w.lastIndex, w.snapIndex) + 1; idx > hi {
			return fmt.Errorf("%w: entry index %d leaves a gap (next index is at most %d)", ErrInvalid, idx, hi)
		}
	}
	return nil
}

// SaveSnapshot appends a snapshot marker and fsyncs it. Markers must not go
// backwards: m.Index below the newest marker's is an error wrapping
// ErrInvalid. Entries at or below m.Index are no longer returned by ReadAll.
func (w *WAL) SaveSnapshot(m *raftpb.SnapshotMetadata) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("%w: nil snapshot metadata", ErrInvalid)
	}
	if m.GetIndex() < w.snapIndex {
		return fmt.Errorf("%w: snapshot index %d is below the newest marker's %d", ErrInvalid, m.GetIndex(), w.snapIndex)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("wal: encode snapshot marker: %w", err)
	}
	w.saved = true
	if err := w.add(kindSnapshot, b); err != nil {
		return w.fail(err)
	}
	if err := w.flush(); err != nil {
		return w.fail(err)
	}
	if err := w.f.Sync(); err != nil {
		return w.fail(fmt.Errorf("wal: sync: %w", err))
	}
	w.snapIndex, w.snapBytes = m.GetIndex(), b
	if n := len(w.markers); n == 0 || w.markers[n-1] != m.GetIndex() {
		w.markers = append(w.markers, m.GetIndex())
	}
	return nil
}

// add buffers one record, first cutting a new segment if it would not fit in
// the current one (unless the current one holds no record past its header).
func (w *WAL) add(k kind, payload []byte) error {
	pos := w.off + int64(len(w.buf))
	if pos+recordSize(len(payload)) > w.cfg.SegmentSize && pos > w.headerEnd {
		if err := w.flush(); err != nil {
			return err
		}
		if err := w.cut(); err != nil {
			return err
		}
		pos = w.off
	}
	w.buf = appendRecord(w.buf, pos, k, payload)
	if len(w.buf) >= flushThreshold {
		return w.flush()
	}
	return nil
}

// flush writes the buffered records at w.off.
func (w *WAL) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	var start time.Time
	if w.cfg.ObserveWrite != nil {
		start = w.cfg.Clock.Now()
	}
	n, err := w.f.Write(w.buf)
	if w.cfg.ObserveWrite != nil {
		w.cfg.ObserveWrite(n, w.cfg.Clock.Now().Sub(start))
	}
	if err != nil {
		return fmt.Errorf("wal: write: %w", err)
	}
	if n != len(w.buf) {
		return fmt.Errorf("wal: write: short write (%d of %d bytes): %w", n, len(w.buf), io.ErrShortWrite)
	}
	w.off += int64(n)
	w.buf = w.buf[:0]
	return nil
}

// cut syncs the current segment and switches to a new one whose first entry
// is expected at lastIndex+1.
func (w *WAL) cut() error {
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("wal: sync: %w", err)
	}
	seq, first := w.segs[len(w.segs)-1].seq+1, w.lastIndex+1
	f, hdrEnd, err := w.createSegment(filepath.Clean(w.cfg.Dir), seq, first)
	if err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		_ = f.Close()
		return fmt.Errorf("wal: close segment: %w", err)
	}
	w.f, w.off, w.headerEnd = f, hdrEnd, hdrEnd
	w.segs = append(w.segs, segment{seq: seq, first: first, name: segmentName(seq, first)})
	w.log.Info("cut wal segment", zap.String("file", segmentName(seq, first)))
	return nil
}

// ReleaseTo removes the oldest segments that a replay no longer needs once
// the state up to index is kept elsewhere: with M the newest snapshot marker
// at or below index, every segment older than the newest one whose first
// index is at most M.Index+1. Entries above M.Index, M itself (or a newer
// marker), the latest HardState and the metadata all stay readable. Without
// such a marker it does nothing. The last segment is never removed.
func (w *WAL) ReleaseTo(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	var marker uint64
	found := false
	for _, m := range w.markers {
		if m <= index {
			marker, found = m, true
		}
	}
	if !found {
		return nil
	}
	keep := -1
	for i, s := range w.segs {
		if s.first <= marker+1 {
			keep = i
		}
	}
	if keep <= 0 {
		return nil
	}
	dir := filepath.Clean(w.cfg.Dir)
	for len(w.segs) > 0 && keep > 0 {
		if err := w.cfg.FS.Remove(filepath.Join(dir, w.segs[0].name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("wal: release: %w", err)
		}
		w.log.Info("released wal segment", zap.String("file", w.segs[0].name))
		w.segs = w.segs[1:]
		keep--
	}
	// Markers below the one kept can never be chosen again.
	for len(w.markers) > 1 && w.markers[0] < marker {
		w.markers = w.markers[1:]
	}
	if err := w.cfg.FS.SyncDir(dir); err != nil {
		return fmt.Errorf("wal: release: sync dir: %w", err)
	}
	return nil
}

// Close closes the WAL's open segment. Everything Saved is already durable.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	w.replayed = nil
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("wal: close: %w", err)
	}
	return nil
}
