package sim

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/cairnkv/cairn/linearizability"
)

var (
	flagSeed  = flag.Uint64("seed", 0, "run only this seed (replays a failure exactly)")
	flagSeeds = flag.Int("seeds", 8, "number of seeds TestSim runs, starting at -first")
	flagFirst = flag.Uint64("first", 1, "first seed of the swarm")
	flagOut   = flag.String("out", "", "directory for traces and histories of failing seeds (default: a temp dir)")
)

// runSeed runs one seed with crypto/rand made deterministic from it, and
// fails t with the replay command and artefacts if the run found violations.
func runSeed(t *testing.T, seed uint64, bug string) *Report {
	t.Helper()
	return runOpts(t, Options{Seed: seed, Bug: bug})
}

// runOpts runs one simulation with opts (Dir and Trace filled in).
func runOpts(t *testing.T, opts Options) *Report {
	t.Helper()
	seed, bug := opts.Seed, opts.Bug
	cryptotest.SetGlobalRandom(t, seed)
	var trace bytes.Buffer
	opts.Dir, opts.Trace = t.TempDir(), &trace
	rep, err := Run(opts)
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	if !rep.Ok() && bug == "" {
		dir := saveArtefacts(t, rep, trace.Bytes())
		t.Errorf("seed %d found %d violation(s):\n  %s\nknobs: %s\nreplay: go test ./sim -run 'TestSim$' -seed=%d -v\nartefacts: %s",
			seed, len(rep.Violations), joinLines(rep.Violations, 5), rep.Knobs, seed, dir)
	}
	return rep
}

func joinLines(lines []string, max int) string {
	var b bytes.Buffer
	for i, l := range lines {
		if i == max {
			fmt.Fprintf(&b, "... and %d more", len(lines)-max)
			break
		}
		if i > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString(l)
	}
	return b.String()
}

func saveArtefacts(t *testing.T, rep *Report, trace []byte) string {
	dir := *flagOut
	if dir == "" {
		d, err := os.MkdirTemp("", "cairn-sim-")
		if err != nil {
			t.Logf("cannot save artefacts: %v", err)
			return ""
		}
		dir = d
	}
	dir = filepath.Join(dir, fmt.Sprintf("seed-%d", rep.Seed))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("cannot save artefacts: %v", err)
		return ""
	}
	_ = os.WriteFile(filepath.Join(dir, "trace.txt"), trace, 0o644)
	_ = linearizability.SaveHistory(filepath.Join(dir, "history.jsonl"), rep.History.History())
	if rep.lin != nil {
		_ = linearizability.WriteVisualization(filepath.Join(dir, "history.html"), rep.linModel, *rep.lin)
	}
	return dir
}

// TestSim is the swarm: -seeds seeds from -first, or the one -seed.
func TestSim(t *testing.T) {
	seeds := []uint64{}
	if *flagSeed != 0 {
		seeds = append(seeds, *flagSeed)
	} else {
		for i := 0; i < *flagSeeds; i++ {
			seeds = append(seeds, *flagFirst+uint64(i))
		}
	}
	start := time.Now()
	inconclusive, compacting, hashChecks, failing, maxSteps, quotaRuns, memberChanges, snapshots, lagSnapshots, cutsInside := 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rep := runSeed(t, seed, "")
			inconclusive += rep.Inconclusive
			maxSteps = max(maxSteps, rep.LinSteps)
			if !rep.Ok() {
				failing++
			}
			if rep.Faults["nospace-refused"] > 0 {
				quotaRuns++
			}
			memberChanges += rep.MemberChanges
			cutsInside += rep.Faults["crash-inside"]
			snapshots += rep.Snapshots
			if rep.LagSnapshot {
				lagSnapshots++
			}
			if rep.Compaction {
				compacting++
				hashChecks += rep.HashChecks
			}
			t.Logf("seed %d: %d nodes, %d events, ops ok=%d failed=%d unknown=%d, faults %v, trace %016x",
				seed, rep.Nodes, rep.Events, rep.Ops.OK, rep.Ops.Failed, rep.Ops.Unknown, rep.Faults, rep.TraceHash)
			if rep.Ops.OK == 0 {
				t.Errorf("seed %d: no client operation succeeded: the workload is not exercising the cluster", seed)
			}
		})
	}
	el := time.Since(start)
	// The summary goes to stdout as well, so a sweep prints it without -v
	// (make sim runs the package in local directory mode).
	summary := fmt.Sprintf("sim: %d runs in %v: %.2f runs/s; %d failing; linearizability: %d checks inconclusive (out of steps), at most %d steps a run; %d runs compacted, with %d compact hash checks decided; %d membership changes; %d snapshots sent, %d lagging followers caught up by one; %d crashes inside durable steps",
		len(seeds), el.Round(time.Millisecond), float64(len(seeds))/el.Seconds(), failing, inconclusive, maxSteps, compacting, hashChecks, memberChanges, snapshots, lagSnapshots, cutsInside)
	t.Log(summary)
	fmt.Println(summary)
	if len(seeds) >= 50 && memberChanges == 0 {
		t.Errorf("no membership change in %d runs: the membership workload is not exercised", len(seeds))
	}
	if len(seeds) >= 50 && lagSnapshots == 0 {
		t.Errorf("no lagging follower of %d runs needed a snapshot: the snapshot install is not exercised", len(seeds))
	}
	if len(seeds) >= 50 && cutsInside == 0 {
		t.Errorf("no crash of %d runs fell inside a durable step", len(seeds))
	}
	if len(seeds) >= 50 && quotaRuns == 0 {
		t.Errorf("no run of %d hit its quota: the quota knob is not exercised", len(seeds))
	}
	if compacting >= 4 && hashChecks == 0 {
		t.Errorf("%d runs compacted but no compact hash check ever decided: the check is not exercised", compacting)
	}
}

// TestSameSeedSameRun runs seeds twice and requires identical traces.
func TestSameSeedSameRun(t *testing.T) {
	for _, seed := range []uint64{7, 12} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			a := runSeed(t, seed, "")
			b := runSeed(t, seed, "")
			if a.TraceHash != b.TraceHash || a.Events != b.Events {
				t.Fatalf("seed %d is not deterministic: trace %016x (%d events) then %016x (%d events)", seed, a.TraceHash, a.Events, b.TraceHash, b.Events)
			}
			if a.Ops.OK < 10 {
				t.Fatalf("seed %d completed only %d operations: too little to compare", seed, a.Ops.OK)
			}
		})
	}
}

// TestInconclusiveIsNotAViolation: a check that runs out of steps is
// counted as inconclusive, apart from violations, and the same for the
// same seed however fast the machine.
func TestInconclusiveIsNotAViolation(t *testing.T) {
	var reps []*Report
	for i := 0; i < 2; i++ {
		reps = append(reps, runOpts(t, Options{Seed: 3, LinearizabilitySteps: 10}))
	}
	if reps[0].Inconclusive != 2 || !reps[0].Ok() {
		t.Fatalf("with 10 steps: %d checks inconclusive, violations %v; want both checks inconclusive and no violation", reps[0].Inconclusive, reps[0].Violations)
	}
	if reps[0].LinSteps != reps[1].LinSteps || reps[0].TraceHash != reps[1].TraceHash {
		t.Fatalf("the same seed took %d then %d steps", reps[0].LinSteps, reps[1].LinSteps)
	}
	full := runOpts(t, Options{Seed: 3})
	if full.Inconclusive != 0 || !full.Ok() {
		t.Fatalf("with the default budget: %d checks inconclusive, violations %v", full.Inconclusive, full.Violations)
	}
}
