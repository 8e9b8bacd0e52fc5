package node

import (
	"testing"

	"go.etcd.io/raft/v3"
)

// tickUntilCampaign ticks c (processing its Ready) until it campaigns, at
// most max ticks, and returns how many it took, or max+1.
func tickUntilCampaign(t *testing.T, c *Core, max int) int {
	t.Helper()
	for i := 1; i <= max; i++ {
		c.Tick()
		for c.HasReady() {
			if err := c.Process(); err != nil {
				t.Fatal(err)
			}
		}
		if c.rn.Status().RaftState != raft.StateFollower {
			return i
		}
	}
	return max + 1
}

// A member of a 3-member cluster waits at least an election timeout (10
// ticks) before it campaigns; fast-forwarded by AdvanceTicks(8), it
// campaigns within 2 to 11 more ticks (raft's randomized timeout is 10 to
// 19 ticks).
func TestAdvanceTicksBringsTheElectionCloser(t *testing.T) {
	for i := range 10 {
		c := newTestCore(t, 3)
		for c.HasReady() {
			if err := c.Process(); err != nil {
				t.Fatal(err)
			}
		}
		if n := tickUntilCampaign(t, newTestCore(t, 3), 9); n <= 9 {
			t.Fatalf("start %d: a member campaigned after %d ticks, before its election timeout", i, n)
		}
		c.AdvanceTicks(8)
		if n := tickUntilCampaign(t, c, 11); n > 11 {
			t.Fatalf("start %d: advanced by 8 ticks, no campaign within 11 more", i)
		}
	}
}
