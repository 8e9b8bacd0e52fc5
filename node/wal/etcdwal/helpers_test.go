package etcdwal

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/vfs"
)

// This file holds a writer of etcd's WAL format for the tests (written from
// the format, checked against etcd's own bytes by TestEncoderReproducesEtcd)
// and helpers for the fixtures that scripts/etcd-fixtures.sh made.

// etcdSegment is one segment file the test writer made.
type etcdSegment struct {
	name string
	data []byte
}

// etcdLog writes an etcd WAL in memory as etcd's WAL would: Create, Save,
// SaveSnapshot and cut, with etcd's framing and checksum chain.
type etcdLog struct {
	segs []etcdSegment
	crc  uint32
	md   []byte
	enti uint64 // index of the last entry written
	hs   *raftpb.HardState
}

// newEtcdLog starts a WAL as etcd's wal.Create does: segment 0-0 with a crc
// record, the metadata and the empty snapshot marker.
func newEtcdLog(md []byte) *etcdLog {
	w := &etcdLog{md: md}
	w.segs = []etcdSegment{{name: SegmentName(0, 0)}}
	w.crcRecord()
	w.record(typeMetadata, md)
	w.marker(0, 0, nil)
	return w
}

func testMetadata(node, cluster uint64) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, node)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, cluster)
	return b
}

// frame appends one framed walpb.Record to the current segment.
func (w *etcdLog) frame(typ int64, crc uint32, data []byte, withData bool) {
	var rec []byte
	rec = protowire.AppendTag(rec, 1, protowire.VarintType)
	rec = protowire.AppendVarint(rec, uint64(typ))
	rec = protowire.AppendTag(rec, 2, protowire.VarintType)
	rec = protowire.AppendVarint(rec, uint64(crc))
	if withData {
		rec = protowire.AppendTag(rec, 3, protowire.BytesType)
		rec = protowire.AppendBytes(rec, data)
	}
	w.appendFrame(rec)
}

func (w *etcdLog) appendFrame(rec []byte) {
	word := uint64(len(rec))
	pad := (8 - len(rec)%8) % 8
	if pad != 0 {
		word |= uint64(0x80|pad) << 56
	}
	s := &w.segs[len(w.segs)-1]
	s.data = binary.LittleEndian.AppendUint64(s.data, word)
	s.data = append(s.data, rec...)
	s.data = append(s.data, make([]byte, pad)...)
}

func (w *etcdLog) record(typ int64, data []byte) {
	w.crc = crc32.Update(w.crc, crc32.MakeTable(crc32.Castagnoli), data)
	w.frame(typ, w.crc, data, true)
}

func (w *etcdLog) crcRecord() { w.frame(typeCRC, w.crc, nil, false) }

func (w *etcdLog) entries(es ...*raftpb.Entry) {
	for _, e := range es {
		b, err := proto.Marshal(e)
		if err != nil {
			panic(err)
		}
		w.record(typeEntry, b)
		w.enti = e.GetIndex()
	}
}

func (w *etcdLog) state(hs *raftpb.HardState) {
	b, err := proto.Marshal(hs)
	if err != nil {
		panic(err)
	}
	w.record(typeState, b)
	w.hs = hs
}

// marker writes a snapshot marker; cs nil writes none (as before etcd 3.5).
func (w *etcdLog) marker(index, term uint64, cs *raftpb.ConfState) {
	w.record(typeSnapshot, encodeMarker(index, term, cs))
	w.enti = max(w.enti, index)
}

func encodeMarker(index, term uint64, cs *raftpb.ConfState) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, index)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, term)
	if cs != nil {
		c, err := proto.Marshal(cs)
		if err != nil {
			panic(err)
		}
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, c)
	}
	return b
}

// cut starts a new segment as etcd's cut does: named after the last entry
// index + 1, opening with a crc record carrying the chain, the metadata and
// the latest HardState.
func (w *etcdLog) cut() {
	last := w.segs[len(w.segs)-1].name
	seq, _, _ := parseSegmentName(last)
	w.segs = append(w.segs, etcdSegment{name: SegmentName(seq+1, w.enti+1)})
	w.crcRecord()
	w.record(typeMetadata, w.md)
	if w.hs != nil {
		w.state(w.hs)
	}
}

// write puts the segments in dir of fsys; the last one gets tail zero bytes
// after its records (etcd preallocates).
func (w *etcdLog) write(t testing.TB, fsys vfs.FS, dir string, tail int) {
	t.Helper()
	if err := vfs.MkdirAllSynced(fsys, dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for i, s := range w.segs {
		data := s.data
		if i == len(w.segs)-1 {
			data = append(append([]byte(nil), data...), make([]byte, tail)...)
		}
		writeFile(t, fsys, filepath.Join(dir, s.name), data)
	}
}

func writeFile(t testing.TB, fsys vfs.FS, path string, data []byte) {
	t.Helper()
	// The fixture is durable, directory entries included: it stands for
	// a data dir that was on disk before the test.
	if err := vfs.MkdirAllSynced(fsys, filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
}

func readMem(t testing.TB, fsys vfs.FS, path string) []byte {
	t.Helper()
	b, err := readFile(fsys, path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Type: raftpb.EntryNormal.Enum(), Data: []byte(data)}
}

func ents(lo, hi, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, ent(i, term, "e"+strconv.FormatUint(i, 10)+"t"+strconv.FormatUint(term, 10)))
	}
	return out
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

func voters(ids ...uint64) *raftpb.ConfState { return &raftpb.ConfState{Voters: ids} }

// fixture is a member directory made by scripts/etcd-fixtures.sh.
type fixture struct {
	name   string // testdata/<name>
	expect struct {
		MemberID      string   `json:"member_id"`
		ClusterID     string   `json:"cluster_id"`
		RaftIndex     uint64   `json:"raft_index"`
		RaftTerm      uint64   `json:"raft_term"`
		SnapshotCount uint64   `json:"snapshot_count"`
		Voters        []string `json:"voters"`
		// What etcd logged when restarted on these very files.
		EtcdRestart struct {
			SnapshotIndex uint64 `json:"snapshot_index"`
			WALSnaps      int    `json:"wal_snaps"`
			CommitIndex   uint64 `json:"commit_index"`
			LastIndex     uint64 `json:"last_index"`
			LastTerm      uint64 `json:"last_term"`
		} `json:"etcd_restart"`
	}
}

func loadFixture(t testing.TB, name string) *fixture {
	t.Helper()
	f := &fixture{name: name}
	b, err := os.ReadFile(filepath.Join("testdata", name, "expect.json"))
	if err != nil {
		t.Fatalf("fixture %s: %v (regenerate with scripts/etcd-fixtures.sh)", name, err)
	}
	if err := json.Unmarshal(b, &f.expect); err != nil {
		t.Fatal(err)
	}
	return f
}

// dir is the fixture's member directory on disk (read only).
func (f *fixture) dir() string { return filepath.Join("testdata", f.name, "member") }

// toMem copies the fixture's member directory into fsys under root (synced,
// so a MemFS crash keeps it) and returns the copied files' contents by path.
func (f *fixture) toMem(t testing.TB, fsys vfs.FS, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(f.dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(f.dir(), p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(root, rel)
		writeFile(t, fsys, dst, b)
		files[dst] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.SyncDir(root); err != nil {
		t.Fatal(err)
	}
	return files
}

func hexID(t testing.TB, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		t.Fatalf("bad hex ID %q: %v", s, err)
	}
	return v
}

// cairnMetadata is package node's WAL metadata (walMetadata), as the
// importer's caller will make it.
func cairnMetadata(m Metadata) ([]byte, error) {
	return json.Marshal(struct {
		MemberID  uint64 `json:"memberID"`
		ClusterID uint64 `json:"clusterID"`
	}{m.NodeID, m.ClusterID})
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
