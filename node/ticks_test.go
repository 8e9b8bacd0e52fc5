package node

import (
	"fmt"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/vfs"
)

// dropTransport loses every message: enough for a core that is alone, or
// one whose peers must never answer.
type dropTransport struct{}

func (dropTransport) Send([]*raftpb.Message)                          {}
func (dropTransport) SendSnapshot(_ *raftpb.Message, db SnapshotBody) { _ = db.Close() }
func (dropTransport) AddPeer(uint64, []string)                        {}
func (dropTransport) RemovePeer(uint64)                               {}
func (dropTransport) UpdatePeer(uint64, []string)                     {}
func (dropTransport) Close() error                                    { return nil }

func newTestCore(t *testing.T, n int) *Core {
	t.Helper()
	var members []Member
	for i := 0; i < n; i++ {
		urls := []string{fmt.Sprintf("http://m%d", i)}
		members = append(members, Member{ID: MemberID(urls, "ticks"), Name: fmt.Sprintf("m%d", i), PeerURLs: urls})
	}
	c, err := NewCore(Config{
		Name: "m0", ID: members[0].ID, ClusterToken: "ticks", InitialMembers: members,
		DataDir: t.TempDir(), WALFS: vfs.NewMem(), WALSegmentSize: 256 << 10, Transport: dropTransport{},
		Clock: clock.NewFake(time.Unix(100, 0)), BackendNoSync: true, ElectionTicks: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ticksToLead ticks c (processing its Ready) until it leads, at most max
// ticks, and returns how many it took, or max+1.
func ticksToLead(t *testing.T, c *Core, max int) int {
	t.Helper()
	for i := 1; i <= max; i++ {
		c.Tick()
		for c.HasReady() {
			if err := c.Process(); err != nil {
				t.Fatal(err)
			}
		}
		if c.rn.Status().RaftState == raft.StateLeader {
			return i
		}
	}
	return max + 1
}

// A member that is the only voter starts one tick short of its election
// timeout, as etcd's single-member start does: it leads within an election
// timeout's worth of ticks at most (raft's randomized timeout is 10 to 19
// ticks here; without the fast-forward it would need at least 10).
func TestSingleVoterLeadsWithinOneElectionTimeout(t *testing.T) {
	for i := 0; i < 20; i++ {
		if n := ticksToLead(t, newTestCore(t, 1), 10); n > 10 {
			t.Fatalf("start %d: not leader after 10 ticks", i)
		}
	}
}

// A member of a larger cluster is not fast-forwarded: it waits out a whole
// election timeout for a leader to make itself known.
func TestMemberOfALargerClusterIsNotFastForwarded(t *testing.T) {
	c := newTestCore(t, 3)
	for i := 0; i < 9; i++ {
		c.Tick()
		for c.HasReady() {
			if err := c.Process(); err != nil {
				t.Fatal(err)
			}
		}
		if st := c.rn.Status().RaftState; st != raft.StateFollower {
			t.Fatalf("after %d ticks the member is %v, want a follower still", i+1, st)
		}
	}
}

// A linearizable read asked before any leader is known (raft drops it) is
// asked again as soon as a leader is, and answered in that same round,
// not a retry timeout later.
func TestReadAskedBeforeALeaderIsAnsweredWhenOneIsElected(t *testing.T) {
	for i := 0; i < 10; i++ {
		c := newTestCore(t, 1)
		answered := -1
		tick := 0
		c.ReadIndex(func(err error) {
			if err != nil {
				t.Errorf("read: %v", err)
			}
			answered = tick
		})
		for c.HasReady() { // the read is asked with no leader, and dropped
			if err := c.Process(); err != nil {
				t.Fatal(err)
			}
		}
		for tick = 1; tick <= 10 && c.rn.Status().RaftState != raft.StateLeader; tick++ {
			c.Tick()
			for c.HasReady() {
				if err := c.Process(); err != nil {
					t.Fatal(err)
				}
			}
			if c.rn.Status().RaftState == raft.StateLeader {
				break
			}
		}
		if c.rn.Status().RaftState != raft.StateLeader {
			t.Fatalf("start %d: no leader after 10 ticks", i)
		}
		if answered != tick {
			t.Fatalf("start %d: leader at tick %d, read answered at tick %d", i, tick, answered)
		}
	}
}

// newTestCoreWith is newTestCore with the Config changed by mod.
func newTestCoreWith(t *testing.T, n int, mod func(*Config)) *Core {
	t.Helper()
	var members []Member
	for i := 0; i < n; i++ {
		urls := []string{fmt.Sprintf("http://m%d", i)}
		members = append(members, Member{ID: MemberID(urls, "ticks"), Name: fmt.Sprintf("m%d", i), PeerURLs: urls})
	}
	cfg := Config{
		Name: "m0", ID: members[0].ID, ClusterToken: "ticks", InitialMembers: members,
		DataDir: t.TempDir(), WALFS: vfs.NewMem(), WALSegmentSize: 256 << 10, Transport: dropTransport{},
		Clock: clock.NewFake(time.Unix(100, 0)), BackendNoSync: true, ElectionTicks: 10,
	}
	mod(&cfg)
	c, err := NewCore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// With NoInitialElectionTickAdvance (etcd's
// --initial-election-tick-advance=false) a lone voter is not fast-forwarded:
// it waits out at least a whole election timeout.
func TestNoInitialElectionTickAdvance(t *testing.T) {
	for i := 0; i < 5; i++ {
		c := newTestCoreWith(t, 1, func(c *Config) { c.NoInitialElectionTickAdvance = true })
		if n := ticksToLead(t, c, 40); n < 10 || n > 40 {
			t.Fatalf("start %d: led after %d ticks, want 10 to 40", i, n)
		}
	}
}

// With DisablePreVote (etcd's --pre-vote=false) a member whose election
// timeout passes campaigns at once instead of pre-campaigning.
func TestDisablePreVote(t *testing.T) {
	for _, disable := range []bool{false, true} {
		c := newTestCoreWith(t, 3, func(c *Config) { c.DisablePreVote = disable })
		want := raft.StatePreCandidate
		if disable {
			want = raft.StateCandidate
		}
		for i := 0; i < 40 && c.rn.Status().RaftState == raft.StateFollower; i++ {
			c.Tick()
			for c.HasReady() {
				if err := c.Process(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := c.rn.Status().RaftState; got != want {
			t.Fatalf("DisablePreVote=%v: state %v after its election timeout, want %v", disable, got, want)
		}
	}
}
