package etcdwal

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/vfs"
)

// cairnWAL writes a Cairn WAL with a few entries, cut into several segments,
// in dir.
func cairnWAL(t *testing.T, fsys vfs.FS, dir string) {
	t.Helper()
	w, err := wal.Create(wal.Config{FS: fsys, Dir: dir, SegmentSize: 512}, []byte(`{"memberID":1,"clusterID":2}`))
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 20; i++ {
		if err := w.Save(hardState(1, 1, i), ents(i, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDetect(t *testing.T) {
	check := func(t *testing.T, fsys vfs.FS, dir string, want Format) {
		t.Helper()
		got, err := Detect(fsys, dir)
		if err != nil || got != want {
			t.Fatalf("Detect(%s) = %v, %v; want %v", dir, got, err, want)
		}
	}
	m := vfs.NewMem()
	check(t, m, "/missing", FormatNone)
	if err := m.MkdirAll("/empty", 0o700); err != nil {
		t.Fatal(err)
	}
	check(t, m, "/empty", FormatNone)
	writeFile(t, m, "/tmponly/0.tmp", make([]byte, 64))
	check(t, m, "/tmponly", FormatNone)

	for _, name := range []string{"member", "restored"} {
		loadFixture(t, name).toMem(t, m, "/"+name)
		check(t, m, "/"+name+"/wal", FormatEtcd)
	}
	threeSegments().write(t, m, "/etcd3", 0)
	check(t, m, "/etcd3", FormatEtcd)

	cairnWAL(t, m, "/cairn")
	if names, _ := m.List("/cairn"); len(names) < 2 {
		t.Fatalf("want a Cairn WAL of several segments, have %v", names)
	}
	check(t, m, "/cairn", FormatCairn)

	// The same file names hold either format: the readers never take one
	// for the other.
	if _, err := Read(m, "/cairn", ""); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read of a Cairn WAL: %v", err)
	}
	if _, err := wal.Open(wal.Config{FS: m, Dir: "/member/wal"}); !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("wal.Open of an etcd WAL: %v", err)
	}
}

func TestDetectRefusesMixedAndUnknown(t *testing.T) {
	m := vfs.NewMem()
	cairnWAL(t, m, "/cairn")
	cairnSeg := readMem(t, m, filepath.Join("/cairn", SegmentName(0, 0)))

	// An etcd WAL with a Cairn segment after its own.
	threeSegments().write(t, m, "/mixed", 0)
	writeFile(t, m, filepath.Join("/mixed", SegmentName(3, 26)), cairnSeg)
	// Segments that are neither.
	writeFile(t, m, filepath.Join("/zero", SegmentName(0, 0)), make([]byte, 4096))
	writeFile(t, m, filepath.Join("/short", SegmentName(0, 0)), []byte{1, 2, 3})
	writeFile(t, m, filepath.Join("/emptyfile", SegmentName(0, 0)), nil)
	for _, dir := range []string{"/mixed", "/zero", "/short", "/emptyfile"} {
		f, err := Detect(m, dir)
		if !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("Detect(%s) = %v, %v; want ErrUnknownFormat", dir, f, err)
		}
	}
}

// A Cairn segment head and an etcd one are told apart whatever their
// checksums: the heads of many generated segments of each are recognized as
// what they are and never as the other.
func TestDetectHeads(t *testing.T) {
	m := vfs.NewMem()
	for i := range 50 {
		dir := fmt.Sprintf("/c/%d", i)
		w, err := wal.Create(wal.Config{FS: m, Dir: dir, SegmentSize: 256}, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		for j := uint64(1); j <= 8; j++ {
			if err := w.Save(hardState(uint64(i), 1, j), ents(j, j, uint64(i))); err != nil {
				t.Fatal(err)
			}
		}
		_ = w.Close()
		names, _ := m.List(dir)
		for _, n := range names {
			head, err := readHead(m, filepath.Join(dir, n), headSize)
			if err != nil {
				t.Fatal(err)
			}
			if !wal.StartsWithSegmentRecord(head) || startsWithCRCRecord(head) {
				t.Fatalf("Cairn segment %s/%s: head % x", dir, n, head)
			}
		}
		e := newEtcdLog(testMetadata(uint64(i), 7))
		for j := uint64(1); j <= 8; j++ {
			e.entries(ents(j, j, uint64(i))...)
			e.cut()
		}
		for _, s := range e.segs {
			head := s.data[:min(len(s.data), headSize)]
			if wal.StartsWithSegmentRecord(head) || !startsWithCRCRecord(head) {
				t.Fatalf("etcd segment %s: head % x", s.name, head)
			}
		}
	}
}
