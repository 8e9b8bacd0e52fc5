package server

import (
	"errors"

	"context"
	"fmt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/node"
)

// confChange proposes a membership change on s and waits for its apply.
func confChange(t *testing.T, s *Server, typ raftpb.ConfChangeType, m node.Member) {
	t.Helper()
	for try := 0; try < 20; try++ {
		done := make(chan node.Result, 1)
		errc := make(chan error, 1)
		if err := s.do(context.Background(), func() {
			_, err := s.core.ProposeConfChange(&raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: &m.ID}}}, m, func(r node.Result) { done <- r })
			errc <- err
		}); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case r := <-done:
			if r.Err != nil {
				t.Fatalf("conf change %v for %s: %v", typ, m.Name, r.Err)
			}
			return
		case <-time.After(5 * time.Second):
		}
	}
	t.Fatalf("conf change %v for %s never applied", typ, m.Name)
}

func memberList(t *testing.T, s *Server) map[string]*pb.Member {
	t.Helper()
	resp, err := s.MemberList(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*pb.Member{}
	for _, m := range resp.GetMembers() {
		out[m.GetName()] = m
	}
	return out
}

// serializableKeys waits until s's own store holds every key of want.
func serializableKeys(t *testing.T, s *Server, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := s.Range(context.Background(), &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Serializable: true})
		if err == nil {
			got := map[string]string{}
			for _, kv := range resp.GetKvs() {
				got[string(kv.GetKey())] = string(kv.GetValue())
			}
			ok := true
			for k, v := range want {
				ok = ok && got[k] == v
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("member %x did not catch up: %v", s.ID(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLearnerJoinsCatchesUpIsPromotedAndMembersAreRemoved(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{snapshotCount: 30, catchUp: 5, logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))})
	lead := c.waitLeader()
	want := map[string]string{}
	for i := 0; i < 60; i++ {
		k := fmt.Sprintf("k%02d", i)
		c.put(c.server(lead), k, "v")
		want[k] = "v"
	}
	// The log was compacted past its start: the learner catches up
	// through a snapshot.
	m4 := c.addMember("m4")
	confChange(t, c.server(lead), raftpb.ConfChangeAddLearnerNode, m4)
	c.start(m4.ID)
	serializableKeys(t, c.server(m4.ID), want)
	if ms := memberList(t, c.server(lead)); ms["m4"] == nil || !ms["m4"].GetIsLearner() {
		t.Fatalf("member list after adding a learner: %v", ms)
	}
	// A learner does not vote: a write needs only the three voters.
	c.put(c.server(lead), "after-learner", "1")
	want["after-learner"] = "1"

	confChange(t, c.server(c.waitLeader()), raftpb.ConfChangeAddNode, m4)
	if ms := memberList(t, c.server(m4.ID)); ms["m4"] == nil || ms["m4"].GetIsLearner() {
		t.Fatalf("member list after promotion, as m4 sees it: %v", ms)
	}
	// Four voters: losing one still leaves a quorum of three.
	lead = c.waitLeader()
	var victim node.Member
	for _, m := range c.members {
		if m.ID != lead && m.ID != m4.ID {
			victim = m
			break
		}
	}
	c.stop(victim.ID)
	c.put(c.server(lead), "after-stop", "1")
	want["after-stop"] = "1"
	confChange(t, c.server(c.waitLeader()), raftpb.ConfChangeRemoveNode, victim)
	ms := memberList(t, c.server(m4.ID))
	if len(ms) != 3 || ms[victim.Name] != nil {
		t.Fatalf("member list after removing %s: %v", victim.Name, ms)
	}
	for _, s := range c.running() {
		requireKeys(t, s, want)
	}
}

func TestMoveLeaderTransfersLeadership(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{})
	lead := c.waitLeader()
	var target uint64
	for _, m := range c.members {
		if m.ID != lead {
			target = m.ID
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.server(lead).MoveLeader(ctx, target); err != nil {
		t.Fatalf("move leader: %v", err)
	}
	if got := c.waitLeader(); got != target {
		t.Fatalf("leader after transfer = %x, want %x", got, target)
	}
	if _, err := c.server(lead).MoveLeader(ctx, target); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("move leader on a follower: %v, want etcdserver: not leader", err)
	}
}

func TestMemberUpdateAndMembershipErrors(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{})
	s := c.server(c.waitLeader())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	target := c.members[1]
	resp, err := s.MemberUpdate(ctx, &pb.MemberUpdateRequest{ID: target.ID, PeerURLs: []string{"mem://moved"}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range resp.GetMembers() {
		if m.GetID() == target.ID {
			found = len(m.GetPeerURLs()) == 1 && m.GetPeerURLs()[0] == "mem://moved" && m.GetName() == target.Name
		}
	}
	if !found {
		t.Fatalf("member update: %v", resp.GetMembers())
	}
	if _, err := s.MemberRemove(ctx, &pb.MemberRemoveRequest{ID: 12345}); !errors.Is(err, ErrMemberNotFound) {
		t.Fatalf("remove of an unknown member: %v, want %v", err, ErrMemberNotFound)
	}
	if _, err := s.MemberPromote(ctx, &pb.MemberPromoteRequest{ID: target.ID}); !errors.Is(err, ErrMemberNotLearner) {
		t.Fatalf("promote of a voter: %v, want %v", err, ErrMemberNotLearner)
	}
	if _, err := s.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"mem://moved"}}); !errors.Is(err, ErrPeerURLExist) {
		t.Fatalf("add with a peer URL in use: %v, want %v", err, ErrPeerURLExist)
	}
}

func TestRemovingTheLastVoterIsRefusedAndARemovedMemberStops(t *testing.T) {
	one := newTestCluster(t, 1, clusterOpts{})
	solo := one.server(one.waitLeader())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := solo.MemberRemove(ctx, &pb.MemberRemoveRequest{ID: solo.ID()}); !errors.Is(err, ErrMemberNotEnoughStarted) {
		t.Fatalf("removing the only voter: %v, want %v", err, ErrMemberNotEnoughStarted)
	}

	c := newTestCluster(t, 3, clusterOpts{})
	lead := c.waitLeader()
	victim := c.follower(lead)
	if _, err := c.server(lead).MemberRemove(ctx, &pb.MemberRemoveRequest{ID: victim.ID()}); err != nil {
		t.Fatal(err)
	}
	waitRemoved(t, victim, "a removed member")
	c.put(c.server(lead), "after-removal", "1")
}

// A member cut off while the cluster removed it learns of its removal from
// the first peer it reaches again (which refuses it, as etcd's 410 Gone)
// and stops with ErrRemoved.
func TestAMemberRemovedWhilePartitionedStopsWhenHealed(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{})
	lead := c.waitLeader()
	victim := c.follower(lead)
	c.net.Isolate(victim.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.server(lead).MemberRemove(ctx, &pb.MemberRemoveRequest{ID: victim.ID()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-victim.Done():
		t.Fatalf("the isolated member stopped before it could learn of its removal: %v", victim.Err())
	default:
	}
	c.net.Heal(victim.ID())
	waitRemoved(t, victim, "a member removed while partitioned, once the partition healed,")
	c.put(c.server(lead), "after-removal", "1")
}

// A removed member started again on its data dir stops with etcd's
// message: at once when its database records its own removal, or as soon as
// a peer refuses it when it stopped before applying the removal (the leader
// may cut it off before it hears that the removal committed).
func TestARemovedMemberRefusesToRestart(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{})
	lead := c.waitLeader()
	victim := c.follower(lead).ID()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.server(lead).MemberRemove(ctx, &pb.MemberRemoveRequest{ID: victim}); err != nil {
		t.Fatal(err)
	}
	v := c.server(victim)
	select {
	case <-v.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the removed member kept running")
	}
	c.mu.Lock()
	delete(c.servers, victim)
	c.mu.Unlock()
	c.net.Leave(victim)
	err := c.tryStart(victim, nil)
	if err == nil {
		v := c.server(victim)
		select {
		case <-v.Done():
			err = v.Err()
		case <-time.After(10 * time.Second):
			t.Fatal("the removed member restarted and kept running")
		}
	}
	if !errors.Is(err, node.ErrRemoved) {
		t.Fatalf("restarting a removed member: %v, want %v", err, node.ErrRemoved)
	}
	if err.Error() != "the member has been permanently removed from the cluster" {
		t.Fatalf("restart error %q is not etcd's message", err)
	}
}

// --force-new-cluster on a member whose log holds entries that never
// committed: they are dropped, not applied; the member leads a one-member
// cluster with the committed data.
func TestForceNewClusterDropsUncommittedEntries(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{})
	lead := c.waitLeader()
	c.put(c.server(lead), "kept", "1")
	// Cut the leader off and make it append a write nobody else gets.
	c.net.Isolate(lead)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if _, err := c.server(lead).Put(ctx, &pb.PutRequest{Key: []byte("lost"), Value: []byte("x")}); err == nil {
		t.Fatal("a write on an isolated leader committed")
	}
	cancel()
	for _, m := range c.members {
		if c.server(m.ID) != nil {
			c.stop(m.ID)
		}
	}
	c.startWith(lead, func(cfg *Config) { cfg.Core.ForceNewCluster = true })
	if got := c.waitLeader(); got != lead {
		t.Fatalf("leader %x, want the forced member %x", got, lead)
	}
	s := c.server(lead)
	requireKeys(t, s, map[string]string{"kept": "1"})
	r, err := s.Range(context.Background(), &pb.RangeRequest{Key: []byte("lost")})
	if err != nil || len(r.GetKvs()) != 0 {
		t.Fatalf("the uncommitted write: %v %v, want it dropped", r, err)
	}
	ms, err := s.Members(context.Background())
	if err != nil || len(ms) != 1 || ms[0].ID != lead {
		t.Fatalf("members %v %v, want only %x", ms, err, lead)
	}
	c.put(s, "after", "1")
}

// follower returns a running member other than lead.
func (c *testCluster) follower(lead uint64) *Server {
	c.t.Helper()
	for _, s := range c.running() {
		if s.ID() != lead {
			return s
		}
	}
	c.t.Fatal("no running member but the leader")
	return nil
}

// waitRemoved waits until s stops with ErrRemoved; who names it in the
// failure.
func waitRemoved(t *testing.T, s *Server, who string) {
	t.Helper()
	select {
	case <-s.Done():
		if !errors.Is(s.Err(), node.ErrRemoved) {
			t.Fatalf("%s stopped with %v, want %v", who, s.Err(), node.ErrRemoved)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s kept running", who)
	}
}

// A leader asked to remove itself hands the leadership to another voter
// first, so the others go on without waiting out an election timeout
// (etcd leaves them leaderless that long). The timeout here is 3 s: right
// after the removal the others know a leader among themselves only if
// the leadership moved before it.
func TestRemovingTheLeaderMovesTheLeadershipFirst(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{electionTicks: 300})
	lead := c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.server(lead).MemberRemove(ctx, &pb.MemberRemoveRequest{ID: lead}); err != nil {
		t.Fatalf("the leader removing itself: %v", err)
	}
	var rest []*Server
	for _, m := range c.members {
		if m.ID != lead {
			rest = append(rest, c.server(m.ID))
		}
	}
	for _, s := range rest {
		if l := s.Leader(); l == 0 || l == lead {
			t.Fatalf("right after the leader removed itself, %x's leader is %x (the removed one was %x)", s.ID(), l, lead)
		}
	}
	waitRemoved(t, c.server(lead), "the removed leader")
	c.put(rest[0], "after-leader-removal", "1")
}
