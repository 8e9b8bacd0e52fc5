package node

import (
	"encoding/json"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/vfs"
)

// A member whose very first start was cut after its WAL was created but
// before the cluster's first entries were synced in it (found by the
// simulator's exhaustive power cuts, sim/exhaustive_test.go) holds no
// completed save: it never acknowledged anything. It must start anew, not
// restart from that log: a one-member cluster restarted so knows no voter,
// never elects itself, and hangs without a word. The WAL may hold nothing,
// or the bootstrap's entries without their hard state (a torn save).
func TestFirstStartCutBeforeItsFirstSaveStartsAnew(t *testing.T) {
	for _, torn := range []bool{false, true} {
		t.Run(map[bool]string{false: "empty", true: "torn"}[torn], func(t *testing.T) { testFirstStartCut(t, torn) })
	}
}

func testFirstStartCut(t *testing.T, torn bool) {
	urls := []string{"http://m0"}
	self := Member{ID: MemberID(urls, "ticks"), Name: "m0", PeerURLs: urls}
	fs := vfs.NewMem()
	cfg := Config{
		Name: "m0", ID: self.ID, ClusterToken: "ticks", InitialMembers: []Member{self},
		DataDir: t.TempDir(), WALFS: fs, WALSegmentSize: 256 << 10, Transport: dropTransport{},
		Clock: clock.NewFake(time.Unix(100, 0)), BackendNoSync: true, ElectionTicks: 10,
	}
	// The first start's WAL, as the cut left it: metadata, no record.
	meta, _ := json.Marshal(walMetadata{MemberID: self.ID, ClusterID: ClusterID([]uint64{self.ID}, "ticks")})
	w, err := wal.Create(wal.Config{FS: fs, Dir: WALDir(cfg.DataDir), SegmentSize: 256 << 10}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if torn {
		// The bootstrap's conf change entry made it, its hard state did not.
		if _, _, _, _, err := w.ReadAll(); err != nil {
			t.Fatal(err)
		}
		ctx, _ := json.Marshal(confChangeContext{Member: self})
		data, _ := proto.Marshal(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(self.ID), Context: ctx})
		if err := w.Save(nil, []*raftpb.Entry{{Type: raftpb.EntryConfChange.Enum(), Term: proto.Uint64(1), Index: proto.Uint64(1), Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := NewCore(cfg)
	if err != nil {
		t.Fatalf("restart after a cut first start: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if n := ticksToLead(t, c, 40); n > 40 {
		t.Fatalf("the member is not leader after 40 ticks: its members are %v", c.Members())
	}
	if ms := c.Members(); len(ms) != 1 || ms[0].ID != self.ID {
		t.Fatalf("members %v, want only m0", ms)
	}
}

// A WAL that holds a hard state or entries is restarted from, never
// replaced: only a WAL with nothing saved in it is started anew.
func TestAWALWithAHardStateIsRestartedFrom(t *testing.T) {
	c := newTestCore(t, 3) // its bootstrap saved the first entries
	cfg := c.cfg
	ci := c.ClusterID()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.InitialMembers = nil // a restart needs none: the WAL has the cluster
	c2, err := NewCore(cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer c2.Close()
	for c2.HasReady() { // replays the log, its conf changes included
		if err := c2.Process(); err != nil {
			t.Fatal(err)
		}
	}
	if c2.ClusterID() != ci || len(c2.rn.Status().Config.Voters.IDs()) != 3 {
		t.Fatalf("restarted member: cluster %x (want %x), voters %v", c2.ClusterID(), ci, c2.rn.Status().Config.Voters.IDs())
	}
}

// A member that joined a running cluster restarts (production passes no
// Join then, and the --initial-cluster it was given) from a WAL without a
// completed save as before: it is not one of the members the cluster was
// bootstrapped from, and a bootstrap would write conf changes the
// cluster's log contradicts. Its empty log is what the leader fills.
func TestAJoinedMembersUnfinishedWALIsNotBootstrapped(t *testing.T) {
	var members []Member
	for i := 0; i < 3; i++ {
		urls := []string{"http://m" + string(rune('0'+i))}
		members = append(members, Member{ID: MemberID(urls, "ticks"), Name: "m" + string(rune('0'+i)), PeerURLs: urls})
	}
	self := members[2]
	// The cluster it joined was bootstrapped from m0 and m1 only.
	clusterID := ClusterID([]uint64{members[0].ID, members[1].ID}, "ticks")
	fs := vfs.NewMem()
	dir := t.TempDir()
	meta, _ := json.Marshal(walMetadata{MemberID: self.ID, ClusterID: clusterID})
	w, err := wal.Create(wal.Config{FS: fs, Dir: WALDir(dir), SegmentSize: 256 << 10}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := NewCore(Config{
		Name: self.Name, ID: self.ID, ClusterToken: "ticks", InitialMembers: members,
		DataDir: dir, WALFS: fs, WALSegmentSize: 256 << 10, Transport: dropTransport{},
		Clock: clock.NewFake(time.Unix(100, 0)), BackendNoSync: true, ElectionTicks: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if last, _ := c.storage.LastIndex(); last != 0 || c.ClusterID() != clusterID {
		t.Fatalf("restarted with %d log entries in cluster %x; want an empty log in the cluster it joined, %x", last, c.ClusterID(), clusterID)
	}
}
