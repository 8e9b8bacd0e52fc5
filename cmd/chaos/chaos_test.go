package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/internal/faultfs"
	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/linearizability"
)

// runShort builds cairn (tagged for planted bugs or not) and runs the
// runner in-process with args; it returns the exit code, stdout and the
// run folder.
func runShort(t *testing.T, tagged bool, args ...string) (int, string, string) {
	t.Helper()
	// Under -race the members are race-checked too (see noDataRaces).
	bin, err := buildCairnWith(t.TempDir(), tagged, raceEnabled)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"-cairn", bin, "-out", out}, args...), &stdout, &stderr)
	t.Logf("chaos %v: exit %d\n%s\nstderr:\n%s", args, code, stdout.String(), stderr.String())
	return code, stdout.String(), out
}

// shortRunChecks are the summary lines a short run of kills and partitions
// must print: both kinds of fault, and every check passed.
var shortRunChecks = []string{
	`(?m)^faults\s+\d+: .*kill \d+`,
	`(?m)^faults\s+\d+: .*partition/`,
	`(?m)^linearizable\s+PASS`,
	`(?m)^converged\s+PASS`,
	`(?m)^watch\s+PASS`,
	`(?m)^operations\s+ok [1-9]\d{2,}`,
}

// wantSummary fails t unless out matches each of the patterns.
func wantSummary(t *testing.T, out string, patterns ...string) {
	t.Helper()
	for _, want := range patterns {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("summary does not match %s", want)
		}
	}
}

// TestShortRunPasses is the CI chaos run: 3 members, 30 s of kills and
// partitions. Every check must pass, and the run folder must hold what an
// investigation needs.
func TestShortRunPasses(t *testing.T) {
	code, out, dir := runShort(t, false, "-nodes", "3", "-duration", "30s", "-seed", "8", "-faults", "kill,partition")
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; last != "8 passed, 0 failed" {
		t.Fatalf("last line %q, want \"8 passed, 0 failed\"", last)
	}
	wantSummary(t, out, shortRunChecks...)
	for _, f := range []string{"m0.log", "m1.log", "m2.log", "nemesis.log", "schedule.txt", "summary.txt"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("run folder: %s missing or empty (%v)", f, err)
		}
	}
	noDataRaces(t, dir, "m0.log", "m1.log", "m2.log")
	h, err := linearizability.LoadHistory(filepath.Join(dir, "history.jsonl"))
	if err != nil || len(h) < 100 {
		t.Fatalf("history.jsonl: %d operations, %v", len(h), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "history.html")); !os.IsNotExist(err) {
		t.Errorf("history.html written for a linearizable run (%v)", err)
	}
}

func TestBadFlagsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"-faults", "kill,flood"},
		{"-bug", "no-such-bug"},
		{"-nodes", "0"},
		{"extra"},
	} {
		var so, se bytes.Buffer
		if code := run(args, &so, &se); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, se.String())
		}
	}
}

// noDataRaces fails the test if a member built with the race detector
// reported a race in its log.
func noDataRaces(t *testing.T, dir string, logs ...string) {
	t.Helper()
	for _, f := range logs {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if race := proc.DataRace(string(b)); race != "" {
			t.Errorf("%s: the race detector found a data race in the member:\n%s", f, race)
		}
	}
}

// TestShortRunWithAuth: the same checks pass with auth on and every client
// logged in as root, through kills (which lose the members' tokens) and
// partitions.
func TestShortRunWithAuth(t *testing.T) {
	code, out, dir := runShort(t, false, "-nodes", "3", "-duration", "20s", "-seed", "11", "-faults", "kill,partition", "-auth")
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	wantSummary(t, out,
		`(?m)auth enabled: clients work as root`,
		`(?m)^faults\s+\d+: .*kill \d+`,
		`(?m)^linearizable\s+PASS`,
		`(?m)^converged\s+PASS`,
		`(?m)^operations\s+ok [1-9]\d{2,}`,
	)
	noDataRaces(t, dir, "m0.log", "m1.log", "m2.log")
}

// TestShortRunWithTLSAndAuth: the same checks pass with mutual TLS on the
// client and peer ports and auth on, through kills and partitions. The
// peer proxies terminate the senders' TLS and dial the members again
// with the sender's certificate, so partitions still cut the right links.
func TestShortRunWithTLSAndAuth(t *testing.T) {
	code, out, dir := runShort(t, false, "-nodes", "3", "-duration", "20s", "-seed", "13", "-faults", "kill,partition", "-auth", "-tls")
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	wantSummary(t, out, append([]string{
		`(?m)mutual TLS on client and peer ports`,
		`(?m)auth enabled: clients work as root`,
	}, shortRunChecks...)...)
	for _, f := range []string{"m0.log", "m1.log", "m2.log"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"starting with client TLS", "starting with peer TLS"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s: no %q: the member did not run with TLS", f, want)
			}
		}
	}
	noDataRaces(t, dir, "m0.log", "m1.log", "m2.log")
}

// needFUSE skips a test of the disk faults where FUSE file systems cannot
// be mounted (no /dev/fuse, not root): they need a real mount.
func needFUSE(t *testing.T) {
	t.Helper()
	if err := faultfs.Available(); err != nil {
		t.Fatalf("disk faults need FUSE (/dev/fuse, and root or fusermount: apt-get install fuse3), which CI machines have: %v", err)
	}
}

// TestDiskAndMembershipFaultsShortRun is the CI run of the faults on the
// data dirs (fsync stalls, EIO, ENOSPC) and of membership changes: seconds
// long, every check must pass. How many faults fit depends on how long the
// membership changes take on a loaded machine; the first ones always run.
// Power cuts have their own run (TestPowerCutsShortRun): after the
// membership change they did not always fit.
func TestDiskAndMembershipFaultsShortRun(t *testing.T) {
	needFUSE(t)
	code, out, _ := runShort(t, false, "-nodes", "3", "-duration", "20s", "-seed", "35", "-faults", "disk-stall,disk-eio,disk-full,members")
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	wantSummary(t, out,
		`(?m)^faults\s+\d+: disk-eio \d+, disk-full \d+, .*members/learner 1`,
		`(?m)^disk\s+PASS  .*failing disks: [1-9]\d* exits on EIO, [1-9]\d* on ENOSPC`,
		`(?m)^members\s+PASS  0 replaced, 1 re-added as learners`,
		`(?m)^linearizable\s+PASS`,
		`(?m)^converged\s+PASS`,
		`(?m)^\d+ passed, 0 failed$`,
	)
}

// TestPowerCutsShortRun is the CI run of power cuts on the data dirs:
// members lose what they did not fsync, restart on what their disk kept,
// and every check must pass.
func TestPowerCutsShortRun(t *testing.T) {
	needFUSE(t)
	code, out, _ := runShort(t, false, "-nodes", "3", "-duration", "15s", "-seed", "35", "-faults", "power")
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	wantSummary(t, out,
		`(?m)^faults\s+[1-9]\d*: power/`,
		`(?m)^disk\s+PASS  [1-9]\d* member power cuts dropped`,
		`(?m)^linearizable\s+PASS`,
		`(?m)^converged\s+PASS`,
		`(?m)^\d+ passed, 0 failed$`,
	)
}
