//go:build cairnbugs

package sim

import (
	"fmt"
	"strings"
	"testing"
)

// TestPlantedBugsAreFound proves the checks can fail: with each planted bug,
// some seed among the first few must report a violation. 60 seeds: the
// rarest, snapshot-without-data, needs a follower to lag far enough for a
// snapshot in the default workload, about one seed in ten.
func TestPlantedBugsAreFound(t *testing.T) {
	const maxSeeds = 60
	for _, bug := range Bugs {
		t.Run(bug, func(t *testing.T) {
			for seed := uint64(1); seed <= maxSeeds; seed++ {
				var rep *Report
				t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { rep = runSeed(t, seed, bug) })
				if !rep.Ok() {
					t.Logf("bug %s found by seed %d: %s", bug, seed, rep.Violations[0])
					return
				}
			}
			t.Fatalf("bug %s went unnoticed for %d seeds", bug, maxSeeds)
		})
	}
}

// TestCorruptionRaisesTheAlarm proves the cluster's own compact hash check
// catches silent corruption: with one member (n2) storing flipped values,
// the cluster must raise a CORRUPT alarm for n2, and only for n2, in most
// seeds (a seed whose faults keep every check from deciding may miss it).
func TestCorruptionRaisesTheAlarm(t *testing.T) {
	const seeds = 10
	caught := 0
	for seed := uint64(1); seed <= seeds; seed++ {
		var rep *Report
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rep = runOpts(t, Options{Seed: seed, Bug: BugFlipValues, Compaction: true, NoLinearizability: true})
		})
		for _, name := range rep.CorruptAlarms {
			if name != "n2" && len(rep.Tainted) == 0 {
				t.Fatalf("seed %d: CORRUPT alarm raised for %s; only n2 was corrupted", seed, name)
			}
		}
		if len(rep.CorruptAlarms) == 1 && rep.CorruptAlarms[0] == "n2" {
			caught++
		}
		t.Logf("seed %d: %d hash checks decided, CORRUPT alarms %v, n2's corruption spread by snapshot to %v", seed, rep.HashChecks, rep.CorruptAlarms, rep.Tainted)
	}
	if caught < seeds*7/10 {
		t.Fatalf("the corruption was caught in %d of %d seeds; want at least 70%%", caught, seeds)
	}
}

// TestNewChecksCatchTheirBugs proves each check of the richer workload
// fails on its own planted bug within 200 seeds: the violation must be
// the check's own, not another check's.
func TestNewChecksCatchTheirBugs(t *testing.T) {
	const maxSeeds = 200
	for _, tc := range []struct {
		bug, check string
		opts       Options
	}{
		{BugKeepRemovedMembers, "membership did not converge", Options{Membership: true}},
		{BugIgnoreRemoval, "was removed from the cluster but is still running", Options{Membership: true}},
		{BugSnapshotWithoutData, "the lagging follower", Options{Lag: true}},
		{BugSkipStagedSync, "failed to restart", Options{Lag: true, CutSnapshots: true}},
	} {
		t.Run(tc.bug, func(t *testing.T) {
			for seed := uint64(1); seed <= maxSeeds; seed++ {
				opts := tc.opts
				opts.Seed, opts.Bug, opts.NoLinearizability = seed, tc.bug, true
				var rep *Report
				t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { rep = runOpts(t, opts) })
				for _, v := range rep.Violations {
					if strings.Contains(v, tc.check) {
						t.Logf("bug %s caught by its check at seed %d: %s", tc.bug, seed, v)
						return
					}
				}
			}
			t.Fatalf("the check %q missed bug %s for %d seeds", tc.check, tc.bug, maxSeeds)
		})
	}
}
