package sim

import (
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/anishathalye/porcupine"

	"github.com/cairnkv/cairn/linearizability"
)

// expDelay draws an exponentially distributed delay with the given mean.
func (c *Cluster) expDelay(mean time.Duration) time.Duration {
	return time.Duration(c.rng.ExpFloat64() * float64(mean))
}

func (c *Cluster) scheduleFaults() {
	if c.plan.crashEvery > 0 {
		c.schedule(c.expDelay(c.plan.crashEvery), "", c.crashOne)
	}
	if c.plan.partitionEvery > 0 {
		c.schedule(c.expDelay(c.plan.partitionEvery), "", c.partitionOnce)
	}
}

func (c *Cluster) inSafetyPhase() bool { return !c.healing && c.now < int64(c.opts.Duration) }

func (c *Cluster) crashOne() {
	if !c.inSafetyPhase() {
		return
	}
	var n *simNode
	if c.rng.IntN(2) == 0 {
		n = c.leader()
	}
	if n == nil {
		n = c.nodes[c.rng.IntN(len(c.nodes))]
	}
	if n.core != nil && !n.cut.armed {
		down := 200*time.Millisecond + time.Duration(c.rng.Int64N(int64(1500*time.Millisecond)))
		if c.cutsInside && c.rng.IntN(2) == 0 {
			n.armCut(down)
		} else {
			n.crash()
			c.schedule(down, "", n.restart)
		}
	}
	c.schedule(c.expDelay(c.plan.crashEvery), "", c.crashOne)
}

// partitionOnce cuts some links for a while: one member isolated, the
// leader isolated, a majority/minority split, or one one-way link.
func (c *Cluster) partitionOnce() {
	if !c.inSafetyPhase() {
		return
	}
	n := len(c.nodes)
	var cuts [][2]int
	var kind string
	switch c.rng.IntN(4) {
	case 0, 1:
		victim := c.rng.IntN(n)
		kind = "isolate"
		if l := c.leader(); l != nil && c.rng.IntN(2) == 0 {
			victim, kind = l.idx, "isolate-leader"
		}
		for j := 0; j < n; j++ {
			if j != victim {
				cuts = append(cuts, [2]int{victim, j}, [2]int{j, victim})
			}
		}
	case 2:
		kind = "split"
		perm := c.rng.Perm(n)
		minority := perm[:(n-1)/2]
		in := map[int]bool{}
		for _, i := range minority {
			in[i] = true
		}
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if in[i] != in[j] {
					cuts = append(cuts, [2]int{i, j})
				}
			}
		}
	default:
		kind = "one-way"
		i := c.rng.IntN(n)
		j := (i + 1 + c.rng.IntN(n-1)) % n
		cuts = append(cuts, [2]int{i, j})
	}
	for _, l := range cuts {
		c.blocked[l] = true
	}
	c.report.Faults[kind]++
	c.tracef("partition %s %v", kind, cuts)
	c.schedule(200*time.Millisecond+time.Duration(c.rng.Int64N(int64(2*time.Second))), "", func() {
		for _, l := range cuts {
			delete(c.blocked, l)
		}
		c.tracef("heal %s", kind)
	})
	c.schedule(c.expDelay(c.plan.partitionEvery), "", c.partitionOnce)
}

// heal ends the safety phase: every link restored, every member restarted,
// and the clients' final reads scheduled.
func (c *Cluster) heal() {
	c.healing = true
	c.blocked = map[[2]int]bool{}
	c.plan.loss, c.plan.dup = 0, 0
	c.tracef("heal all")
	for _, n := range c.nodes {
		if n.cut != nil && !n.cut.fired {
			n.cut.armed = false // no power cut after the safety phase
		}
		n.restart()
	}
	// Final reads of every key, late in the liveness phase: every
	// acknowledged write must be visible to them.
	c.schedule(c.opts.Heal-2*clientTimeout-500*time.Millisecond, "final reads", func() {
		for k := 0; k < c.keys(); k++ {
			c.finalRead(k, k)
		}
	})
}

// finalRead reads key k on the k-th serving member (pick). A member the
// operator removes meanwhile stops and fails the read: it is asked again
// of another member.
func (c *Cluster) finalRead(k, pick int) {
	cl := &client{c: c, id: len(c.clients) + k}
	key := fmt.Sprintf("k%d", k)
	voters := c.serving()
	n := voters[pick%len(voters)]
	if n.core == nil {
		c.violation("%s is down in the liveness phase", n.name())
		return
	}
	tok := c.hist.Invoke(cl.id, linearizability.Get(key))
	n.core.ReadIndex(func(err error) {
		if err != nil && c.removedFromCluster(n) {
			c.tracef("final read of %s on %s failed as it was removed: %v", key, n.name(), err)
			c.hist.Unknown(tok)
			c.schedule(0, "", func() { c.finalRead(k, pick+1) })
			return
		}
		if err != nil {
			c.violation("final read of %s on %s failed: %v", key, n.name(), err)
			c.hist.Unknown(tok)
			return
		}
		resp, err := n.core.KV().Range(&pb.RangeRequest{Key: []byte(key)})
		if err != nil {
			c.violation("final read of %s on %s: %v", key, n.name(), err)
			c.hist.Unknown(tok)
			return
		}
		out := linearizability.Response{}
		if len(resp.GetKvs()) == 1 {
			out.Found, out.Value = true, string(resp.GetKvs()[0].GetValue())
		}
		c.hist.Return(tok, out)
		c.finalReads++
	})
	n.process()
}

// maxSettle bounds how long, after the liveness phase, the run waits for
// every member to apply everything and for abandoned leases to expire: a
// leader elected late restarts lease countdowns (TTL + an election timeout).
const maxSettle = 6 * time.Second

// settle runs on, with no new client operations, until every member has
// applied the same index and no abandoned lease remains, or maxSettle.
func (c *Cluster) settle() {
	c.settling = true
	deadline := c.now + int64(maxSettle)
	for c.now < deadline && !c.quiet() {
		c.runUntil(c.now + int64(100*time.Millisecond))
	}
}

// quiet tells whether every member is up, has applied the same index, and
// holds no abandoned lease.
func (c *Cluster) quiet() bool {
	if c.membership != nil && len(c.membership.plan) > 0 {
		return false
	}
	var applied uint64
	first := true
	for _, n := range c.nodes {
		if n.gone || !n.added || (c.membership != nil && c.membership.removed[n.id]) {
			continue
		}
		if n.core == nil {
			return false
		}
		if first {
			applied, first = n.core.Applied(), false
		} else if n.core.Applied() != applied {
			return false
		}
		for _, l := range c.leases {
			if l.granted && !l.keep {
				if _, _, _, err := n.core.LeaseTimeToLive(l.id); err == nil {
					return false
				}
			}
		}
	}
	return true
}

// finish checks what must hold once faults are healed: the cluster has a
// leader and made progress, every member converged to the same state, and
// the history is linearizable.
func (c *Cluster) finish() {
	if c.leader() == nil {
		c.violation("no leader after %v of healing", c.opts.Heal)
	}
	if c.finalReads != c.keys() {
		c.violation("only %d of %d final reads completed after healing: the cluster does not serve", c.finalReads, c.keys())
	}
	c.checkConvergence()
	c.checkMembership()
	c.checkLag()
	c.checkAlarms()
	c.checkLeases()
	c.checkWatches()
	if !c.opts.NoLinearizability {
		c.checkLinearizable()
	}
	c.checkV2()
}

// checkConvergence asserts every member applied to the same revision with
// the same HashKV.
func (c *Cluster) checkConvergence() {
	type state struct {
		rev  int64
		hash uint32
	}
	var first *state
	var firstName string
	for _, n := range c.nodes {
		if n.core == nil {
			continue
		}
		kv := n.core.KV()
		h, _, _, err := kv.HashKV(0)
		if err != nil {
			c.violation("HashKV on %s: %v", n.name(), err)
			continue
		}
		st := &state{rev: kv.Rev(), hash: h}
		c.tracef("final %s applied=%d rev=%d hashkv=%08x db=%d bytes", n.name(), n.core.Applied(), st.rev, st.hash, kv.Size())
		if first == nil {
			first, firstName = st, n.name()
			continue
		}
		if st.rev != first.rev {
			c.violation("members did not converge: %s at revision %d, %s at %d", firstName, first.rev, n.name(), st.rev)
		} else if st.hash != first.hash {
			c.violation("members diverged: HashKV at revision %d is %08x on %s and %08x on %s", st.rev, first.hash, firstName, st.hash, n.name())
		}
	}
}

// Step budgets of the linearizability checks, per partition: the verdict
// depends on the seed alone, never on the machine's speed. A partition
// whose search runs out of steps is inconclusive, never a violation.
const (
	registerSteps = 2_000_000
	kvSteps       = 1_000_000
)

// checkLinearizable checks the history twice: single-key operations per
// key with the register model (revisions checked), and everything, ranges
// included, against the whole key space with the KV model (values only:
// the lease workload's writes bump revisions outside this history).
func (c *Cluster) checkLinearizable() {
	all := c.hist.History()
	var single, whole []porcupine.Operation
	for _, op := range all {
		if op.Input.(linearizability.Op).Kind != linearizability.KindRange {
			single = append(single, op)
		}
		out := op.Output.(linearizability.Response)
		out.Revision = 0
		op.Output = out
		whole = append(whole, op)
	}
	for _, chk := range []struct {
		model   linearizability.Model
		history []porcupine.Operation
		steps   int
	}{{linearizability.RegisterModel(), single, registerSteps}, {linearizability.KVModel(), whole, kvSteps}} {
		if c.opts.LinearizabilitySteps > 0 {
			chk.steps = c.opts.LinearizabilitySteps
		}
		res, err := linearizability.CheckSteps(chk.model, chk.history, chk.steps)
		if err != nil {
			c.violation("linearizability check (%s model): %v", chk.model.Name, err)
			return
		}
		c.report.LinSteps += res.Steps
		c.tracef("%s model check: %v, %d of %d partitions inconclusive, %d steps", chk.model.Name, res.Verdict, res.Inconclusive, res.Partitions, res.Steps)
		switch res.Verdict {
		case linearizability.Inconclusive:
			// The search can blow up with many unknown outcomes: not a
			// violation, and counted so a sweep shows how often.
			c.report.Inconclusive++
		case linearizability.NotLinearizable:
			c.violation("history is not linearizable (%s model)", chk.model.Name)
			// Only to draw the failing partition: the verdict is made.
			if lin, err := linearizability.Check(chk.model, res.Failed, time.Minute); err == nil {
				c.report.lin = &lin
				c.report.linModel = chk.model
			}
			return
		}
	}
}
