package wal

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/vfs"
	"google.golang.org/protobuf/proto"
)

// FuzzDecodeRecord feeds arbitrary bytes to the record decoder, the segment
// scanner and Open (as the only segment of a WAL). None may panic; what they
// accept must be self-consistent, and a repaired WAL must reopen to the same
// contents without another repair.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendRecord(nil, 0, kindEntry, []byte{0x10, 0x01, 0x18, 0x01}))
	f.Fuzz(func(t *testing.T, data []byte) {
		for off := int64(0); off <= int64(len(data)) && off < 1<<12; off += 8 {
			rec, size, st, _ := decodeRecord(data, off)
			if st == frameOK {
				if size < headerSize+8 || off+size > int64(len(data)) || rec.off != off {
					t.Fatalf("decodeRecord(%d): size %d, rec.off %d, len %d", off, size, rec.off, len(data))
				}
				_ = newReplay().apply("fuzz", rec)
				_, _, _ = decodeSegmentPayload(rec.payload)
			}
		}
		for _, last := range []bool{false, true} {
			scan, err := scanSegment("fuzz", data, last)
			if err != nil {
				continue
			}
			if scan.end%8 != 0 || scan.end > int64(len(data)) || (scan.torn && !last) {
				t.Fatalf("scanSegment(last=%v): end %d torn %v len %d", last, scan.end, scan.torn, len(data))
			}
			r := newReplay()
			for _, rec := range scan.recs {
				if rec.off >= scan.end {
					t.Fatalf("record at %d at or past end %d", rec.off, scan.end)
				}
				if rec.kind != kindSegment && rec.kind != kindMetadata {
					_ = r.apply("fuzz", rec)
				}
			}
		}
		fuzzOpen(t, data)
	})
}

func fuzzOpen(t *testing.T, data []byte) {
	m := vfs.NewMem()
	cfg := Config{FS: m, Dir: "/wal", SegmentSize: 4096}
	if err := m.MkdirAll(cfg.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := m.Create(filepath.Join(cfg.Dir, segmentName(0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write(data)
	_ = f.Close()
	w, err := Open(cfg)
	if err != nil {
		return
	}
	md, st, snap, es, err := w.ReadAll()
	if err != nil {
		t.Fatalf("ReadAll after a successful Open: %v", err)
	}
	_ = w.Close()
	logger, logs := observedLogger()
	cfg.Logger = logger
	w2, err := Open(cfg)
	if err != nil {
		t.Fatalf("reopen after a successful Open: %v", err)
	}
	defer w2.Close()
	if n := logs.FilterMessage("repairing torn wal tail").Len(); n != 0 {
		t.Fatalf("second Open repaired again")
	}
	md2, st2, snap2, es2, err := w2.ReadAll()
	if err != nil || !bytes.Equal(md, md2) || !proto.Equal(st, st2) || !proto.Equal(snap, snap2) || len(es) != len(es2) {
		t.Fatalf("reopen read different contents (err %v)", err)
	}
	for i := range es {
		if !proto.Equal(es[i], es2[i]) {
			t.Fatalf("entry %d differs after reopen", i)
		}
	}
}
