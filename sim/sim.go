// Package sim runs a whole Cairn cluster inside one goroutine over virtual
// time, deterministically from a seed: the production node.Core of every
// member, a simulated network with loss, duplication, delay and partitions,
// crashes that keep only fsynced WAL bytes and committed database batches,
// per-member clock skew, and clients whose histories are checked for
// linearizability. Same seed, same run, bit for bit: raft's own randomness
// comes from crypto/rand, which the caller makes deterministic with
// testing/cryptotest.SetGlobalRandom before Run.
package sim

import (
	"container/heap"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/linearizability"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/vfs"
)

// Options configures one simulation run. The seed decides everything else
// that is left zero (swarm testing: fault rates, client counts, key counts).
type Options struct {
	Seed uint64
	// Dir holds the members' bbolt files (one subdirectory per member).
	Dir string
	// Nodes is the cluster size (default: 3 or 5, by seed).
	Nodes int
	// Duration of the safety phase, with faults on (default 4s virtual).
	Duration time.Duration
	// Heal is the liveness phase: faults healed, crashed members restarted,
	// the cluster must converge and serve (default 4s virtual).
	Heal time.Duration
	// NoFaults turns fault injection off.
	NoFaults bool
	// Trace, if set, receives one line per event.
	Trace io.Writer
	// Logger for the members (default nop).
	Logger *zap.Logger
	// Bug plants a known bug to prove the checks find it ("" = none); see bugs.go.
	Bug string
	// NoLinearizability skips the history check, for runs that look for
	// something else (a corrupted member's history can take porcupine a
	// long while to refute).
	NoLinearizability bool
	// LinearizabilitySteps overrides the step budget of each partition of
	// the linearizability checks (0: registerSteps and kvSteps).
	LinearizabilitySteps int
	// Membership turns the membership workload on whatever the seed
	// draws; otherwise half the seeds run it.
	Membership bool
	// CutSnapshots arms a power cut (cut.go) on every member about to
	// install a snapshot in the safety phase, not a third of them in half
	// the seeds.
	CutSnapshots bool
	// Lag cuts a follower off for a while (operator.go) whatever the seed
	// draws; otherwise half the seeds do.
	Lag bool
	// Compaction turns on compaction and the compact hash check (see
	// corrupt.go) whatever the seed draws; otherwise half the seeds run them.
	Compaction bool
}

// Report is what a run found.
type Report struct {
	Seed       uint64
	Nodes      int
	Events     int
	Ops        OpCounts
	Faults     map[string]int
	TraceHash  uint64
	Violations []string
	// Snapshots counts the snapshots members took from a leader;
	// LagSnapshot tells the follower the operator cut off took one.
	Snapshots   int
	LagSnapshot bool
	// Membership tells whether the run changed membership, MemberChanges
	// how many changes the operator saw applied (members.go).
	Membership    bool
	MemberChanges int
	// Knobs names the members' settings the seed drew (knobs.go).
	Knobs string
	// Compaction tells whether the run compacted and checked hashes.
	Compaction bool
	// HashChecks counts the compact hash checks that decided.
	HashChecks int
	// CorruptAlarms names the members the cluster raised CORRUPT alarms
	// for (its compact hash check), sorted.
	CorruptAlarms []string
	// Tainted names the members that took a snapshot of BugFlipValues's
	// corrupted member (or of one that did): its corruption spread to
	// them, so the cluster may rightly find them, or the sound ones, odd.
	Tainted []string
	// Inconclusive counts the linearizability checks (one per model) that
	// ran out of steps without a verdict (see registerSteps); LinSteps the
	// steps the checks took. Both depend on the seed alone.
	Inconclusive, LinSteps int
	// AuthChecks counts the applied entries whose auth fingerprint was
	// compared with another member's at the same index (auth.go), and
	// AuthChanges the auth changes applied, AuthDenied the writes of the
	// auth workload's user refused at apply.
	AuthChecks, AuthChanges, AuthDenied int
	// V2 is what the v2 API workload did and found (v2.go).
	V2 V2Report
	// History of client operations, for the linearizability check and its visualisation.
	History  *History
	lin      *linearizability.Result
	linModel linearizability.Model
}

// OpCounts counts client operations by outcome.
type OpCounts struct{ OK, Failed, Unknown int }

// Ok tells whether the run found no violation.
func (r *Report) Ok() bool { return len(r.Violations) == 0 }

const tickInterval = 100 * time.Millisecond

type event struct {
	at    int64
	seq   uint64
	label string
	fn    func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int)   { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)     { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any       { old := *q; e := old[len(old)-1]; *q = old[:len(old)-1]; return e }
func (q eventQueue) peekTime() int64 { return q[0].at }

// faultPlan is the swarm's choice of fault rates for one seed.
type faultPlan struct {
	loss, dup          float64
	minDelay, maxDelay time.Duration
	crashEvery         time.Duration // mean time between crashes (0 = none)
	partitionEvery     time.Duration // mean time between partitions (0 = none)
	skew               float64       // max relative tick-rate skew
	slowDisk           bool
}

// Cluster is a simulated cluster. It is not safe for concurrent use: Run
// drives it from the calling goroutine.
type Cluster struct {
	opts    Options
	rng     *rand.Rand
	now     int64
	seq     uint64
	queue   eventQueue
	nodes   []*simNode
	members []node.Member
	plan    faultPlan
	blocked map[[2]int]bool // [from,to] links cut
	report  *Report
	trace   hash.Hash64
	hist    *History
	clients []*client
	healing bool
	// settled is when the run stopped waiting for the cluster to quiesce.
	settling bool
	nkeys    int
	leases   []*simLease
	// applied records, per raft index, the entry the first member applied there.
	applied map[uint64]appliedEntry
	// finalReads counts the liveness phase's completed final reads.
	finalReads int
	// leaders records, per term, the member that led it.
	leaders map[uint64]uint64
	// watchLimits are the members' watch memory bounds: from tiny (every
	// watcher falls behind and catches up in small steps, partly from the
	// database) to the defaults.
	watchLimits mvcc.WatchLimits
	// hashChecked is the last compacted revision the hash check decided.
	hashChecked int64
	// auth is the auth workload (auth.go).
	auth *simAuth
	// knobs are the members' settings drawn for the seed (knobs.go).
	knobs knobs
	// compacted tells some compaction was proposed (the compaction
	// workload's or the quota operator's).
	compacted bool
	// cutsInside lets crashes fall inside durable steps (cut.go).
	cutsInside bool
	// membership is the membership workload (members.go), nil if off.
	membership *simMembership
	// lagging is the follower the operator cut off (operator.go), at
	// lagApplied when it was.
	lagging    *simNode
	lagApplied uint64
	// v2 is the v2 API workload (v2.go).
	v2 *simV2
}

// Run executes one simulation and returns its report. It never panics on a
// member's failure: failures are violations in the report.
func Run(opts Options) (*Report, error) {
	c, err := newCluster(opts)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if p := c.runRecovering(); p != nil {
		c.violation("a member's raft panicked, its state impossible (lost or corrupted log): %v", p)
	}
	return c.report, nil
}

// runRecovering runs the seed and returns raft's panic if a member's raft
// found its own state impossible (node.RaftPanic), which a planted bug that
// loses acknowledged entries can cause; any other panic is the simulator's
// or the node's own bug and goes on up.
func (c *Cluster) runRecovering() (p error) {
	defer func() {
		if r := recover(); r != nil {
			rp, ok := r.(node.RaftPanic)
			if !ok {
				panic(r)
			}
			p = rp
		}
	}()
	c.run()
	return nil
}

func newCluster(opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("sim: Options.Dir is required")
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	if opts.Nodes == 0 {
		opts.Nodes = []int{3, 3, 5}[rng.IntN(3)]
	}
	if opts.Duration == 0 {
		opts.Duration = 4 * time.Second
	}
	if opts.Heal == 0 {
		opts.Heal = 4 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if err := checkBug(opts.Bug); err != nil {
		return nil, err
	}
	c := &Cluster{
		opts:    opts,
		rng:     rng,
		blocked: map[[2]int]bool{},
		leaders: map[uint64]uint64{},
		applied: map[uint64]appliedEntry{},
		trace:   fnv.New64a(),
		report:  &Report{Seed: opts.Seed, Nodes: opts.Nodes, Faults: map[string]int{}},
	}
	c.plan = c.choosePlan()
	c.knobs = drawKnobs(opts.Seed)
	c.cutsInside = !opts.NoFaults && drawCutsInside(opts.Seed)
	c.report.Knobs = c.knobs.String()
	c.nkeys = 3 + c.rng.IntN(6)
	// Drawn from their own stream, so that adding them changed no other draw.
	wr := rand.New(rand.NewPCG(opts.Seed, 0x5741544348))
	c.watchLimits = mvcc.WatchLimits{
		StreamBytes: []int{0, 0, 200, 2000}[wr.IntN(4)],
		TotalBytes:  []int{0, 0, 300}[wr.IntN(3)],
		CacheBytes:  []int{0, 0, 100, 1000}[wr.IntN(4)],
	}
	// Drawn from its own stream too.
	c.report.Compaction = opts.Compaction || rand.New(rand.NewPCG(opts.Seed, 0x434f4d50)).IntN(2) == 0
	c.hist = newHistory(func() int64 { return c.now })
	c.report.History = c.hist
	for i := 0; i < opts.Nodes; i++ {
		urls := []string{fmt.Sprintf("sim://n%d", i+1)}
		c.members = append(c.members, node.Member{ID: node.MemberID(urls, "sim"), Name: fmt.Sprintf("n%d", i+1), PeerURLs: urls})
	}
	for i := range c.members {
		n := &simNode{c: c, idx: i, id: c.members[i].ID, added: true, fs: vfs.NewMem(), dir: filepath.Join(opts.Dir, c.members[i].Name), clock: clock.NewFake(time.Unix(1_700_000_000, 0))}
		if !opts.NoFaults && c.plan.skew > 0 {
			n.rate = 1 + (c.rng.Float64()*2-1)*c.plan.skew
			n.offset = time.Duration(c.rng.Int64N(int64(time.Minute)))
		} else {
			n.rate = 1
		}
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		if err := n.start(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) choosePlan() faultPlan {
	if c.opts.NoFaults {
		return faultPlan{minDelay: time.Millisecond, maxDelay: 5 * time.Millisecond}
	}
	p := faultPlan{
		loss:     []float64{0, 0, 0.01, 0.05, 0.2}[c.rng.IntN(5)],
		dup:      []float64{0, 0.01, 0.05}[c.rng.IntN(3)],
		minDelay: time.Millisecond,
		maxDelay: []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 80 * time.Millisecond}[c.rng.IntN(3)],
		skew:     []float64{0, 0.01, 0.1}[c.rng.IntN(3)],
		slowDisk: c.rng.IntN(4) == 0,
	}
	p.crashEvery = []time.Duration{0, 3 * time.Second, time.Second}[c.rng.IntN(3)]
	p.partitionEvery = []time.Duration{0, 2 * time.Second, 700 * time.Millisecond}[c.rng.IntN(3)]
	return p
}

func (c *Cluster) close() {
	for _, n := range c.nodes {
		n.stopWatch()
		if n.core != nil {
			_ = n.core.Close()
			n.core = nil
		}
	}
}

// schedule runs fn after d of virtual time.
func (c *Cluster) schedule(d time.Duration, label string, fn func()) {
	c.seq++
	heap.Push(&c.queue, &event{at: c.now + int64(d), seq: c.seq, label: label, fn: fn})
}

func (c *Cluster) tracef(format string, args ...any) {
	line := fmt.Sprintf("%12.6f ", float64(c.now)/1e9) + fmt.Sprintf(format, args...)
	_, _ = c.trace.Write([]byte(line))
	if c.opts.Trace != nil {
		fmt.Fprintln(c.opts.Trace, line)
	}
}

func (c *Cluster) violation(format string, args ...any) {
	msg := fmt.Sprintf("t=%.3fs ", float64(c.now)/1e9) + fmt.Sprintf(format, args...)
	c.tracef("VIOLATION %s", msg)
	c.report.Violations = append(c.report.Violations, msg)
}

func (c *Cluster) run() {
	c.tracef("seed %d: %d members, knobs %s", c.opts.Seed, len(c.nodes), c.knobs)
	for _, n := range c.nodes {
		n.scheduleTick()
	}
	c.startClients()
	c.startLeases()
	c.startAuth()
	c.startMembership()
	c.startOperator()
	c.drainWatchesEvery(500 * time.Millisecond)
	if c.report.Compaction {
		c.compactEvery(700 * time.Millisecond)
		c.checkHashesEvery(500 * time.Millisecond)
	}
	if c.knobs.quota > 0 {
		c.clearNoSpaceEvery(500 * time.Millisecond)
	}
	if !c.opts.NoFaults {
		c.scheduleFaults()
	}
	end := int64(c.opts.Duration)
	c.runUntil(end)
	c.heal()
	c.runUntil(end + int64(c.opts.Heal))
	c.settle()
	c.finish()
	c.report.TraceHash = c.trace.Sum64()
}

func (c *Cluster) runUntil(t int64) {
	for c.queue.Len() > 0 && c.queue.peekTime() <= t {
		e := heap.Pop(&c.queue).(*event)
		c.now = e.at
		c.report.Events++
		if e.label != "" {
			c.tracef("%s", e.label)
		}
		e.fn()
		c.checkLeaders()
	}
	c.now = t
}

// checkLeaders asserts at most one leader per term.
func (c *Cluster) checkLeaders() {
	for _, n := range c.nodes {
		if n.core == nil || !n.core.IsLeader() {
			continue
		}
		term := n.core.Term()
		if prev, ok := c.leaders[term]; ok && prev != n.id {
			c.violation("two leaders in term %d: %x and %x", term, prev, n.id)
		}
		c.leaders[term] = n.id
	}
}

// deliver sends a raft message over the simulated network.
func (c *Cluster) send(from *simNode, msgs []*raftpb.Message) {
	for _, m := range msgs {
		to := c.indexOf(m.GetTo())
		if to < 0 {
			continue
		}
		cp := proto.Clone(m).(*raftpb.Message)
		isSnap := cp.GetType() == raftpb.MsgSnap
		c.tracef("send %s %s->%s term=%d idx=%d commit=%d ents=%d", cp.GetType(), from.name(), c.nodes[to].name(), cp.GetTerm(), cp.GetIndex(), cp.GetCommit(), len(cp.GetEntries()))
		inc := from.incarnation
		drop := c.blocked[[2]int{from.idx, to}] || (!isSnap && c.rng.Float64() < c.plan.loss)
		if drop {
			if isSnap {
				c.schedule(c.delay(), "", func() {
					from.report(inc, func(core *node.Core) { core.ReportSnapshot(m.GetTo(), raft.SnapshotFailure) })
				})
			}
			continue
		}
		copies := 1
		// Raft's own messages are idempotent, so duplicating them tests
		// raft. A forwarded proposal (MsgProp) is not: raft would append it
		// twice. The production transport (one TCP stream per peer) never
		// duplicates, so neither does the simulated network for MsgProp.
		if !isSnap && cp.GetType() != raftpb.MsgProp && c.rng.Float64() < c.plan.dup {
			copies = 2
		}
		for i := 0; i < copies; i++ {
			target := c.nodes[to]
			msg := cp
			if i > 0 {
				msg = proto.Clone(cp).(*raftpb.Message)
			}
			c.schedule(c.delay(), "", func() {
				if c.blocked[[2]int{from.idx, to}] {
					if isSnap {
						from.report(inc, func(core *node.Core) { core.ReportSnapshot(target.id, raft.SnapshotFailure) })
					}
					return
				}
				if isSnap && (c.opts.CutSnapshots || c.cutsInside && c.rng.IntN(3) == 0) && c.inSafetyPhase() && target.core != nil && !target.cut.armed {
					target.armCut(200*time.Millisecond + time.Duration(c.rng.Int64N(int64(time.Second))))
				}
				ok := target.step(from, inc, msg)
				if isSnap && ok {
					c.snapshotInstalled(from, target)
				}
				if isSnap {
					st := raft.SnapshotFinish
					if !ok {
						st = raft.SnapshotFailure
					}
					c.schedule(c.delay(), "", func() { from.report(inc, func(core *node.Core) { core.ReportSnapshot(target.id, st) }) })
				}
			})
		}
	}
}

func (c *Cluster) delay() time.Duration {
	span := int64(c.plan.maxDelay - c.plan.minDelay)
	if span <= 0 {
		return c.plan.minDelay
	}
	return c.plan.minDelay + time.Duration(c.rng.Int64N(span))
}

func (c *Cluster) indexOf(id uint64) int {
	for i, n := range c.nodes {
		if n.id == id {
			return i
		}
	}
	return -1
}

// leader returns a member that currently believes it leads, or nil.
func (c *Cluster) leader() *simNode {
	for _, n := range c.nodes {
		if n.core != nil && n.core.IsLeader() {
			return n
		}
	}
	return nil
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type appliedEntry struct {
	sum  uint64
	term uint64
	by   string
}

// describeEntry renders an applied entry for the trace.
func describeEntry(e *raftpb.Entry) string {
	if e.GetType() != raftpb.EntryNormal {
		return e.GetType().String()
	}
	if len(e.GetData()) == 0 {
		return "empty"
	}
	r := &pb.InternalRaftRequest{}
	if err := proto.Unmarshal(e.GetData(), r); err != nil {
		return "undecodable"
	}
	switch {
	case r.GetPut() != nil:
		return fmt.Sprintf("put %s=%s", r.GetPut().GetKey(), r.GetPut().GetValue())
	case r.GetDeleteRange() != nil:
		return fmt.Sprintf("delete %s", r.GetDeleteRange().GetKey())
	case r.GetTxn() != nil:
		return fmt.Sprintf("txn on %s", r.GetTxn().GetCompare()[0].GetKey())
	case r.GetLeaseGrant() != nil:
		return fmt.Sprintf("lease-grant %d ttl=%d", r.GetLeaseGrant().GetID(), r.GetLeaseGrant().GetTTL())
	case r.GetLeaseRevoke() != nil:
		return fmt.Sprintf("lease-revoke %d", r.GetLeaseRevoke().GetID())
	case r.GetLeaseCheckpoint() != nil:
		return fmt.Sprintf("lease-checkpoint %v", r.GetLeaseCheckpoint().GetCheckpoints())
	}
	return "other"
}
