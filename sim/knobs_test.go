package sim

import (
	"bytes"
	"strings"
	"testing"
	"testing/cryptotest"
)

// TestKnobsAreDrawnPerSeed: every knob takes more than one value across
// seeds, the same seed draws the same knobs, and the trace names them.
func TestKnobsAreDrawnPerSeed(t *testing.T) {
	values := map[string]map[string]bool{}
	for seed := uint64(1); seed <= 100; seed++ {
		k := drawKnobs(seed)
		if k != drawKnobs(seed) {
			t.Fatalf("seed %d drew different knobs twice", seed)
		}
		if k.heartbeatTicks >= k.electionTicks {
			t.Fatalf("seed %d: heartbeat %d ticks, election %d", seed, k.heartbeatTicks, k.electionTicks)
		}
		for _, f := range strings.Fields(k.String()) {
			name, v, _ := strings.Cut(f, "=")
			if values[name] == nil {
				values[name] = map[string]bool{}
			}
			values[name][v] = true
		}
	}
	if len(values) != 8 {
		t.Fatalf("%d knobs named, want 8: %v", len(values), values)
	}
	for name, vs := range values {
		if len(vs) < 2 {
			t.Errorf("knob %s took only the values %v in 100 seeds", name, vs)
		}
	}
	cryptotest.SetGlobalRandom(t, 5)
	var trace bytes.Buffer
	rep, err := Run(Options{Seed: 5, Dir: t.TempDir(), Trace: &trace, NoLinearizability: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := "knobs " + drawKnobs(5).String(); !strings.Contains(trace.String(), want) || rep.Knobs != drawKnobs(5).String() {
		t.Fatalf("the trace or the report lacks %q (report: %q)", want, rep.Knobs)
	}
}
