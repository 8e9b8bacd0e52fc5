//go:build cairnbugs

package sim

import (
	"fmt"
	"strings"
	"testing"
)

// TestNewChecksCatchTheirBugsV2 proves the v2 history check fails on its
// planted bug (v2 compare-and-swaps and compare-and-deletes applied without
// their prevIndex comparison) within 200 seeds, by its own violation. (Its
// name makes `make sim`'s -run pattern for TestNewChecksCatchTheirBugs
// select it.)
func TestNewChecksCatchTheirBugsV2(t *testing.T) {
	const maxSeeds = 200
	for seed := uint64(1); seed <= maxSeeds; seed++ {
		var rep *Report
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rep = runOpts(t, Options{Seed: seed, Bug: BugV2IgnorePrevIndex})
		})
		for _, v := range rep.Violations {
			if strings.Contains(v, "v2 history is not linearizable") {
				t.Logf("bug %s caught by the v2 check at seed %d: %s", BugV2IgnorePrevIndex, seed, v)
				return
			}
		}
	}
	t.Fatalf("the v2 check missed bug %s for %d seeds", BugV2IgnorePrevIndex, maxSeeds)
}
