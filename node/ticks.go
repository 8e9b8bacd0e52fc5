package node

// AdvanceTicks fast-forwards raft's election clock by n ticks: etcd's
// initial election tick advance for a cluster of more than one member, which
// the shell asks for once peers are connected (a one-voter cluster
// advances by itself, see advanceTicksIfAlone). Only raft's clock moves: the
// core's own tick duties (read retries, lease checks) do not run for them.
func (c *Core) AdvanceTicks(n int) {
	if c.fatal != nil {
		return
	}
	for range n {
		c.rn.Tick()
	}
}
