package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/node"
)

// knobs are the members' settings the swarm draws per seed, from their own
// random stream (so adding them changed no other draw): the seed alone
// replays them, and the trace's first line and a failure's report name them.
type knobs struct {
	snapshotCount, catchUp uint64
	batchLimit             int
	batchInterval          time.Duration
	electionTicks          int
	heartbeatTicks         int
	// quota bounds the database as etcd's --quota-backend-bytes (0: none):
	// the simulated shell refuses writes past it and raises NOSPACE, which
	// the operator workload clears (compact, defragment, disarm).
	quota int64
	// maxRequestBytes bounds an encoded request (0: the default); some
	// workload requests exceed the smallest and are refused.
	maxRequestBytes int
}

func drawKnobs(seed uint64) knobs {
	r := rand.New(rand.NewPCG(seed, 0x4b4e4f4253))
	k := knobs{
		snapshotCount:   []uint64{200, 200, 10, 30, 100, 1000}[r.IntN(6)],
		catchUp:         []uint64{50, 50, 1, 5, 20, 200}[r.IntN(6)],
		batchLimit:      []int{1000, 1000, 1, 10, 100}[r.IntN(5)],
		batchInterval:   []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, time.Millisecond, 10 * time.Millisecond, 500 * time.Millisecond}[r.IntN(5)],
		electionTicks:   []int{10, 10, 5, 15}[r.IntN(4)],
		quota:           []int64{0, 0, 0, 32 << 10, 40 << 10}[r.IntN(5)],
		maxRequestBytes: []int{0, 0, 0, 64}[r.IntN(4)],
	}
	k.heartbeatTicks = 1 + r.IntN(2)
	return k
}

func (k knobs) String() string {
	return fmt.Sprintf("snapshot-count=%d catch-up=%d batch-limit=%d batch-interval=%v election-ticks=%d heartbeat-ticks=%d quota=%d max-request-bytes=%d",
		k.snapshotCount, k.catchUp, k.batchLimit, k.batchInterval, k.electionTicks, k.heartbeatTicks, k.quota, k.maxRequestBytes)
}

// overQuota is the shell's quota check (server.checkQuota): a request that
// adds data and would grow n's database past the quota is refused, and the
// member proposes the NOSPACE alarm.
func (n *simNode) overQuota(r *pb.InternalRaftRequest) bool {
	q := n.c.knobs.quota
	if q <= 0 || !node.AddsData(r) || n.core.KV().Size()+int64(proto.Size(r)) <= q {
		return false
	}
	c := n.c
	c.report.Faults["nospace-refused"]++
	if !hasAlarm(n.core, pb.AlarmType_NOSPACE) {
		c.tracef("%s: database %d bytes, quota %d: raising NOSPACE", n.name(), n.core.KV().Size(), q)
		if _, err := n.core.Propose(&pb.InternalRaftRequest{Header: rootHeader(), Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: n.id, Alarm: pb.AlarmType_NOSPACE}}, nil); err == nil {
			n.process()
		}
	}
	return true
}

func hasAlarm(core *node.Core, kind pb.AlarmType) bool {
	for _, a := range core.Alarms() {
		if a.GetAlarm() == kind {
			return true
		}
	}
	return false
}

// clearNoSpaceEvery is the operator's answer to NOSPACE, as etcd's docs
// prescribe: compact, defragment every member, disarm the alarm.
func (c *Cluster) clearNoSpaceEvery(d time.Duration) {
	c.schedule(d, "", func() {
		c.clearNoSpace()
		c.clearNoSpaceEvery(d)
	})
}

func (c *Cluster) clearNoSpace() {
	lead := c.leader()
	if lead == nil || !hasAlarm(lead.core, pb.AlarmType_NOSPACE) {
		return
	}
	c.compact()
	for _, n := range c.nodes {
		n.defrag()
	}
	for _, a := range lead.core.Alarms() {
		if a.GetAlarm() != pb.AlarmType_NOSPACE {
			continue
		}
		c.tracef("disarm NOSPACE of %x via %s", a.GetMemberID(), lead.name())
		if _, err := lead.core.Propose(&pb.InternalRaftRequest{Header: rootHeader(), Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, MemberID: a.GetMemberID(), Alarm: pb.AlarmType_NOSPACE}}, nil); err == nil {
			lead.process()
		}
	}
}

// defrag defragments n's database online, between two events (the shell
// runs it off the loop; writers wait for it either way).
func (n *simNode) defrag() {
	if n.core == nil {
		return
	}
	before := n.core.KV().Size()
	if err := n.core.KV().Defrag(nil); err != nil {
		n.c.violation("defragmenting %s: %v", n.name(), err)
		return
	}
	n.c.report.Faults["defrag"]++
	n.c.tracef("defrag %s: %d -> %d bytes", n.name(), before, n.core.KV().Size())
}
