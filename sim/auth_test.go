package sim

import (
	"fmt"
	"testing"
)

// The auth workload runs: auth is set up and enabled, permissions change,
// some of the user's writes are refused at apply, and members' auth
// fingerprints are compared at the same indexes (TestSim checks they
// agree; the planted bug ignore-auth-revokes proves the check can fail).
func TestAuthWorkloadRuns(t *testing.T) {
	var checks, changes, denied int
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rep := runSeed(t, seed, "")
			checks, changes, denied = checks+rep.AuthChecks, changes+rep.AuthChanges, denied+rep.AuthDenied
			t.Logf("seed %d: %d auth fingerprints compared, %d auth changes applied, %d writes denied", seed, rep.AuthChecks, rep.AuthChanges, rep.AuthDenied)
		})
	}
	if checks < 100 || changes < 10 || denied < 10 {
		t.Errorf("over 4 seeds: %d fingerprints compared, %d changes, %d denials: the auth workload hardly ran", checks, changes, denied)
	}
}
