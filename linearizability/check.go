package linearizability

import (
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"
)

// Result is the verdict of Check.
type Result struct {
	// Outcome is porcupine.Ok (linearizable), porcupine.Illegal (not linearizable) or
	// porcupine.Unknown (the timeout ran out before a verdict; no violation was found).
	Outcome porcupine.CheckResult
	// Info holds the partial linearizations WriteVisualization draws.
	Info porcupine.LinearizationInfo
}

// Ok reports whether the history was proven linearizable.
func (r Result) Ok() bool { return r.Outcome == porcupine.Ok }

// Check validates history for m (see Model.Validate) and checks whether it is linearizable,
// giving up after timeout (0: never). A history that is not linearizable is not an error:
// it is Result.Outcome == porcupine.Illegal.
func Check(m Model, history []porcupine.Operation, timeout time.Duration) (Result, error) {
	if err := m.Validate(history); err != nil {
		return Result{}, err
	}
	outcome, info := porcupine.CheckOperationsVerbose(m.Porcupine, history, timeout)
	return Result{Outcome: outcome, Info: info}, nil
}

// WriteVisualization writes porcupine's interactive HTML view of the checked history to path:
// one row per client, the longest linearizable prefixes, and the model state after each step.
// res must come from Check with the same model.
func WriteVisualization(path string, m Model, res Result) error {
	if err := porcupine.VisualizePath(m.Porcupine, res.Info, path); err != nil {
		return fmt.Errorf("linearizability: write visualization %s: %w", path, err)
	}
	return nil
}
