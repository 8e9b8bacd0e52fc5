//go:build cairnbugs

package sim

import (
	"fmt"
	"testing"
)

// TestPlantedBugsAreFound proves the checks can fail: with each planted bug,
// some seed among the first few must report a violation.
func TestPlantedBugsAreFound(t *testing.T) {
	const maxSeeds = 30
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
