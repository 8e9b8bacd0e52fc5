package etcdwal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/vfs"
)

const walDir = "/data/member/wal"

var md = testMetadata(0xaaa, 0xccc)

// threeSegments is a WAL etcd could have written: entries 1..10, a cut,
// entries 11..20 with a snapshot at 15, a cut, entries 21..25.
func threeSegments() *etcdLog {
	w := newEtcdLog(md)
	w.entries(ents(1, 10, 1)...)
	w.state(hardState(1, 1, 10))
	w.cut()
	w.entries(ents(11, 20, 1)...)
	w.state(hardState(1, 1, 18))
	w.marker(15, 1, voters(1, 2, 3))
	w.cut()
	w.entries(ents(21, 25, 2)...)
	w.state(hardState(2, 2, 24))
	return w
}

func mustRead(t *testing.T, fsys vfs.FS) *Log {
	t.Helper()
	l, err := Read(fsys, walDir, "")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func checkEntries(t *testing.T, got []*raftpb.Entry, want ...*raftpb.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries (%v), want %d", len(got), indexes(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("entry %d: %v, want %v", i, got[i], want[i])
		}
	}
}

func indexes(es []*raftpb.Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.GetIndex())
	}
	return out
}

func TestReadSegments(t *testing.T) {
	m := vfs.NewMem()
	w := threeSegments()
	w.write(t, m, walDir, 1<<16)
	l := mustRead(t, m)
	wantSegs := []string{SegmentName(0, 0), SegmentName(1, 11), SegmentName(2, 21)}
	if strings.Join(l.Segments, " ") != strings.Join(wantSegs, " ") {
		t.Fatalf("segments %v, want %v", l.Segments, wantSegs)
	}
	if l.Metadata != (Metadata{NodeID: 0xaaa, ClusterID: 0xccc}) || !bytes.Equal(l.RawMetadata, md) {
		t.Fatalf("metadata %+v", l.Metadata)
	}
	if !proto.Equal(l.HardState, hardState(2, 2, 24)) {
		t.Fatalf("hardstate %v", l.HardState)
	}
	want := &raftpb.SnapshotMetadata{Index: proto.Uint64(15), Term: proto.Uint64(1), ConfState: voters(1, 2, 3)}
	if !proto.Equal(l.Snapshot, want) || len(l.Markers) != 2 {
		t.Fatalf("snapshot %v, markers %v", l.Snapshot, l.Markers)
	}
	checkEntries(t, l.Entries, append(ents(16, 20, 1), ents(21, 25, 2)...)...)
	if l.TornTail != nil {
		t.Fatal(l.TornTail)
	}
}

// A marker above the last commit index is not used (etcd's
// ValidSnapshotEntries), nor is the newest snapshot file then.
func TestReadMarkerAboveCommit(t *testing.T) {
	m := vfs.NewMem()
	w := newEtcdLog(md)
	w.entries(ents(1, 10, 1)...)
	w.state(hardState(1, 1, 5))
	w.marker(4, 1, voters(1))
	w.marker(8, 1, voters(1))
	w.write(t, m, walDir, 0)
	l := mustRead(t, m)
	if l.Snapshot.GetIndex() != 4 || len(l.Markers) != 3 {
		t.Fatalf("snapshot %v, markers %v", l.Snapshot, l.Markers)
	}
	checkEntries(t, l.Entries, ents(5, 10, 1)...)
}

// An entry at an index already in the log replaces it and every later one,
// within a segment and across a cut.
func TestReadOverwrittenEntries(t *testing.T) {
	m := vfs.NewMem()
	w := newEtcdLog(md)
	w.entries(ents(1, 10, 1)...)
	w.entries(ents(6, 8, 2)...)
	w.cut() // named after index 9: the last entry written is 8
	w.entries(ents(9, 12, 2)...)
	w.entries(ents(7, 7, 3)...)
	w.state(hardState(3, 1, 6))
	w.write(t, m, walDir, 8)
	l := mustRead(t, m)
	if l.Segments[1] != SegmentName(1, 9) {
		t.Fatalf("segments %v", l.Segments)
	}
	checkEntries(t, l.Entries, append(append(ents(1, 5, 1), ents(6, 6, 2)...), ents(7, 7, 3)...)...)
}

// Older segments may have been released: reading starts at the segment
// holding the start marker, with the checksum chain taken from its crc
// record.
func TestReadReleasedSegments(t *testing.T) {
	m := vfs.NewMem()
	threeSegments().write(t, m, walDir, 0)
	if err := m.Remove(filepath.Join(walDir, SegmentName(0, 0))); err != nil {
		t.Fatal(err)
	}
	l := mustRead(t, m)
	if l.Snapshot.GetIndex() != 15 || len(l.Entries) != 10 || !proto.Equal(l.HardState, hardState(2, 2, 24)) {
		t.Fatalf("snapshot %v, %d entries, hardstate %v", l.Snapshot, len(l.Entries), l.HardState)
	}

	// Without a usable marker the log must start at segment 0-0.
	m = vfs.NewMem()
	w := newEtcdLog(md)
	w.entries(ents(1, 5, 1)...)
	w.cut()
	w.entries(ents(6, 9, 1)...)
	w.state(hardState(1, 1, 9))
	w.write(t, m, walDir, 0)
	if err := m.Remove(filepath.Join(walDir, SegmentName(0, 0))); err != nil {
		t.Fatal(err)
	}
	expectCorrupt(t, m, SegmentName(1, 6), 0, "no segment starts at or before")
}

func TestReadEmptyDir(t *testing.T) {
	m := vfs.NewMem()
	if _, err := Read(m, walDir, ""); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
	if err := m.MkdirAll(walDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, m, filepath.Join(walDir, "0.tmp"), make([]byte, 4096))
	if _, err := Read(m, walDir, ""); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("dir with only a .tmp: %v", err)
	}
}

// etcd's preallocated next segment (N.tmp) is ignored; a .wal file whose
// name is not a segment's is refused rather than guessed at.
func TestReadFileNames(t *testing.T) {
	m := vfs.NewMem()
	threeSegments().write(t, m, walDir, 0)
	writeFile(t, m, filepath.Join(walDir, "0.tmp"), make([]byte, 1<<12))
	writeFile(t, m, filepath.Join(walDir, "notes.txt"), []byte("x"))
	if l := mustRead(t, m); len(l.Segments) != 3 {
		t.Fatalf("segments %v", l.Segments)
	}
	writeFile(t, m, filepath.Join(walDir, "1-b.wal"), nil)
	expectCorrupt(t, m, "1-b.wal", 0, "name")
}

// offsets returns the frame offsets of a segment's records.
func offsets(t *testing.T, buf []byte) []int64 {
	t.Helper()
	var out []int64
	for off := int64(0); off+8 <= int64(len(buf)); {
		word := binary.LittleEndian.Uint64(buf[off:])
		if word == 0 {
			break
		}
		size, pad, _ := splitLengthWord(word)
		out = append(out, off)
		off += 8 + size + pad
	}
	return out
}

// expectCorrupt reads the WAL and wants a CorruptError for file (a base
// name) at off whose reason contains reason.
func expectCorrupt(t *testing.T, fsys vfs.FS, file string, off int64, reason string) *CorruptError {
	t.Helper()
	l, err := Read(fsys, walDir, "")
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err %v (log %+v), want a CorruptError", err, l)
	}
	if filepath.Base(ce.File) != file || ce.Offset != off || !strings.Contains(ce.Reason, reason) {
		t.Fatalf("got %v; want file %s offset %d reason containing %q", err, file, off, reason)
	}
	return ce
}

// editSegment rewrites segment i of a three-segment WAL in fsys with edit.
func editSegment(t *testing.T, fsys vfs.FS, name string, edit func(buf []byte, offs []int64) []byte) {
	t.Helper()
	p := filepath.Join(walDir, name)
	buf := readMem(t, fsys, p)
	writeFile(t, fsys, p, edit(buf, offsets(t, buf)))
}

func TestReadTornTail(t *testing.T) {
	seg2 := SegmentName(2, 21)
	cases := []struct {
		name string
		// edit damages the last segment and returns the offset of the
		// torn record.
		edit   func(b []byte, offs []int64) ([]byte, int64)
		reason string
		hs     *raftpb.HardState // the last one before the torn record
	}{
		{"truncated record", func(b []byte, offs []int64) ([]byte, int64) {
			at := offs[len(offs)-1] // the HardState
			return b[:at+12], at
		}, "runs past the end", hardState(1, 1, 18)},
		{"truncated length word", func(b []byte, _ []int64) ([]byte, int64) {
			return append(b, 0x20, 0, 0, 0), int64(len(b))
		}, "too few for a length word", hardState(2, 2, 24)},
		{"zeroed sector", func(b []byte, offs []int64) ([]byte, int64) {
			// The last record (a 1500-byte entry) had a whole sector
			// of its data never written.
			at := offs[len(offs)-1]
			lo := ((at+8)/sectorSize + 1) * sectorSize
			copy(b[lo:lo+sectorSize], make([]byte, sectorSize))
			return b, at
		}, "all zeros", hardState(2, 2, 24)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := vfs.NewMem()
			w := threeSegments()
			if c.name == "zeroed sector" {
				w.entries(ent(26, 2, strings.Repeat("x", 1500)))
			}
			w.write(t, m, walDir, 0)
			var at int64
			editSegment(t, m, seg2, func(b []byte, offs []int64) []byte {
				var out []byte
				out, at = c.edit(b, offs)
				return out
			})
			l := mustRead(t, m)
			if l.TornTail == nil || filepath.Base(l.TornTail.File) != seg2 || l.TornTail.Offset != at || !strings.Contains(l.TornTail.Reason, c.reason) {
				t.Fatalf("torn tail %v, want at %d in %s (%s)", l.TornTail, at, seg2, c.reason)
			}
			if !proto.Equal(l.HardState, c.hs) {
				t.Fatalf("hardstate %v, want %v", l.HardState, c.hs)
			}
			checkEntries(t, l.Entries, append(ents(16, 20, 1), ents(21, 25, 2)...)...)
		})
	}

	t.Run("crc mismatch without a zeroed sector is corruption", func(t *testing.T) {
		m := vfs.NewMem()
		threeSegments().write(t, m, walDir, 0)
		var at int64
		editSegment(t, m, seg2, func(b []byte, offs []int64) []byte {
			at = offs[len(offs)-1]
			b[lastDataByte(b, at)] ^= 1
			return b
		})
		expectCorrupt(t, m, seg2, at, "crc mismatch")
	})
}

// lastDataByte returns the offset of the last byte of the record framed at
// at (the end of its data field).
func lastDataByte(b []byte, at int64) int64 {
	size, _, _ := splitLengthWord(binary.LittleEndian.Uint64(b[at:]))
	return at + 8 + size - 1
}

// Damage that is no torn tail is reported with its file and offset.
func TestReadCorruption(t *testing.T) {
	seg0, seg1, seg2 := SegmentName(0, 0), SegmentName(1, 11), SegmentName(2, 21)
	type edit func(t *testing.T, m *vfs.MemFS) (file string, off int64, reason string)
	base := func(t *testing.T, m *vfs.MemFS) { threeSegments().write(t, m, walDir, 0) }
	cases := map[string]edit{
		"truncated record in an earlier segment": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			base(t, m)
			var at int64
			editSegment(t, m, seg1, func(b []byte, offs []int64) []byte { at = offs[len(offs)-1]; return b[:at+10] })
			return seg1, at, "not the last segment"
		},
		"flipped bit in an entry": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			base(t, m)
			var at int64
			editSegment(t, m, seg0, func(b []byte, offs []int64) []byte { at = offs[5]; b[lastDataByte(b, at)] ^= 0x10; return b })
			return seg0, at, "crc mismatch"
		},
		"bad length word": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			base(t, m)
			var at int64
			editSegment(t, m, seg1, func(b []byte, offs []int64) []byte { at = offs[4]; b[at+7] |= 0x40; return b })
			return seg1, at, "length word"
		},
		"crc chain broken at a cut": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			base(t, m)
			editSegment(t, m, seg2, func(b []byte, offs []int64) []byte { b[8+3] ^= 1; return b })
			return seg2, 0, "crc record says"
		},
		"missing segment": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			base(t, m)
			if err := m.Remove(filepath.Join(walDir, seg1)); err != nil {
				t.Fatal(err)
			}
			return seg2, 0, "a segment is missing"
		},
		"metadata differs": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			w := newEtcdLog(md)
			w.entries(ents(1, 10, 1)...)
			w.state(hardState(1, 1, 10))
			w.cut()
			w.md = testMetadata(0xbbb, 0xccc)
			w.cut()
			w.write(t, m, walDir, 0)
			return SegmentName(2, 11), 16, "metadata differs"
		},
		"unknown record type": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			w := threeSegments()
			at := int64(len(w.segs[2].data))
			w.record(9, []byte("future"))
			w.write(t, m, walDir, 0)
			return seg2, at, "unknown record type 9"
		},
		"undecodable entry": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			w := threeSegments()
			at := int64(len(w.segs[2].data))
			w.record(typeEntry, []byte{0xff, 0xff})
			w.write(t, m, walDir, 0)
			return seg2, at, "undecodable entry"
		},
		"undecodable record": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			w := threeSegments()
			at := int64(len(w.segs[2].data))
			w.appendFrame([]byte{0x08, 0x02, 0x1a, 0x7f, 0x01, 0x02, 0x03}) // data runs past the record
			w.write(t, m, walDir, 0)
			return seg2, at, "undecodable record"
		},
		"gap in the entries": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			w := threeSegments()
			at := int64(len(w.segs[2].data))
			w.entries(ents(27, 27, 2)...)
			w.write(t, m, walDir, 0)
			return seg2, at, "entries are missing"
		},
		"marker with another term": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			w := threeSegments()
			w.marker(15, 2, voters(1, 2, 3)) // the one chosen; segment 1's has term 1
			w.write(t, m, walDir, 0)
			b := readMem(t, m, filepath.Join(walDir, seg1))
			offs := offsets(t, b)
			return seg1, offs[len(offs)-1], "has term 1"
		},
		"undecodable hardstate": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			w := threeSegments()
			at := int64(len(w.segs[2].data))
			w.record(typeState, []byte{0x08})
			w.write(t, m, walDir, 0)
			return seg2, at, "undecodable hardstate"
		},
		"undecodable marker": func(t *testing.T, m *vfs.MemFS) (string, int64, string) {
			w := threeSegments()
			at := int64(len(w.segs[2].data))
			w.record(typeSnapshot, []byte{0x1a, 0x02, 0xff, 0xff})
			w.write(t, m, walDir, 0)
			return seg2, at, "undecodable snapshot marker"
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			m := vfs.NewMem()
			file, off, reason := c(t, m)
			ce := expectCorrupt(t, m, file, off, reason)
			if !strings.Contains(ce.Error(), file) {
				t.Fatalf("error %q does not name the file", ce)
			}
		})
	}
}

// Whatever follows a zero length word is not read, as etcd does (it zeroes
// it when it next opens the WAL for writing).
func TestReadStopsAtZeroWord(t *testing.T) {
	m := vfs.NewMem()
	w := threeSegments()
	w.write(t, m, walDir, 0)
	editSegment(t, m, SegmentName(2, 21), func(b []byte, _ []int64) []byte {
		return append(append(b, make([]byte, 8)...), bytes.Repeat([]byte{0xee}, 100)...)
	})
	l := mustRead(t, m)
	if l.TornTail != nil || len(l.Entries) != 10 {
		t.Fatalf("torn %v, %d entries", l.TornTail, len(l.Entries))
	}
}

// The snapshot file matching the start marker is read; a marker without a
// conf state (etcd < 3.5) takes the file's; damage or disagreement is an
// error; a missing file is not (etcd 3.7 does not need it).
func TestReadSnapDir(t *testing.T) {
	const snapDir = "/data/member/snap"
	cs := voters(1, 2, 3)
	snapFile := func(t *testing.T, m vfs.FS, index, term uint64, cs *raftpb.ConfState) {
		data, err := proto.Marshal(&raftpb.Snapshot{
			Data:     []byte(`{"Root":{}}`),
			Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(term), ConfState: cs},
		})
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, m, filepath.Join(snapDir, SnapFileName(1, 15)), snapFileBytes(data))
	}
	setup := func(t *testing.T, markerCS *raftpb.ConfState) *vfs.MemFS {
		m := vfs.NewMem()
		w := newEtcdLog(md)
		w.entries(ents(1, 20, 1)...)
		w.marker(15, 1, markerCS)
		w.state(hardState(1, 1, 20))
		w.write(t, m, walDir, 0)
		if err := m.MkdirAll(snapDir, 0o700); err != nil {
			t.Fatal(err)
		}
		return m
	}

	m := setup(t, cs)
	l, err := Read(m, walDir, snapDir)
	if err != nil || l.Snap != nil || l.SnapFile != "" || !proto.Equal(l.Snapshot.GetConfState(), cs) {
		t.Fatalf("no snap file: %v, %+v", err, l)
	}
	snapFile(t, m, 15, 1, cs)
	if l, err = Read(m, walDir, snapDir); err != nil || l.Snap == nil {
		t.Fatalf("with the snap file: %v, %+v", err, l)
	}

	m = setup(t, nil)
	if l, err = Read(m, walDir, snapDir); err != nil || l.Snapshot.ConfState != nil {
		t.Fatalf("old marker, no file: %v, %v", err, l.Snapshot)
	}
	snapFile(t, m, 15, 1, cs)
	if l, err = Read(m, walDir, snapDir); err != nil || !proto.Equal(l.Snapshot.GetConfState(), cs) {
		t.Fatalf("old marker with a file: %v, %v", err, l.Snapshot)
	}

	for name, f := range map[string]func(m *vfs.MemFS){
		"conf states differ": func(m *vfs.MemFS) { snapFile(t, m, 15, 1, voters(1, 2)) },
		"wrong contents":     func(m *vfs.MemFS) { snapFile(t, m, 16, 1, cs) },
		"damaged": func(m *vfs.MemFS) {
			writeFile(t, m, filepath.Join(snapDir, SnapFileName(1, 15)), []byte{0x08, 0x01, 0x12, 0x01, 0x00})
		},
	} {
		m := setup(t, cs)
		f(m)
		_, err := Read(m, walDir, snapDir)
		var ce *CorruptError
		if !errors.As(err, &ce) || filepath.Base(ce.File) != SnapFileName(1, 15) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// snapFileBytes frames raft snapshot bytes as an etcd snapshot file.
func snapFileBytes(data []byte) []byte {
	var b []byte
	b = append(b, 0x08)
	b = binary.AppendUvarint(b, uint64(crc32c(data)))
	b = append(b, 0x12)
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}
