package etcdwal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/vfs"
)

// fuzzSeeds returns the segments of the fixtures and of a synthetic WAL.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, name := range []string{"member", "restored"} {
		matches, _ := filepath.Glob(filepath.Join("testdata", name, "member", "wal", "*.wal"))
		for _, p := range matches {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			seeds = append(seeds, b)
		}
	}
	for _, s := range threeSegments().segs {
		seeds = append(seeds, s.data)
	}
	return seeds
}

// FuzzDecodeSegment feeds arbitrary bytes to the frame decoder (as the last
// segment and as an earlier one) and to Read and Import (as a WAL's only
// segment). None may panic. Records come out 8-byte aligned in increasing
// order, only a last segment has a torn tail, and whatever Read accepts
// Import must convert into a Cairn WAL that reads back as the same log
// (Import checks that itself), unless its marker has no conf state.
func FuzzDecodeSegment(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, last := range []bool{false, true} {
			d := segmentDecoder{file: "fuzz", buf: data, last: last}
			prev := int64(-1)
			for {
				rec, err := d.next()
				if err != nil {
					var torn *tornError
					if errors.As(err, &torn) && !last {
						t.Fatalf("torn tail in a segment that is not the last")
					}
					break
				}
				if rec.off%8 != 0 || rec.off <= prev || rec.off >= int64(len(data)) || d.off > int64(len(data)) {
					t.Fatalf("record at %d after %d, next at %d, in %d bytes", rec.off, prev, d.off, len(data))
				}
				prev = rec.off
				_, _ = parseSnapshotMarker(rec.data)
				_, _ = parseMetadata(rec.data)
			}
		}
		_ = startsWithCRCRecord(data)

		m := vfs.NewMem()
		writeFile(t, m, filepath.Join("/d/wal", SegmentName(0, 0)), data)
		l, err := Read(m, "/d/wal", "")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read: an error that is not ErrCorrupt: %v", err)
			}
			return
		}
		if l.Snapshot.GetIndex() > 0 && l.Snapshot.ConfState == nil {
			return
		}
		cfg := importConfig(m, "/d")
		cfg.SnapDir = ""
		if _, err := Import(cfg); err != nil {
			t.Fatalf("Read accepted the WAL but Import failed: %v", err)
		}
		checkImported(t, m, "/d/wal", l)
	})
}

// FuzzReadSnapFile feeds arbitrary bytes to the snapshot file decoder.
func FuzzReadSnapFile(f *testing.F) {
	for _, name := range []string{"member", "restored"} {
		matches, _ := filepath.Glob(filepath.Join("testdata", name, "member", "snap", "*.snap"))
		for _, p := range matches {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeSnapFile("fuzz", data)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("an error that is not ErrCorrupt: %v", err)
		}
		if err == nil && s == nil {
			t.Fatal("no snapshot and no error")
		}
	})
}

// FuzzRecords builds a WAL of well-framed, correctly checksummed records
// from arbitrary bytes (so the fuzzer gets past the checksums to the
// replay): after etcd's usual head, each record takes a type byte, a length
// byte and that many bytes of data; a type byte of 0xff cuts a new segment.
// Read must not panic and must return only ErrCorrupt; what it accepts
// Import must convert faithfully.
func FuzzRecords(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 6, 0x10, 0x01, 0x18, 0x01, 0x20, 0x00, 3, 6, 0x08, 0x01, 0x10, 0x01, 0x18, 0x01})
	f.Add([]byte{2, 4, 0x10, 0x01, 0x18, 0x01, 0xff, 2, 4, 0x10, 0x02, 0x18, 0x01, 5, 4, 0x08, 0x01, 0x10, 0x01, 3, 2, 0x18, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		w := newEtcdLog(md)
		for len(data) >= 2 {
			typ, n := data[0], int(data[1])
			data = data[2:]
			if typ == 0xff {
				w.cut()
				continue
			}
			n = min(n, len(data))
			w.record(int64(typ%6), data[:n])
			data = data[n:]
		}
		m := vfs.NewMem()
		w.write(t, m, "/d/wal", 8)
		l, err := Read(m, "/d/wal", "")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read: an error that is not ErrCorrupt: %v", err)
			}
			return
		}
		if l.TornTail != nil {
			t.Fatalf("torn tail in a well-framed WAL: %v", l.TornTail)
		}
		if l.Snapshot.GetIndex() > 0 && l.Snapshot.ConfState == nil {
			return
		}
		cfg := importConfig(m, "/d")
		cfg.SnapDir = ""
		if _, err := Import(cfg); err != nil {
			t.Fatalf("Read accepted the WAL but Import failed: %v", err)
		}
		checkImported(t, m, "/d/wal", l)
	})
}
