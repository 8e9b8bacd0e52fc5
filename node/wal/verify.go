package wal

import (
	"fmt"
	"io/fs"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/vfs"
)

// Checked is what Verify read from a WAL.
type Checked struct {
	Metadata  []byte
	HardState *raftpb.HardState
	Snapshot  *raftpb.SnapshotMetadata // newest marker; empty if none
	Entries   []*raftpb.Entry          // after the marker, as ReadAll gives them
	LastIndex uint64                   // index of the last entry record (0: none)
	Segments  []string                 // segment files, oldest first
	Bytes     int64                    // bytes read
	// TornTail, if not nil, is the torn record at the end of the last
	// segment: what a crash mid-write leaves, cut off by the next Open. It
	// is not corruption.
	TornTail *CorruptError
}

// Verify reads and checks every record of the WAL in dir, as Open does,
// but only reads: a torn tail is reported in Checked.TornTail, not
// repaired, and leftover files are left alone. Bad data gives an error
// wrapping ErrCorrupt (a *CorruptError naming the file and offset); a
// missing WAL one wrapping fs.ErrNotExist. progress, if not nil, is called
// with the bytes read so far and the total after each segment.
func Verify(fsys vfs.FS, dir string, progress func(done, total int64)) (*Checked, error) {
	dir = filepath.Clean(dir)
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: verify: %w", err)
	}
	var segs []segment
	var total int64
	for _, n := range names {
		if seq, first, ok := parseSegmentName(n); ok {
			segs = append(segs, segment{seq: seq, first: first, name: n})
			if st, err := fsys.Stat(filepath.Join(dir, n)); err == nil {
				total += st.Size()
			}
		}
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("wal: verify: no wal in %s: %w", dir, fs.ErrNotExist)
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, corruptf(filepath.Join(dir, segs[i].name), 0,
				"segment sequence %d follows %d: a segment is missing", segs[i].seq, segs[i-1].seq)
		}
	}
	w := &WAL{}
	r := newReplay()
	out := &Checked{}
	for i, seg := range segs {
		path := filepath.Join(dir, seg.name)
		out.Segments = append(out.Segments, path)
		last := i == len(segs)-1
		buf, err := readFile(fsys, path)
		if err != nil {
			return nil, err
		}
		scan, err := scanSegment(path, buf, last)
		if err != nil {
			return nil, err
		}
		if _, err := w.checkSegmentHeader(path, seg, scan, i == 0); err != nil {
			return nil, err
		}
		for _, rec := range scan.recs[2:] {
			if err := r.apply(path, rec); err != nil {
				return nil, err
			}
		}
		if scan.torn {
			out.TornTail = &CorruptError{File: path, Offset: scan.end, Reason: scan.tornReason}
		}
		out.Bytes += int64(len(buf))
		if progress != nil {
			progress(out.Bytes, total)
		}
	}
	out.Metadata = w.metadata
	out.HardState, out.Snapshot, out.Entries, out.LastIndex = r.hs, r.snap, r.ents, r.lastIndex
	return out, nil
}
