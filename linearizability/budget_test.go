package linearizability

import (
	"fmt"
	"testing"

	"github.com/anishathalye/porcupine"
)

func TestCheckStepsVerdicts(t *testing.T) {
	good := []porcupine.Operation{
		o(0, 0, 1, Put("x", "1"), written()),
		o(1, 2, 3, Get("x"), found("1")),
		o(0, 4, 5, Put("y", "2"), written()),
	}
	bad := append(good[:3:3], o(1, 6, 7, Get("x"), found("2")))
	for _, tc := range []struct {
		name  string
		h     []porcupine.Operation
		steps int
		want  Verdict
	}{
		{"linearizable", good, 1000, Linearizable},
		{"refuted", bad, 1000, NotLinearizable},
		{"out of steps", good, 1, Inconclusive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := CheckSteps(RegisterModel(), tc.h, tc.steps)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.want {
				t.Fatalf("verdict %v, want %v (%+v)", res.Verdict, tc.want, res)
			}
			if (res.Failed != nil) != (tc.want == NotLinearizable) {
				t.Fatalf("Failed holds %d ops with verdict %v", len(res.Failed), res.Verdict)
			}
			if res.Partitions != 2 {
				t.Fatalf("%d partitions, want 2 (x and y)", res.Partitions)
			}
		})
	}
}

// A refuted partition is a violation even when another partition ran out of steps.
func TestCheckStepsRefutationBeatsInconclusive(t *testing.T) {
	h := hardHistory("a", 8)
	h = append(h, o(0, 1000, 1001, Put("b", "1"), written()), o(1, 1002, 1003, Get("b"), found("2")))
	res, err := CheckSteps(RegisterModel(), h, 20)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != NotLinearizable || res.Inconclusive != 1 {
		t.Fatalf("verdict %v with %d inconclusive partitions, want not linearizable with 1", res.Verdict, res.Inconclusive)
	}
}

// hardHistory is n concurrent puts on key followed by reads that force the search to try
// many orders.
func hardHistory(key string, n int) []porcupine.Operation {
	var h []porcupine.Operation
	for i := 0; i < n; i++ {
		h = append(h, o(i, 0, 100, Put(key, fmt.Sprint(i)), written()))
	}
	for i := 0; i < n; i++ {
		h = append(h, o(i, 101+int64(2*i), 102+int64(2*i), Get(key), found(fmt.Sprint(i))))
	}
	return h
}

// The verdict and the steps spent depend on the history and the budget only.
func TestCheckStepsIsDeterministic(t *testing.T) {
	h := hardHistory("a", 7)
	first, err := CheckSteps(KVModel(), h, 5000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		again, _ := CheckSteps(KVModel(), h, 5000)
		if again.Verdict != first.Verdict || again.Steps != first.Steps {
			t.Fatalf("run %d: %v after %d steps; first run %v after %d", i, again.Verdict, again.Steps, first.Verdict, first.Steps)
		}
	}
	if first.Steps == 0 {
		t.Fatal("no step counted")
	}
}

func TestCheckStepsRefusesNoBudget(t *testing.T) {
	if _, err := CheckSteps(RegisterModel(), nil, 0); err == nil {
		t.Fatal("a zero budget was accepted")
	}
}
