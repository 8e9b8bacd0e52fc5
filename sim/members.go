package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/vfs"
)

// The membership workload, in half the seeds: an operator adds a fresh
// member as a learner, promotes it once it has caught up, removes a member
// (replacing one member with a fresh one is the three in a row), one change
// at a time, as the Cluster API's users do, while faults go on. Checks:
// every member that stays agrees on the membership, which is the one the
// operator made; a removed member stops with node.ErrRemoved (by applying
// its removal or by hearing it from a peer) and only a removed one does.

// memberStep is one membership change of the plan.
type memberStep struct {
	kind   string // "add-learner", "promote", "remove"
	target *simNode
	// proposedAt is when the change was last proposed (0: never).
	proposedAt int64
}

type simMembership struct {
	plan []*memberStep
	// removed holds the members the cluster removed (as the leader applied);
	// proposed the members whose removal the operator proposed.
	removed, proposed map[uint64]bool
	changes           int
}

// membershipRetry is how long the operator waits for a proposed change to
// show in the leader's membership before proposing it again (raft drops a
// conf change proposed while another is pending).
const membershipRetry = time.Second

func (c *Cluster) startMembership() {
	r := rand.New(rand.NewPCG(c.opts.Seed, 0x4d454d42))
	if !c.opts.Membership && r.IntN(2) != 0 {
		return
	}
	c.membership = &simMembership{removed: map[uint64]bool{}, proposed: map[uint64]bool{}}
	c.report.Membership = true
	c.schedule(500*time.Millisecond+time.Duration(r.Int64N(int64(time.Second))), "", c.membershipNext)
	c.connectStreamsEvery(time.Second)
}

// connectStreamsEvery models the HTTP transport's streams: every member
// keeps (re)connecting to each peer it can reach, and a peer that knows
// it was removed answers 410 Gone, so even a member that never sends a
// raft message (a learner removed before it caught up) learns it.
func (c *Cluster) connectStreamsEvery(d time.Duration) {
	c.schedule(d, "", func() {
		for _, n := range c.nodes {
			if n.core == nil {
				continue
			}
			for _, o := range c.nodes {
				if o == n || o.core == nil || c.blocked[[2]int{n.idx, o.idx}] || !o.core.IsRemoved(n.id) {
					continue
				}
				inc := n.incarnation
				c.schedule(c.delay(), "", func() { n.report(inc, func(core *node.Core) { core.RemovedByPeer(o.id) }) })
				break
			}
		}
		c.connectStreamsEvery(d)
	})
}

// planChanges draws the next changes: a replacement, a new member, a
// removal (never below three voters) or a learner added and removed.
func (c *Cluster) planChanges() {
	m := c.membership
	voters := c.voters()
	switch k := c.rng.IntN(4); {
	case k < 2 || (k == 3 && len(voters) <= 3):
		fresh := c.newMember()
		victim := voters[c.rng.IntN(len(voters))]
		m.plan = append(m.plan, &memberStep{kind: "add-learner", target: fresh}, &memberStep{kind: "promote", target: fresh}, &memberStep{kind: "remove", target: victim})
	case k == 2:
		fresh := c.newMember()
		m.plan = append(m.plan, &memberStep{kind: "add-learner", target: fresh}, &memberStep{kind: "remove", target: fresh})
	default:
		m.plan = append(m.plan, &memberStep{kind: "remove", target: voters[c.rng.IntN(len(voters))]})
	}
}

// voters lists the members the operator knows as voters: the initial ones
// and the promoted ones, less the removed.
func (c *Cluster) voters() []*simNode {
	var out []*simNode
	for _, n := range c.nodes {
		if !n.learner && n.added && !c.membership.removed[n.id] {
			out = append(out, n)
		}
	}
	return out
}

// newMember makes a fresh member, known to the simulator but not started:
// it starts with Config.Join once the cluster added it.
func (c *Cluster) newMember() *simNode {
	i := len(c.nodes)
	name := fmt.Sprintf("n%d", i+1)
	urls := []string{"sim://" + name}
	c.members = append(c.members, node.Member{ID: node.MemberID(urls, "sim"), Name: name, PeerURLs: urls})
	n := &simNode{c: c, idx: i, id: c.members[i].ID, fs: vfs.NewMem(), dir: filepath.Join(c.opts.Dir, name), clock: clock.NewFake(time.Unix(1_700_000_000, 0)), rate: 1, join: true, learner: true}
	c.nodes = append(c.nodes, n)
	n.scheduleTick()
	return n
}

// membershipNext advances the plan by one observation of the leader.
func (c *Cluster) membershipNext() {
	m := c.membership
	defer func() {
		if c.inSafetyPhase() || len(m.plan) > 0 {
			c.schedule(200*time.Millisecond, "", c.membershipNext)
		}
	}()
	if len(m.plan) == 0 {
		if !c.inSafetyPhase() {
			return
		}
		c.planChanges()
	}
	lead := c.leader()
	if lead == nil {
		return
	}
	st := m.plan[0]
	cur := map[uint64]node.Member{}
	for _, mem := range lead.core.Members() {
		cur[mem.ID] = mem
	}
	mem, in := cur[st.target.id]
	done := false
	switch st.kind {
	case "add-learner":
		done = in
	case "promote":
		done = in && !mem.IsLearner
	case "remove":
		done = !in && lead.core.IsRemoved(st.target.id)
	}
	if done {
		m.changes++
		c.report.Faults["member-"+st.kind]++
		c.tracef("membership: %s %s done", st.kind, st.target.name())
		m.plan = m.plan[1:]
		switch st.kind {
		case "add-learner":
			st.target.added = true
			st.target.startJoining(lead)
		case "promote":
			st.target.learner = false
		case "remove":
			m.removed[st.target.id] = true
		}
		return
	}
	if st.proposedAt != 0 && c.now-st.proposedAt < int64(membershipRetry) {
		return
	}
	if st.kind == "promote" {
		// As the shell does: only a learner within 10% of the leader.
		t := st.target
		if t.core == nil || t.core.Applied()+t.core.Applied()/10+5 < lead.core.Applied() {
			return
		}
	}
	if st.kind == "remove" && st.target.learner && !st.target.added {
		m.plan = m.plan[1:] // its add never happened
		return
	}
	if st.kind == "remove" && st.target == lead && c.now > int64(c.opts.Duration-1500*time.Millisecond) {
		// Late in the run, a careful operator moves the leadership away
		// before removing the leader: a removed leader just stops, and the
		// others wait out an election timeout (up to two with the seed's
		// longest) before they serve again.
		for _, n := range c.serving() {
			if n != lead && n.core != nil {
				c.tracef("membership: move the leadership from %s to %s before removing it", lead.name(), n.name())
				lead.core.TransferLeadership(n.id)
				lead.process()
				return
			}
		}
		return
	}
	typ := map[string]raftpb.ConfChangeType{"add-learner": raftpb.ConfChangeAddLearnerNode, "promote": raftpb.ConfChangeAddNode, "remove": raftpb.ConfChangeRemoveNode}[st.kind]
	cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: proto.Uint64(st.target.id)}}}
	if _, err := lead.core.ProposeConfChange(cc, c.members[st.target.idx], nil); err != nil {
		return
	}
	st.proposedAt = c.now
	if st.kind == "remove" {
		m.proposed[st.target.id] = true
	}
	c.tracef("membership: propose %s %s via %s", st.kind, st.target.name(), lead.name())
	lead.process()
}

// startJoining starts a member the cluster just added, with the members
// the leader knows (as a joining daemon learns them from its peers).
func (n *simNode) startJoining(lead *simNode) {
	if n.core != nil || n.gone {
		return
	}
	n.joinMembers = lead.core.Members()
	n.clusterID = lead.core.ClusterID()
	if err := n.start(); err != nil {
		n.c.violation("%s failed to join: %v", n.name(), err)
		return
	}
	n.c.tracef("join %s", n.name())
	n.process()
}

// stopped handles a member's core stopping with err: ErrRemoved from a
// removed member is its orderly end; anything else is a violation.
func (n *simNode) stopped(err error) {
	c := n.c
	if errors.Is(err, node.ErrRemoved) && c.removedFromCluster(n) {
		c.tracef("%s stopped: %v", n.name(), err)
		n.gone = true
		return
	}
	c.violation("%s stopped on a fatal error: %v", n.name(), err)
}

// removedFromCluster tells whether the cluster removed n: the operator saw
// it, or a live member applied it (the leader may not have said so yet).
func (c *Cluster) removedFromCluster(n *simNode) bool {
	if c.membership == nil {
		return false
	}
	if c.membership.removed[n.id] || c.membership.proposed[n.id] {
		return true
	}
	for _, o := range c.nodes {
		if o != n && o.core != nil && o.core.IsRemoved(n.id) {
			return true
		}
	}
	return false
}

// checkMembership: every member still running agrees on the membership,
// and it is the operator's; every removed member stopped.
func (c *Cluster) checkMembership() {
	m := c.membership
	if m == nil {
		return
	}
	var want []string
	for _, n := range c.nodes {
		if n.added && !m.removed[n.id] {
			want = append(want, fmt.Sprintf("%x:learner=%v", n.id, n.learner))
		}
	}
	slices.Sort(want)
	wantS := strings.Join(want, " ")
	if len(m.plan) > 0 {
		// Faults healed long ago: a change that still has not shown in the
		// leader's membership never will.
		c.violation("membership change %s %s never completed", m.plan[0].kind, m.plan[0].target.name())
	}
	for _, n := range c.nodes {
		switch {
		case c.removedFromCluster(n) && n.core != nil:
			c.violation("%s was removed from the cluster but is still running", n.name())
		case !c.removedFromCluster(n) && n.gone:
			c.violation("%s stopped as removed, but the cluster never removed it", n.name())
		case n.core != nil:
			var got []string
			for _, mem := range n.core.Members() {
				got = append(got, fmt.Sprintf("%x:learner=%v", mem.ID, mem.IsLearner))
			}
			slices.Sort(got)
			if g := strings.Join(got, " "); g != wantS && len(m.plan) == 0 {
				c.violation("membership did not converge: %s has [%s], the cluster's is [%s]", n.name(), g, wantS)
			}
		}
	}
	c.report.MemberChanges = m.changes
}

// serving lists the members that serve clients' final reads: the voters
// the cluster has and did not remove (all of them without the membership
// workload).
func (c *Cluster) serving() []*simNode {
	var out []*simNode
	for _, n := range c.nodes {
		if n.added && !n.learner && !n.gone && (c.membership == nil || !c.membership.removed[n.id]) {
			out = append(out, n)
		}
	}
	return out
}
