package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/vfs"
)

// The IDs etcdutl 3.7.3 gives this cluster (from its "added member" log
// lines for the same flags): cairnctl must give the same.
const (
	testCluster      = "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380"
	testToken        = "tok"
	etcdIDA          = 0x98521e8c6c48c6da
	etcdIDB          = 0x61b046c1789d11d8
	etcdIDC          = 0x7aa181191753809e
	etcdClusterID    = 0x8e67f3b977698ab3
	testLatestRev    = 5 // the revision makeDB's writes end at
	testOldMemberKey = "1234"
)

// makeDB writes a database as a running member's would be: keys (one
// overwritten, one deleted), a lease record, another cluster's members, a
// removed member and a consistent index far from the restored one. It
// returns its path.
func makeDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	kv, err := mvcc.Open(mvcc.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*pb.PutRequest{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("b"), Value: []byte("2")},
		{Key: []byte("a"), Value: []byte("3")},
	} {
		if _, err := kv.Put(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if rev := kv.Rev(); rev != testLatestRev {
		t.Fatalf("makeDB: revision %d, want %d", rev, testLatestRev)
	}
	kv.AuxPut([]byte("lease"), []byte{0, 0, 0, 0, 0, 0, 0, 9}, []byte("lease record"))
	kv.AuxPut([]byte("members"), []byte(testOldMemberKey), []byte(`{"id":4660,"peerURLs":["http://old:2380"],"name":"old"}`))
	kv.AuxPut([]byte("members_removed"), []byte("5678"), []byte("removed"))
	kv.SetConsistentIndex(500, 7)
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// makeSnapshot returns a snapshot of makeDB's database as
// Maintenance.Snapshot sends it: the file, then its sha256.
func makeSnapshot(t *testing.T) string {
	t.Helper()
	db := makeDB(t)
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	path := filepath.Join(t.TempDir(), "snapshot.db")
	if err := os.WriteFile(path, append(b, sum[:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func restoreOpts(snap, dataDir, name string) restoreOptions {
	urls := map[string]string{"a": "http://10.0.0.1:2380", "b": "http://10.0.0.2:2380", "c": "http://10.0.0.3:2380"}
	return restoreOptions{
		Snapshot: snap, Name: name, DataDir: dataDir,
		InitialCluster: testCluster, InitialClusterToken: testToken, PeerURLs: urls[name],
	}
}

// auxRecords returns an auxiliary bucket's records.
func auxRecords(t *testing.T, kv *mvcc.Store, bucket string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := kv.AuxForEach([]byte(bucket), func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRestoreMembersIndexAndWAL: a restored member's database holds the
// snapshot's keys and leases, the new members (with etcd's IDs) and none
// of the old or removed ones, consistent index 3 at term 1; its WAL
// belongs to the member and cluster and starts from a snapshot marker at
// index 3 with every member a voter, committed by its hard state.
func TestRestoreMembersIndexAndWAL(t *testing.T) {
	snap := makeSnapshot(t)
	dir := filepath.Join(t.TempDir(), "b.data")
	if err := restoreSnapshot(restoreOpts(snap, dir, "b")); err != nil {
		t.Fatal(err)
	}

	kv, err := mvcc.Open(mvcc.Config{Path: node.DBPath(dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	if ci, term := kv.ConsistentIndex(); ci != 3 || term != 1 {
		t.Errorf("consistent index %d term %d, want 3 and 1", ci, term)
	}
	if rev := kv.Rev(); rev != testLatestRev {
		t.Errorf("revision %d, want %d (unchanged)", rev, testLatestRev)
	}
	r, err := kv.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) != 1 || string(r.Kvs[0].Key) != "a" || string(r.Kvs[0].Value) != "3" || r.Kvs[0].ModRevision != 4 || r.Kvs[0].CreateRevision != 2 {
		t.Errorf("keys after restore: %v, want a=3 at mod revision 4, created at 2", r.Kvs)
	}
	if got := auxRecords(t, kv, "lease"); len(got) != 1 {
		t.Errorf("lease records %v, want the snapshot's one", got)
	}
	if got := auxRecords(t, kv, "members_removed"); len(got) != 0 {
		t.Errorf("removed members %v, want none (a new cluster)", got)
	}
	members := auxRecords(t, kv, "members")
	want := map[uint64]string{etcdIDA: "a", etcdIDB: "b", etcdIDC: "c"}
	if len(members) != len(want) {
		t.Errorf("members %v, want a, b and c only", members)
	}
	for id, name := range want {
		js, ok := members[strings.TrimLeft(hex64(id), "0")]
		if !ok {
			t.Errorf("no member record for %s (%x) in %v", name, id, members)
			continue
		}
		var m node.Member
		if err := json.Unmarshal([]byte(js), &m); err != nil || m.ID != id || m.Name != name || len(m.PeerURLs) != 1 {
			t.Errorf("member record %s = %s (%v), want id %x name %s", hex64(id), js, err, id, name)
		}
	}

	c, err := wal.Verify(vfs.OS(), node.WALDir(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	md, err := node.ParseWALMetadata(c.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	if md.MemberID != etcdIDB || md.ClusterID != etcdClusterID {
		t.Errorf("WAL metadata member %x cluster %x, want etcd's %x and %x", md.MemberID, md.ClusterID, uint64(etcdIDB), uint64(etcdClusterID))
	}
	voters := []uint64{etcdIDB, etcdIDC, etcdIDA} // sorted
	if c.Snapshot.GetIndex() != 3 || c.Snapshot.GetTerm() != 1 || !slices.Equal(c.Snapshot.GetConfState().GetVoters(), voters) || len(c.Snapshot.GetConfState().GetLearners()) != 0 {
		t.Errorf("WAL snapshot marker %v, want index 3 term 1 voters %x", c.Snapshot, voters)
	}
	if hs := c.HardState; hs.GetCommit() != 3 || hs.GetTerm() != 1 || hs.GetVote() != etcdIDB {
		t.Errorf("WAL hard state %v, want commit 3 term 1 vote %x (as etcdutl)", hs, uint64(etcdIDB))
	}
	if len(c.Entries) != 0 || c.LastIndex != 3 {
		t.Errorf("WAL entries after the marker %v, last index %d; want none and 3", c.Entries, c.LastIndex)
	}
}

func hex64(v uint64) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 16)
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

// TestRestoreEveryMemberSameState: every member restored from one
// snapshot gets the same database records and WAL position, and its own
// ID in its WAL.
func TestRestoreEveryMemberSameState(t *testing.T) {
	snap := makeSnapshot(t)
	var statuses []dbStatus
	for _, name := range []string{"a", "b", "c"} {
		dir := filepath.Join(t.TempDir(), name)
		if err := restoreSnapshot(restoreOpts(snap, dir, name)); err != nil {
			t.Fatal(err)
		}
		ds, err := snapshotStatus(node.DBPath(dir), nil)
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, ds)
		c, err := wal.Verify(vfs.OS(), node.WALDir(dir), nil)
		if err != nil {
			t.Fatal(err)
		}
		md, _ := node.ParseWALMetadata(c.Metadata)
		if md.MemberID != node.MemberID([]string{map[string]string{"a": "http://10.0.0.1:2380", "b": "http://10.0.0.2:2380", "c": "http://10.0.0.3:2380"}[name]}, testToken) {
			t.Errorf("member %s: WAL of member %x", name, md.MemberID)
		}
	}
	if statuses[0].Hash != statuses[1].Hash || statuses[1].Hash != statuses[2].Hash {
		t.Errorf("restored databases differ: %+v", statuses)
	}
}

// TestRestoreBumpRevision: --bump-revision N --mark-compacted moves the
// revision N past the snapshot's and compacts there, as etcdutl does
// (checked against etcdutl in test/etcdcompat): reads at old revisions get
// ErrCompacted, the keys keep their revisions, the next write is N+latest+1.
func TestRestoreBumpRevision(t *testing.T) {
	snap := makeSnapshot(t)
	dir := filepath.Join(t.TempDir(), "a")
	o := restoreOpts(snap, dir, "a")
	o.BumpRevision, o.MarkCompacted = 1000, true
	if err := restoreSnapshot(o); err != nil {
		t.Fatal(err)
	}
	kv, err := mvcc.Open(mvcc.Config{Path: node.DBPath(dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	const bumped = testLatestRev + 1000
	if rev, crev := kv.Rev(), kv.CompactRev(); rev != bumped || crev != bumped {
		t.Errorf("revision %d compacted %d, want both %d", rev, crev, bumped)
	}
	if _, err := kv.Range(&pb.RangeRequest{Key: []byte("a"), Revision: testLatestRev}); !errors.Is(err, mvcc.ErrCompacted) {
		t.Errorf("read at the snapshot's revision: %v, want ErrCompacted", err)
	}
	r, err := kv.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil || len(r.Kvs) != 1 || r.Kvs[0].ModRevision != 4 {
		t.Errorf("keys after a bump: %v %v, want a at mod revision 4", r, err)
	}
	p, err := kv.Put(&pb.PutRequest{Key: []byte("z"), Value: []byte("1")})
	if err != nil || p.Header.GetRevision() != bumped+1 {
		t.Errorf("first write after the bump: %v %v, want revision %d", p, err, bumped+1)
	}
}

// TestRestoreRefusals: etcdutl's checks and errors, and nothing left
// behind by a refused restore.
func TestRestoreRefusals(t *testing.T) {
	snap := makeSnapshot(t)
	raw := makeDB(t) // a copied member/snap/db: no hash
	corrupt := filepath.Join(t.TempDir(), "corrupt.db")
	b, _ := os.ReadFile(snap)
	b[4096+100] ^= 0xff
	if err := os.WriteFile(corrupt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	walExists := t.TempDir()
	for _, tc := range []struct {
		name    string
		modify  func(*restoreOptions)
		wantErr string
	}{
		{"raw db without --skip-hash-check", func(o *restoreOptions) { o.Snapshot = raw }, "snapshot missing hash but --skip-hash-check=false"},
		{"hash mismatch", func(o *restoreOptions) { o.Snapshot = corrupt }, "expected sha256 ["},
		{"name not in the cluster", func(o *restoreOptions) { o.Name = "d" }, `couldn't find local name "d" in the initial cluster configuration`},
		{"advertised URL not the cluster's", func(o *restoreOptions) { o.PeerURLs = "http://10.0.0.9:2380" },
			`--initial-cluster has a=http://10.0.0.1:2380 but missing from --initial-advertise-peer-urls=http://10.0.0.9:2380`},
		{"duplicate URL", func(o *restoreOptions) {
			o.InitialCluster = "a=http://10.0.0.1:2380,b=http://10.0.0.1:2380"
		}, "has duplicate url"},
		{"bad URL", func(o *restoreOptions) { o.InitialCluster = "a=foo" }, "URL scheme must be http, https, unix, or unixs: foo"},
		{"bump without mark", func(o *restoreOptions) { o.BumpRevision = 5 }, "--mark-compacted required if --revision-bump > 0"},
		{"mark without bump", func(o *restoreOptions) { o.MarkCompacted = true }, "--mark-compacted required if --revision-bump > 0"},
		{"data dir not empty", func(o *restoreOptions) { o.DataDir = full }, "not empty or could not be read"},
		{"wal dir exists", func(o *restoreOptions) { o.WALDir = walExists }, "exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			o := restoreOpts(snap, dir, "a")
			tc.modify(&o)
			err := restoreSnapshot(o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("restore: %v, want an error with %q", err, tc.wantErr)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused restore left %s behind (%v)", dir, err)
			}
		})
	}

	// A copied db restores with --skip-hash-check; a snapshot with its hash
	// restores too (the hash is dropped).
	for _, src := range []string{raw, snap} {
		dir := filepath.Join(t.TempDir(), "out")
		o := restoreOpts(src, dir, "a")
		o.SkipHashCheck = true
		if err := restoreSnapshot(o); err != nil {
			t.Fatalf("restore --skip-hash-check of %s: %v", src, err)
		}
		st, err := os.Stat(node.DBPath(dir))
		if err != nil || hasChecksum(st.Size()) {
			t.Errorf("restored db %v %v: the appended hash must be dropped", st, err)
		}
	}
}

// TestRestoreWALReadsBackAsRaftState: the WAL as cairn's restart reads it
// (wal.Open, which the e2e tests start members on): the marker with the
// configuration, the hard state committing it, no entry to apply.
func TestRestoreWALReadsBackAsRaftState(t *testing.T) {
	snap := makeSnapshot(t)
	dir := filepath.Join(t.TempDir(), "c")
	if err := restoreSnapshot(restoreOpts(snap, dir, "c")); err != nil {
		t.Fatal(err)
	}
	w, err := wal.Open(wal.Config{FS: vfs.OS(), Dir: node.WALDir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, hs, sm, ents, err := w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := &raftpb.SnapshotMetadata{Index: proto.Uint64(3), Term: proto.Uint64(1), ConfState: &raftpb.ConfState{Voters: []uint64{etcdIDB, etcdIDC, etcdIDA}}}
	if !proto.Equal(sm, want) || hs.GetCommit() != 3 || len(ents) != 0 {
		t.Errorf("WAL read back: marker %v hard state %v entries %d; want %v, commit 3, none", sm, hs, len(ents), want)
	}
}

// TestRestoreWALDirAndEmptyDataDir: --wal-dir puts the WAL there (cairn
// is started with the same --wal-dir), and an existing empty data dir is
// used, as etcdutl does; a failed restore into it leaves it empty.
func TestRestoreWALDirAndEmptyDataDir(t *testing.T) {
	snap := makeSnapshot(t)
	dir := t.TempDir() // exists, empty
	walDir := filepath.Join(t.TempDir(), "wal")
	o := restoreOpts(snap, dir, "a")
	o.WALDir = walDir
	if err := restoreSnapshot(o); err != nil {
		t.Fatal(err)
	}
	if _, err := wal.Verify(vfs.OS(), walDir, nil); err != nil {
		t.Errorf("no WAL in --wal-dir: %v", err)
	}
	if wal.Exist(vfs.OS(), node.WALDir(dir)) {
		t.Errorf("a WAL in the data dir too")
	}
	if r := checkDataDir(dir, walDir, nil); len(r.Problems) != 0 {
		t.Errorf("check data-dir --wal-dir:\n%s", report(r))
	}

	empty := t.TempDir()
	o = restoreOpts(snap, empty, "a")
	o.SkipHashCheck = false
	o.Snapshot = makeDB(t) // no hash: refused after the checks
	if err := restoreSnapshot(o); err == nil {
		t.Fatal("restore of a db without hash succeeded")
	}
	if names, _ := os.ReadDir(empty); len(names) != 0 {
		t.Errorf("a failed restore left %v in the empty data dir", names)
	}
}
