package etcdwal

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/vfs"
)

// Log is what Read found in an etcd WAL (and snapshot directory).
type Log struct {
	// Segments are the base names of the WAL's segment files, oldest first.
	Segments []string
	// Metadata is the member's and cluster's IDs; RawMetadata the bytes
	// they were decoded from.
	Metadata    Metadata
	RawMetadata []byte
	// Snapshot is the marker the log starts from: Index 0 and no
	// ConfState when it starts at the beginning. A marker above 0 lacks a
	// ConfState only if written before etcd 3.5 with no matching snapshot
	// file to take it from.
	Snapshot *raftpb.SnapshotMetadata
	// HardState is the last one saved; empty if none was.
	HardState *raftpb.HardState
	// Entries are the log entries after Snapshot.Index, in index order,
	// including entries not yet committed (above HardState.Commit).
	Entries []*raftpb.Entry
	// Markers are all snapshot markers of the WAL in the order they were
	// saved, including any newer than the commit index (not usable).
	Markers []*raftpb.SnapshotMetadata
	// SnapFile is the path of the snapshot file matching Snapshot and Snap
	// its contents, when Read was given a snapshot directory holding one;
	// otherwise "" and nil.
	SnapFile string
	Snap     *raftpb.Snapshot
	// TornTail, if not nil, is the torn last record of the last segment:
	// it and anything after it were not read (etcd would cut them off).
	TornTail *CorruptError
}

// segmentFile is one WAL segment file.
type segmentFile struct {
	seq   uint64
	index uint64 // the raft index in its name
	name  string
}

// SegmentName is the name etcd gives the segment with sequence number seq
// whose first entry is expected at raft index index.
func SegmentName(seq, index uint64) string {
	return fmt.Sprintf("%016x-%016x.wal", seq, index)
}

// parseSegmentName is the inverse of SegmentName.
func parseSegmentName(name string) (seq, index uint64, ok bool) {
	base, found := strings.CutSuffix(name, ".wal")
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(base[:16], 16, 64)
	index, err2 := strconv.ParseUint(base[17:], 16, 64)
	return seq, index, err1 == nil && err2 == nil
}

// listSegments returns dir's segment files in name (sequence) order. A
// ".wal" file whose name is not a segment's is an error: etcd's own parser
// would take some such names for segments. It fails wrapping
// fs.ErrNotExist when there is no segment.
func listSegments(fsys vfs.FS, dir string) ([]segmentFile, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("etcd wal: %w", err)
	}
	var segs []segmentFile
	for _, n := range names {
		if seq, index, ok := parseSegmentName(n); ok {
			segs = append(segs, segmentFile{seq: seq, index: index, name: n})
		} else if strings.HasSuffix(n, ".wal") {
			return nil, corruptf(filepath.Join(dir, n), 0, "a .wal file whose name is not seq-index.wal in 16 hex digits each")
		}
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("etcd wal: no segment in %s: %w", dir, fs.ErrNotExist)
	}
	return segs, nil
}

// readFile returns the whole contents of the named file.
func readFile(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, fmt.Errorf("etcd wal: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("etcd wal: %s: %w", path, err)
	}
	buf := make([]byte, size)
	if n, err := f.ReadAt(buf, 0); n != len(buf) {
		return nil, fmt.Errorf("etcd wal: read %s: got %d of %d bytes: %w", path, n, size, err)
	}
	return buf, nil
}

// scan decodes the records of segments segs[from:] in order, with one
// running checksum from a fresh start, calling fn for each with the path of
// its file. It returns the torn tail of the last segment, if any.
func scan(fsys vfs.FS, dir string, segs []segmentFile, from int, fn func(path string, rec record) error) (*CorruptError, error) {
	d := segmentDecoder{}
	for i := from; i < len(segs); i++ {
		path := filepath.Join(dir, segs[i].name)
		buf, err := readFile(fsys, path)
		if err != nil {
			return nil, err
		}
		// etcd writes every segment whole before giving it its name, so
		// its first record is never torn.
		if !startsWithCRCRecord(buf) {
			return nil, corruptf(path, 0, "not an etcd WAL segment: it does not start with a crc record (a Cairn WAL? see Detect)")
		}
		d.file, d.buf, d.off, d.last = path, buf, 0, i == len(segs)-1
		for {
			rec, err := d.next()
			if errors.Is(err, errSegmentEnd) {
				break
			}
			var torn *tornError
			if errors.As(err, &torn) {
				return torn.CorruptError, nil
			}
			if err != nil {
				return nil, err
			}
			if err := fn(path, rec); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

// Read reads the etcd WAL in walDir as etcd 3.7 does when the member
// restarts (see the package documentation) and, if snapDir is not empty,
// the snapshot file there that matches the marker it starts from. It never
// writes. Bad data gives an error wrapping ErrCorrupt; a directory without
// segments one wrapping fs.ErrNotExist.
func Read(fsys vfs.FS, walDir, snapDir string) (*Log, error) {
	walDir = filepath.Clean(walDir)
	segs, err := listSegments(fsys, walDir)
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, corruptf(filepath.Join(walDir, segs[i].name), 0,
				"segment sequence %d follows %d: a segment is missing", segs[i].seq, segs[i-1].seq)
		}
	}
	l := &Log{HardState: &raftpb.HardState{}}
	for _, s := range segs {
		l.Segments = append(l.Segments, s.name)
	}

	// Pass 1, over every segment: the markers and the last HardState, to
	// choose the marker to start from.
	var md []byte
	checkMetadata := func(path string, rec record) error {
		if md != nil && !bytes.Equal(md, rec.data) {
			return corruptf(path, rec.off, "metadata differs from the earlier segments'")
		}
		md = bytes.Clone(rec.data)
		return nil
	}
	_, err = scan(fsys, walDir, segs, 0, func(path string, rec record) error {
		switch rec.typ {
		case typeMetadata:
			return checkMetadata(path, rec)
		case typeState:
			hs := &raftpb.HardState{}
			if err := proto.Unmarshal(rec.data, hs); err != nil {
				return corruptf(path, rec.off, "undecodable hardstate: %v", err)
			}
			l.HardState = hs
		case typeSnapshot:
			m, err := parseSnapshotMarker(rec.data)
			if err != nil {
				return corruptf(path, rec.off, "undecodable snapshot marker: %v", err)
			}
			l.Markers = append(l.Markers, m)
		case typeEntry, typeCRC:
		default:
			return corruptf(path, rec.off, "unknown record type %d", rec.typ)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	start := &raftpb.SnapshotMetadata{Index: proto.Uint64(0), Term: proto.Uint64(0)}
	for _, m := range l.Markers {
		if m.GetIndex() <= l.HardState.GetCommit() {
			start = m
		}
	}
	from := -1
	for i, s := range segs {
		if s.index <= start.GetIndex() {
			from = i
		}
	}
	if from < 0 {
		return nil, corruptf(filepath.Join(walDir, segs[0].name), 0,
			"no segment starts at or before the snapshot marker's index %d: older segments are missing", start.GetIndex())
	}

	// Pass 2, from the segment holding the start marker: what etcd's
	// ReadAll returns.
	md = nil
	matched := false
	hs := &raftpb.HardState{}
	var ents []*raftpb.Entry
	l.TornTail, err = scan(fsys, walDir, segs, from, func(path string, rec record) error {
		switch rec.typ {
		case typeMetadata:
			return checkMetadata(path, rec)
		case typeState:
			hs = &raftpb.HardState{}
			if err := proto.Unmarshal(rec.data, hs); err != nil {
				return corruptf(path, rec.off, "undecodable hardstate: %v", err)
			}
		case typeSnapshot:
			m, err := parseSnapshotMarker(rec.data)
			if err != nil {
				return corruptf(path, rec.off, "undecodable snapshot marker: %v", err)
			}
			if m.GetIndex() == start.GetIndex() {
				if m.GetTerm() != start.GetTerm() {
					return corruptf(path, rec.off, "snapshot marker at index %d has term %d, the start marker term %d",
						m.GetIndex(), m.GetTerm(), start.GetTerm())
				}
				matched = true
			}
		case typeEntry:
			e := &raftpb.Entry{}
			if err := proto.Unmarshal(rec.data, e); err != nil {
				return corruptf(path, rec.off, "undecodable entry: %v", err)
			}
			if e.GetIndex() <= start.GetIndex() {
				return nil
			}
			pos := e.GetIndex() - start.GetIndex() - 1
			if pos > uint64(len(ents)) {
				return corruptf(path, rec.off, "entry %d (term %d) follows entry %d: entries are missing",
					e.GetIndex(), e.GetTerm(), start.GetIndex()+uint64(len(ents)))
			}
			ents = append(ents[:pos], e)
		case typeCRC:
		default:
			return corruptf(path, rec.off, "unknown record type %d", rec.typ)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !matched {
		return nil, corruptf(filepath.Join(walDir, segs[from].name), 0,
			"snapshot marker {index %d, term %d} not found in this segment or after it", start.GetIndex(), start.GetTerm())
	}
	if md == nil {
		return nil, corruptf(filepath.Join(walDir, segs[from].name), 0, "no metadata record")
	}
	meta, err := parseMetadata(md)
	if err != nil {
		return nil, corruptf(filepath.Join(walDir, segs[from].name), 0, "undecodable metadata: %v", err)
	}
	l.Metadata, l.RawMetadata = meta, md
	l.Snapshot = proto.Clone(start).(*raftpb.SnapshotMetadata)
	l.HardState = hs
	l.Entries = ents

	if snapDir != "" && start.GetIndex() > 0 {
		if err := l.loadSnap(fsys, snapDir); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// loadSnap reads the snapshot file matching l.Snapshot, if there is one,
// and fills the marker's ConfState from it when the marker has none.
func (l *Log) loadSnap(fsys vfs.FS, snapDir string) error {
	path := filepath.Join(snapDir, SnapFileName(l.Snapshot.GetTerm(), l.Snapshot.GetIndex()))
	if _, err := fsys.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("etcd wal: %w", err)
	}
	snap, err := ReadSnapFile(fsys, path)
	if err != nil {
		return err
	}
	m := snap.GetMetadata()
	if m.GetIndex() != l.Snapshot.GetIndex() || m.GetTerm() != l.Snapshot.GetTerm() {
		return corruptf(path, 0, "holds the snapshot at index %d term %d, not the one its name says", m.GetIndex(), m.GetTerm())
	}
	switch {
	case l.Snapshot.ConfState == nil:
		l.Snapshot.ConfState = proto.Clone(m.GetConfState()).(*raftpb.ConfState)
	case m.ConfState != nil && !proto.Equal(m.ConfState, l.Snapshot.ConfState):
		return corruptf(path, 0, "conf state %v differs from the WAL marker's %v", m.ConfState, l.Snapshot.ConfState)
	}
	l.SnapFile, l.Snap = path, snap
	return nil
}
