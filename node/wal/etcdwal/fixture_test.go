package etcdwal

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/vfs"
)

// The tests in this file read the WAL and snapshot files a real etcd 3.7
// and etcdutl wrote (testdata, made by scripts/etcd-fixtures.sh) and compare
// what Read finds with what etcd itself reported when it wrote them.

// TestReadStoppedMember reads the WAL of a one-member etcd stopped after
// some writes, with --snapshot-count 10.
func TestReadStoppedMember(t *testing.T) {
	f := loadFixture(t, "member")
	memberID := hexID(t, f.expect.MemberID)
	l, err := Read(vfs.OS(), filepath.Join(f.dir(), "wal"), filepath.Join(f.dir(), "snap"))
	if err != nil {
		t.Fatal(err)
	}
	if l.TornTail != nil {
		t.Fatalf("torn tail in a cleanly stopped member: %v", l.TornTail)
	}
	if got, want := l.Metadata, (Metadata{NodeID: memberID, ClusterID: hexID(t, f.expect.ClusterID)}); got != want {
		t.Fatalf("metadata %+v, etcd said %+v", got, want)
	}
	// etcd reported raft index and term just before the stop.
	hs := l.HardState
	if hs.GetTerm() != f.expect.RaftTerm || hs.GetCommit() != f.expect.RaftIndex || hs.GetVote() != memberID {
		t.Fatalf("hardstate %v, etcd said term %d, index %d (and the only member votes for itself)", hs, f.expect.RaftTerm, f.expect.RaftIndex)
	}
	// Markers: the empty one etcd's Create writes, then one per
	// snapshot, every SnapshotCount+1 applied entries.
	if len(l.Markers) < 3 || l.Markers[0].GetIndex() != 0 || l.Markers[0].GetTerm() != 0 {
		t.Fatalf("markers %v: want the empty marker and at least two snapshots", l.Markers)
	}
	for i, m := range l.Markers[1:] {
		if m.GetIndex() != uint64(i+1)*(f.expect.SnapshotCount+1) || !slices.Equal(m.GetConfState().GetVoters(), []uint64{memberID}) {
			t.Fatalf("marker %d is %v", i+1, m)
		}
		// etcd writes the snapshot file before the marker.
		p := filepath.Join(f.dir(), "snap", SnapFileName(m.GetTerm(), m.GetIndex()))
		snap, err := ReadSnapFile(vfs.OS(), p)
		if err != nil {
			t.Fatalf("marker %v: %v", m, err)
		}
		if !proto.Equal(snap.GetMetadata(), m) {
			t.Fatalf("%s holds %v, the marker is %v", p, snap.GetMetadata(), m)
		}
	}
	last := l.Markers[len(l.Markers)-1]
	if !proto.Equal(l.Snapshot, last) {
		t.Fatalf("starts from %v, want the newest marker %v", l.Snapshot, last)
	}
	if want := filepath.Join(f.dir(), "snap", SnapFileName(last.GetTerm(), last.GetIndex())); l.SnapFile != want || l.Snap == nil {
		t.Fatalf("snap file %q, want %q", l.SnapFile, want)
	}
	// The v2 membership JSON etcd still puts in its snapshots names the
	// member.
	if !bytes.Contains(l.Snap.GetData(), []byte(f.expect.MemberID)) {
		t.Fatalf("snapshot data does not name member %s: %.200s", f.expect.MemberID, l.Snap.GetData())
	}

	// Entries: contiguous after the marker up to the index etcd reported,
	// ending with the script's last writes: a txn (if k1 = v1, put k1,
	// else put k2), then puts k26..k28.
	if len(l.Entries) == 0 {
		t.Fatal("no entries after the marker")
	}
	for i, e := range l.Entries {
		if e.GetIndex() != last.GetIndex()+uint64(i)+1 || e.GetTerm() != f.expect.RaftTerm {
			t.Fatalf("entry %d: index %d term %d", i, e.GetIndex(), e.GetTerm())
		}
	}
	if got := l.Entries[len(l.Entries)-1].GetIndex(); got != f.expect.RaftIndex {
		t.Fatalf("last entry %d, etcd said raft index %d", got, f.expect.RaftIndex)
	}
	var reqs []*etcdserverpb.InternalRaftRequest
	for _, e := range l.Entries {
		r := &etcdserverpb.InternalRaftRequest{}
		if err := proto.Unmarshal(e.GetData(), r); err != nil {
			t.Fatalf("entry %d: %v", e.GetIndex(), err)
		}
		reqs = append(reqs, r)
	}
	tail := []string{"k26", "k27", "k28"}
	if len(reqs) < len(tail) {
		t.Fatalf("%d entries after the marker, want at least %d", len(reqs), len(tail))
	}
	for i, k := range tail {
		r := reqs[len(reqs)-len(tail)+i]
		if string(r.GetPut().GetKey()) != k || string(r.GetPut().GetValue()) != "v"+k[1:] {
			t.Fatalf("entry %d is %v, want put %s", len(reqs)-len(tail)+i, r, k)
		}
	}
	if n := len(reqs) - len(tail) - 1; n >= 0 {
		txn := reqs[n].GetTxn()
		if txn == nil || len(txn.GetCompare()) != 1 || len(txn.GetSuccess()) != 1 || len(txn.GetFailure()) != 1 ||
			string(txn.GetSuccess()[0].GetRequestPut().GetKey()) != "k1" || string(txn.GetFailure()[0].GetRequestPut().GetKey()) != "k2" {
			t.Fatalf("entry before the puts is %v, want the txn", reqs[n])
		}
	}
}

// TestReadRestored reads what `etcdutl snapshot restore` wrote for member
// r1 of a three-member cluster.
func TestReadRestored(t *testing.T) {
	f := loadFixture(t, "restored")
	l, err := Read(vfs.OS(), filepath.Join(f.dir(), "wal"), filepath.Join(f.dir(), "snap"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Metadata, (Metadata{NodeID: hexID(t, f.expect.MemberID), ClusterID: hexID(t, f.expect.ClusterID)}); got != want {
		t.Fatalf("metadata %+v, etcdutl said %+v", got, want)
	}
	var ids []uint64
	for _, v := range f.expect.Voters {
		ids = append(ids, hexID(t, v))
	}
	slices.Sort(ids)
	// etcdutl writes one conf change entry per member at term 1, a
	// HardState committing them that votes for the lowest ID, and a
	// snapshot (file and marker) at the last of them.
	n := uint64(len(ids))
	if hs := l.HardState; hs.GetTerm() != 1 || hs.GetCommit() != n || hs.GetVote() != ids[0] {
		t.Fatalf("hardstate %v", hs)
	}
	cs := l.Snapshot.GetConfState()
	got := slices.Clone(cs.GetVoters())
	slices.Sort(got)
	if l.Snapshot.GetIndex() != n || l.Snapshot.GetTerm() != 1 || !slices.Equal(got, ids) || len(cs.GetLearners()) != 0 {
		t.Fatalf("snapshot marker %v, want index %d term 1 voters %v", l.Snapshot, n, ids)
	}
	if len(l.Entries) != 0 {
		t.Fatalf("entries after the marker: %v", l.Entries)
	}
	if l.Snap == nil || !proto.Equal(l.Snap.GetMetadata(), l.Snapshot) {
		t.Fatalf("snap file %q: %v", l.SnapFile, l.Snap.GetMetadata())
	}
	for _, v := range f.expect.Voters {
		if !bytes.Contains(l.Snap.GetData(), []byte(v)) {
			t.Fatalf("snapshot data does not name member %s", v)
		}
	}
	var v2 struct{ Root json.RawMessage }
	if err := json.Unmarshal(l.Snap.GetData(), &v2); err != nil || len(v2.Root) == 0 {
		t.Fatalf("snapshot data is not etcd's v2 store JSON: %v", err)
	}
}

// TestReadAgreesWithEtcdRestart compares Read with what etcd itself logged
// when scripts/etcd-fixtures.sh restarted it on a copy of the fixtures: the
// snapshot it started from, the usable markers, the commit index and raft's
// last index and term.
func TestReadAgreesWithEtcdRestart(t *testing.T) {
	for _, name := range []string{"member", "restored"} {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			want := f.expect.EtcdRestart
			if want.LastIndex == 0 {
				t.Fatal("expect.json has no etcd_restart facts")
			}
			l, err := Read(vfs.OS(), filepath.Join(f.dir(), "wal"), filepath.Join(f.dir(), "snap"))
			if err != nil {
				t.Fatal(err)
			}
			usable := 0
			for _, m := range l.Markers {
				if m.GetIndex() <= l.HardState.GetCommit() {
					usable++
				}
			}
			lastIndex, lastTerm := l.Snapshot.GetIndex(), l.Snapshot.GetTerm()
			if n := len(l.Entries); n > 0 {
				lastIndex, lastTerm = l.Entries[n-1].GetIndex(), l.Entries[n-1].GetTerm()
			}
			if l.Snapshot.GetIndex() != want.SnapshotIndex || usable != want.WALSnaps || l.HardState.GetCommit() != want.CommitIndex ||
				lastIndex != want.LastIndex || lastTerm != want.LastTerm {
				t.Fatalf("read snapshot %d, %d usable markers, commit %d, last index %d term %d; etcd: %+v",
					l.Snapshot.GetIndex(), usable, l.HardState.GetCommit(), lastIndex, lastTerm, want)
			}
		})
	}
}

// TestEncoderReproducesEtcd checks the tests' own etcd WAL writer against
// the bytes etcd wrote: re-framing every record of the fixtures with it must
// give the files back exactly, so the synthetic WALs of the other tests are
// what etcd would write.
func TestEncoderReproducesEtcd(t *testing.T) {
	for _, name := range []string{"member", "restored"} {
		f := loadFixture(t, name)
		dir := filepath.Join(f.dir(), "wal")
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range entries {
			if !strings.HasSuffix(de.Name(), ".wal") {
				continue
			}
			orig, err := os.ReadFile(filepath.Join(dir, de.Name()))
			if err != nil {
				t.Fatal(err)
			}
			d := segmentDecoder{file: de.Name(), buf: orig, last: true}
			w := &etcdLog{segs: []etcdSegment{{name: de.Name()}}}
			n := 0
			for {
				rec, err := d.next()
				if errors.Is(err, errSegmentEnd) {
					break
				}
				if err != nil {
					t.Fatalf("%s: %v", de.Name(), err)
				}
				if rec.typ == typeCRC {
					w.crc = rec.crc
					w.crcRecord()
				} else {
					w.record(rec.typ, rec.data)
				}
				n++
			}
			got := w.segs[0].data
			if int64(len(got)) != d.off || !bytes.Equal(got, orig[:len(got)]) {
				t.Fatalf("%s/%s: re-encoding %d records gives %d bytes differing from etcd's %d", name, de.Name(), n, len(got), d.off)
			}
			if rest := orig[len(got):]; len(rest) == 0 || bytes.Count(rest, []byte{0}) != len(rest) {
				t.Fatalf("%s: %d bytes after the records, want a zero tail", de.Name(), len(rest))
			}
		}
	}
}

// TestReadSnapFileDamage checks that a damaged snapshot file is refused,
// naming the file.
func TestReadSnapFileDamage(t *testing.T) {
	f := loadFixture(t, "restored")
	m := vfs.NewMem()
	files := f.toMem(t, m, "/m")
	var path string
	var orig []byte
	for p, b := range files {
		if strings.HasSuffix(p, ".snap") {
			path, orig = p, b
		}
	}
	if _, err := ReadSnapFile(m, path); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":     {},
		"truncated": orig[:len(orig)/2],
		"flipped":   flip(orig, len(orig)-10),
		"garbage":   bytes.Repeat([]byte{0xff}, 64),
		"no crc":    protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), snapData(t, orig)),
		"no data":   orig[:bytes.IndexByte(orig, 0x12)],
	}
	for name, b := range cases {
		writeFile(t, m, path, b)
		_, err := ReadSnapFile(m, path)
		var ce *CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.File != path {
			t.Errorf("%s: err %v, want a CorruptError naming %s", name, err, path)
		}
	}
}

// snapData returns the data field of a snapshot file.
func snapData(t *testing.T, b []byte) []byte {
	t.Helper()
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		b = b[n:]
		if num == 2 && wt == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			return v
		}
		b = b[protowire.ConsumeFieldValue(num, wt, b):]
	}
	t.Fatal("no data field")
	return nil
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

// TestReadSnapFilesOfFixtures: every snap file of the fixtures decodes and
// its name is its term and index.
func TestReadSnapFilesOfFixtures(t *testing.T) {
	for _, name := range []string{"member", "restored"} {
		f := loadFixture(t, name)
		matches, err := filepath.Glob(filepath.Join(f.dir(), "snap", "*.snap"))
		if err != nil || len(matches) == 0 {
			t.Fatalf("%s: no snap files (%v)", name, err)
		}
		for _, p := range matches {
			s, err := ReadSnapFile(vfs.OS(), p)
			if err != nil {
				t.Fatal(err)
			}
			md := s.GetMetadata()
			if filepath.Base(p) != SnapFileName(md.GetTerm(), md.GetIndex()) || md.GetConfState() == nil {
				t.Fatalf("%s holds %v", p, md)
			}
			if len(s.GetData()) == 0 {
				t.Fatalf("%s: no data", p)
			}
		}
	}
}
