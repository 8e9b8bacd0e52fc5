package sim

import (
	"fmt"
	"testing"

	"github.com/cairnkv/cairn/linearizability"
)

// TestV2WorkloadIsExercised proves the v2 workload reaches every path
// the model checks: writes, failed comparisons, refusals under v3 auth,
// keys expiring through the leader's SYNC, and a decided check.
func TestV2WorkloadIsExercised(t *testing.T) {
	var ok, casFailed, refused, expired, decided, unknown int
	for seed := uint64(1); seed <= 12; seed++ {
		var rep *Report
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { rep = runSeed(t, seed, "") })
		v := rep.V2
		t.Logf("seed %d: v2 ops ok=%d failed=%d unknown=%d, %d refused, %d compares failed, %d expired, check %v in %d steps",
			seed, v.Ops.OK, v.Ops.Failed, v.Ops.Unknown, v.Refused, v.CASFailed, v.Expired, v.Verdict, v.Steps)
		ok += v.Ops.OK - v.Refused
		casFailed += v.CASFailed
		refused += v.Refused
		expired += v.Expired
		unknown += v.Ops.Unknown
		if v.Checked && v.Verdict == linearizability.Linearizable {
			decided++
		}
	}
	if ok < 100 || casFailed == 0 || refused == 0 || expired == 0 || unknown == 0 || decided < 10 {
		t.Fatalf("v2 workload over 12 seeds: %d answered ops, %d failed compares, %d refusals, %d expirations, %d unknown outcomes, %d checks proven linearizable", ok, casFailed, refused, expired, unknown, decided)
	}
}
