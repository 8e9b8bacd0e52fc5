package linearizability

import (
	"context"
	"fmt"

	"github.com/anishathalye/porcupine"
)

// Verdict is the outcome of CheckSteps: the same for the same history and budget on every
// machine, however fast.
type Verdict int

const (
	// Linearizable: every partition of the history has a linearization.
	Linearizable Verdict = iota
	// NotLinearizable: some partition was searched exhaustively and has none.
	NotLinearizable
	// Inconclusive: no partition is refuted, but the search of at least one ran out of
	// steps before it found a linearization.
	Inconclusive
)

func (v Verdict) String() string {
	switch v {
	case Linearizable:
		return "linearizable"
	case NotLinearizable:
		return "not linearizable"
	case Inconclusive:
		return "inconclusive"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// StepsResult is what CheckSteps found.
type StepsResult struct {
	Verdict Verdict
	// Partitions is how many independent partitions the model split the history into;
	// Inconclusive how many of them ran out of steps.
	Partitions, Inconclusive int
	// Steps counts the model transitions tried, over every partition.
	Steps int
	// Failed is the first partition found not linearizable (nil otherwise): check it again
	// with Check to draw it with WriteVisualization.
	Failed []porcupine.Operation
}

// CheckSteps validates history for m and checks it partition by partition (as m partitions
// it), each partition with porcupine's search bounded by maxSteps model transitions rather
// than by wall-clock time, so the verdict depends on the history alone. A partition whose
// search runs out of steps is inconclusive, never a violation; every partition is checked, so
// a refuted partition makes the verdict NotLinearizable even if another was inconclusive.
func CheckSteps(m Model, history []porcupine.Operation, maxSteps int) (StepsResult, error) {
	if err := m.Validate(history); err != nil {
		return StepsResult{}, err
	}
	return checkModelSteps(m.Porcupine, history, maxSteps)
}

// checkModelSteps is CheckSteps' search for any porcupine model (history validated).
func checkModelSteps(pm porcupine.Model, history []porcupine.Operation, maxSteps int) (StepsResult, error) {
	if maxSteps <= 0 {
		return StepsResult{}, fmt.Errorf("linearizability: a step-bounded check needs a positive step budget, not %d", maxSteps)
	}
	parts := [][]porcupine.Operation{history}
	if pm.Partition != nil {
		parts = pm.Partition(history)
	}
	res := StepsResult{Partitions: len(parts)}
	inner := pm.Step
	if inner == nil {
		sc := pm.StepContext
		inner = func(s, in, out interface{}) (bool, interface{}) { return sc(context.Background(), s, in, out) }
	}
	for _, part := range parts {
		steps, exhausted := 0, false
		bounded := pm
		bounded.Partition, bounded.PartitionEvent, bounded.StepContext = nil, nil, nil
		bounded.Step = func(s, in, out interface{}) (bool, interface{}) {
			if steps >= maxSteps {
				exhausted = true
				return false, nil
			}
			steps++
			return inner(s, in, out)
		}
		ok := porcupine.CheckOperations(bounded, part)
		res.Steps += steps
		switch {
		case ok:
		case exhausted:
			res.Inconclusive++
		case res.Failed == nil:
			res.Failed = part
		}
	}
	switch {
	case res.Failed != nil:
		res.Verdict = NotLinearizable
	case res.Inconclusive > 0:
		res.Verdict = Inconclusive
	}
	return res, nil
}
