package sim

import (
	"math/rand/v2"
	"time"
)

// The operator's other work, each in about half the seeds, drawn from its
// own stream: leadership transfers, online defragmentation of a member
// under load, and a follower cut off long enough (while the others write
// on) that, with the seed's snapshot count and catch-up entries, it needs
// a snapshot to catch up. The checks that judge them are the run's own:
// linearizability, one leader per term, convergence, watches, leases.
func (c *Cluster) startOperator() {
	r := rand.New(rand.NewPCG(c.opts.Seed, 0x4f5052))
	if r.IntN(2) == 0 {
		c.schedule(c.expDelay(1500*time.Millisecond), "", c.transferLeader)
	}
	if r.IntN(2) == 0 {
		c.schedule(c.expDelay(1500*time.Millisecond), "", c.defragOne)
	}
	if r.IntN(2) == 0 || c.opts.Lag {
		c.schedule(500*time.Millisecond+time.Duration(r.Int64N(int64(time.Second))), "", c.lagFollower)
	}
}

// operatorDone: the operator stops a couple of seconds before the run's
// end, so the cluster settles under the clients alone.
func (c *Cluster) operatorDone() bool {
	return c.now >= int64(c.opts.Duration+c.opts.Heal)-int64(2*clientTimeout)
}

// transferLeader asks the leader to hand over to another voter.
func (c *Cluster) transferLeader() {
	if c.operatorDone() {
		return
	}
	defer c.schedule(c.expDelay(1500*time.Millisecond), "", c.transferLeader)
	lead := c.leader()
	if lead == nil {
		return
	}
	var to []*simNode
	for _, n := range c.serving() {
		if n != lead && n.core != nil {
			to = append(to, n)
		}
	}
	if len(to) == 0 {
		return
	}
	t := to[c.rng.IntN(len(to))]
	c.report.Faults["transfer"]++
	c.tracef("transfer leadership %s -> %s", lead.name(), t.name())
	lead.core.TransferLeadership(t.id)
	lead.process()
}

// defragOne defragments a random running member while clients write.
func (c *Cluster) defragOne() {
	if c.operatorDone() {
		return
	}
	defer c.schedule(c.expDelay(1500*time.Millisecond), "", c.defragOne)
	n := c.nodes[c.rng.IntN(len(c.nodes))]
	n.defrag()
}

// lagFollower cuts a follower off from everyone for 1.5 to 2.5 s of the
// safety phase while the others go on.
func (c *Cluster) lagFollower() {
	if !c.inSafetyPhase() {
		return
	}
	lead := c.leader()
	var fs []*simNode
	for _, n := range c.serving() {
		if n != lead && n.core != nil {
			fs = append(fs, n)
		}
	}
	if lead == nil || len(fs) == 0 {
		c.schedule(200*time.Millisecond, "", c.lagFollower)
		return
	}
	f := fs[c.rng.IntN(len(fs))]
	var cuts [][2]int
	for _, o := range c.nodes {
		if o != f {
			cuts = append(cuts, [2]int{f.idx, o.idx}, [2]int{o.idx, f.idx})
		}
	}
	for _, l := range cuts {
		c.blocked[l] = true
	}
	c.report.Faults["lag"]++
	c.lagging = f
	c.lagApplied = f.core.Applied()
	c.tracef("lag %s at applied=%d (leader %s at %d)", f.name(), c.lagApplied, lead.name(), lead.core.Applied())
	c.schedule(1500*time.Millisecond+time.Duration(c.rng.Int64N(int64(time.Second))), "", func() {
		for _, l := range cuts {
			delete(c.blocked, l)
		}
		c.tracef("lag %s over", f.name())
	})
}

// checkLag: the follower cut off must have caught up with the others, to
// the same revision and HashKV, whether by entries or by a snapshot.
func (c *Cluster) checkLag() {
	f := c.lagging
	if f == nil || f.core == nil {
		return
	}
	lead := c.leader()
	if lead == nil || lead == f {
		return
	}
	fh, _, _, ferr := f.core.KV().HashKV(0)
	lh, _, _, lerr := lead.core.KV().HashKV(0)
	if ferr != nil || lerr != nil {
		return // checkConvergence reports it
	}
	how := "entries"
	if c.report.LagSnapshot {
		how = "a snapshot"
	}
	if f.core.KV().Rev() != lead.core.KV().Rev() || fh != lh {
		c.violation("the lagging follower %s (cut off at applied index %d) caught up by %s to revision %d hash %08x; the leader %s is at %d hash %08x",
			f.name(), c.lagApplied, how, f.core.KV().Rev(), fh, lead.name(), lead.core.KV().Rev(), lh)
	}
}
