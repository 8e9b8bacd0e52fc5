package node

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/internal/srcscan"
)

// notApplyOutcomes are the exported errors apply never returns as a
// request's result, with the reason. With applyOutcomes they classify every
// exported error of mvcc, lease and node.
var notApplyOutcomes = map[string]string{
	"mvcc.ErrClosed":             "the store closed under the member: it is stopping",
	"mvcc.ErrLegacyFormat":       "returned by Open, before anything is applied",
	"mvcc.ErrWatcherDuplicateID": "watch streams only; nothing in the log watches",
	"mvcc.ErrEmptyWatcherRange":  "watch streams only",
	"mvcc.ErrWatcherNotExist":    "watch streams only",
	"mvcc.ErrWatchStreamClosed":  "watch streams only",
	"lease.ErrNotPrimary":        "renewals run on the leader's lessor outside the log",
	"node.ErrStopped":            "returned to proposers by a stopped core, never by apply",
	"node.ErrRemoved":            "the member's own fate, not a request's",
	"node.ErrSenderRemoved":      "Step's refusal of a peer's message",
	"node.ErrRequestTooLarge":    "refused at proposal, before the log",
	"node.ErrProposalDropped":    "raft's refusal at proposal, before the log",
	"auth.ErrInvalidAuthToken":   "tokens are read by the shell, before the log",
}

func TestEveryExportedErrorIsClassified(t *testing.T) {
	rows, err := srcscan.TableRows("errors.go", "applyOutcomes")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(applyOutcomes) {
		t.Fatalf("read %d rows of applyOutcomes from its source, it has %d", len(rows), len(applyOutcomes))
	}
	outcomes := map[string]bool{}
	for _, r := range rows {
		if !strings.Contains(r, ".") {
			r = "node." + r
		}
		outcomes[r] = true
	}
	for pkg, dir := range map[string]string{"mvcc": "../mvcc", "lease": "../lease", "node": ".", "auth": "../auth"} {
		names, err := srcscan.ExportedErrors(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) == 0 {
			t.Fatalf("no exported errors found in %s", dir)
		}
		for _, n := range names {
			full := pkg + "." + n
			_, isNot := notApplyOutcomes[full]
			switch {
			case outcomes[full] && isNot:
				t.Errorf("%s is both an apply outcome and not one", full)
			case !outcomes[full] && !isNot:
				t.Errorf("%s is not classified: add it to applyOutcomes (node/errors.go) if a request can cause it at apply, else to notApplyOutcomes with the reason", full)
			}
		}
	}
}

func TestIsApplyOutcomeSeesWrappedErrors(t *testing.T) {
	for _, e := range applyOutcomes {
		if !IsApplyOutcome(fmt.Errorf("entry 7: %w", e)) {
			t.Errorf("IsApplyOutcome(wrapped %v) = false", e)
		}
	}
	if IsApplyOutcome(fmt.Errorf("mvcc: writing revision: %w", fmt.Errorf("disk full"))) {
		t.Error("a storage failure must stop the member, not become a client's result")
	}
}
