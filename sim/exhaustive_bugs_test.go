//go:build cairnbugs

package sim

import (
	"strings"
	"testing"
	"testing/cryptotest"

	"github.com/cairnkv/cairn/node"
)

// TestNewChecksCatchTheirBugsExhaustive proves the exhaustive crash points
// (exhaustive_test.go) can fail: with a planted durability bug, cutting
// the power at every operation of the step the bug breaks must find it,
// through the check named.
func TestNewChecksCatchTheirBugsExhaustive(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	steps := map[string]xStep{}
	for _, st := range xSteps() {
		steps[st.name] = st
	}
	for _, tc := range []struct {
		bug, step, check string
		plant            func(*xConfig)
	}{
		// Syncs of a WAL segment after its first return without
		// persisting: the follower acknowledged entries its crash loses.
		{BugAckBeforeFsync, "wal-save/follower", "acknowledged log lost", func(c *xConfig) { c.lyingWAL = true }},
		{BugAckBeforeFsync, "conf-change/add-learner/leader", "acknowledged log lost", func(c *xConfig) { c.lyingWAL = true }},
		// The staged snapshot database is not synced before the WAL's
		// marker: a cut between the marker and the swap loses it, and the
		// restart that must finish the install cannot.
		{BugSkipStagedSync, "snapshot-install", "failed to restart", func(c *xConfig) { c.bugs = node.Bugs{SkipStagedSync: true} }},
		// The WAL directory is not synced after a new segment is cut: a
		// cut after the entries saved into it were acknowledged loses the
		// segment's name, and them with it.
		{BugSkipWALDirSync, "wal-save/new-segment/follower", "acknowledged log lost", func(c *xConfig) { c.bugs = node.Bugs{SkipWALDirSync: true} }},
		{BugSkipWALDirSync, "wal-save/new-segment/leader", "acknowledged log lost", func(c *xConfig) { c.bugs = node.Bugs{SkipWALDirSync: true} }},
	} {
		t.Run(tc.bug+"/"+tc.step, func(t *testing.T) {
			st := steps[tc.step]
			tc.plant(&st.cfg)
			_, failures := exhaust(t, st, true)
			if len(failures) == 0 {
				t.Fatalf("bug %s went unnoticed at every crash point of %s", tc.bug, tc.step)
			}
			if !strings.Contains(failures[0], tc.check) {
				t.Fatalf("bug %s was caught by another check than %q: %s", tc.bug, tc.check, failures[0])
			}
			t.Logf("bug %s caught: %s", tc.bug, failures[0])
		})
	}
}
