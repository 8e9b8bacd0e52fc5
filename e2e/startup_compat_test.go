package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/proc"
)

// noWriteCommand returns a command running the binary under test with
// args such that directory permissions apply to it: as root, without the
// capabilities that bypass them (setpriv, from util-linux); it fails the
// test when that cannot be arranged.
func noWriteCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		return exec.Command(cairnBin(t), args...)
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatal("running as root, this test needs setpriv (Debian's util-linux) to make a directory unwritable to the member")
	}
	return exec.Command(setpriv, append([]string{"--bounding-set=-dac_override,-dac_read_search,-fowner", cairnBin(t)}, args...)...)
}

// A member checks at start that it can write its data dir, member/,
// member/snap/ and its WAL dir, and stops at once with etcd's error when
// it cannot, instead of failing at the first WAL segment cut.
func TestStartupCompatUnwritableDirs(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	urls := freeURLs(t, 2)
	args := []string{"--data-dir", dataDir,
		"--listen-client-urls", urls[0], "--advertise-client-urls", urls[0],
		"--listen-peer-urls", urls[1], "--initial-advertise-peer-urls", urls[1], "--initial-cluster", "default=" + urls[1]}

	// A fresh data dir the member may not write to.
	if err := os.Mkdir(dataDir, 0o500); err != nil {
		t.Fatal(err)
	}
	out, err := runToExit(t, noWriteCommand(t, args...))
	want := "cannot access data directory: open " + filepath.Join(dataDir, ".touch") + ": permission denied"
	if err == nil || !strings.Contains(out, want) {
		t.Fatalf("a member with an unwritable data dir: %v\n%s\nwant a failure saying %q", err, proc.Tail(out, 10), want)
	}

	// A member that has run once: then each directory in turn.
	if err := os.Chmod(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	m := &Member{&proc.Member{Flags: proc.Flags{Name: "default", DataDir: dataDir, ClientURL: urls[0], PeerURL: urls[1],
		InitialCluster: "default=" + urls[1]}, Bin: cairnBin(t), LogPath: filepath.Join(t.TempDir(), "member.log")}}
	c.Members = []*Member{m}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	m.WaitReady(t)
	stopCompat(t, m)
	for _, tc := range []struct{ dir, want string }{
		{"member", "cannot access member directory: open DIR/.touch: permission denied"},
		{"member/snap", "failed to create snapshot directory"},
		{"member/wal", "cannot write to WAL directory: open DIR/.touch: permission denied"},
	} {
		dir := filepath.Join(dataDir, tc.dir)
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		out, err := runToExit(t, noWriteCommand(t, args...))
		want := strings.ReplaceAll(tc.want, "DIR", dir)
		if err == nil || !strings.Contains(out, want) || !strings.Contains(out, filepath.Join(dir, ".touch")) {
			t.Errorf("a member with an unwritable %s: %v\n%s\nwant a failure saying %q", tc.dir, err, proc.Tail(out, 10), want)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
}

// stopCompat stops m with SIGTERM and fails the test unless it shut down
// cleanly: with exit status 0 (cairn), or killed by the SIGTERM it
// re-raises once it has shut down (etcd).
func stopCompat(t *testing.T, m *Member) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	st, err := m.Member.Stop(c)
	if err != nil {
		t.Fatal(err)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); st.Success() || (ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM) {
		return
	}
	t.Fatalf("member %s: SIGTERM gave %v, want a clean stop\nlog:\n%s", m.Name, st, m.LogTail(40))
}

// jsonLogLines returns the JSON lines of a member's log (the harness's
// "==== starting" lines and the like are not).
func jsonLogLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "{") {
			out = append(out, l)
		}
	}
	return out
}

// levelCounts counts a log's lines by level.
func levelCounts(t *testing.T, log string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, l := range jsonLogLines(log) {
		var e struct{ Level string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, l)
		}
		n[e.Level]++
	}
	return n
}

// --log-level behaves as etcd's: debug adds debug lines (a request's
// stats among them), warn and error drop what is below them.
func TestLogsCompatLevels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		level   string
		want    []string // levels that must appear
		notWant []string // levels that must not
	}{
		{"debug", []string{"debug", "info"}, nil},
		{"info", []string{"info"}, []string{"debug"}},
		{"warn", nil, []string{"debug", "info"}},
		{"error", nil, []string{"debug", "info", "warn"}},
	} {
		c := NewClusterArgs(t, 1, "--log-level", tc.level)
		m := c.Members[0]
		if _, err := c.Client(t).Put(ctx(t), "k", "v"); err != nil {
			t.Fatal(err)
		}
		stopCompat(t, m)
		counts := levelCounts(t, m.Log())
		for _, l := range tc.want {
			if counts[l] == 0 {
				t.Errorf("--log-level %s: no %s lines (levels seen: %v)", tc.level, l, counts)
			}
		}
		for _, l := range tc.notWant {
			if counts[l] != 0 {
				t.Errorf("--log-level %s: %d %s lines:\n%s", tc.level, counts[l], l, linesAt(m.Log(), l, 5))
			}
		}
		if tc.level == "debug" && !strings.Contains(m.Log(), `"level":"debug"`) {
			t.Errorf("--log-level debug: no debug line")
		}
	}
}

// linesAt returns up to n log lines at level.
func linesAt(log, level string, n int) string {
	var out []string
	for _, l := range jsonLogLines(log) {
		if strings.Contains(l, `"level":"`+level+`"`) && len(out) < n {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A member does not propose before there is a leader to take the
// proposal: starting a cluster logs no "dropping proposal".
func TestLogsCompatNoDroppedProposalsAtStart(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 3} {
		c := NewCluster(t, n)
		if _, err := c.Client(t).Put(ctx(t), "k", "v"); err != nil {
			t.Fatal(err)
		}
		for _, m := range c.Members {
			if got := strings.Count(m.Log(), "dropping proposal"); got != 0 {
				t.Errorf("%d-member cluster: member %s logged %d dropped proposals:\n%s", n, m.Name, got, proc.Tail(m.Log(), 30))
			}
		}
	}
}

// repeatedKeys returns the keys that occur more than once in the JSON
// object line.
func repeatedKeys(line string) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(line)))
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	seen := map[string]bool{}
	var dup []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := tok.(string)
		if seen[k] {
			dup = append(dup, k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return dup, nil
}

// No log line names a field twice: a cluster that elects, serves, raises
// and clears an alarm, compacts, defragments and loses and regains a
// member logs every field once per line.
func TestLogsHaveNoRepeatedFields(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 3)
	cli := c.Client(t)
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	lease, err := cli.Grant(ctx(t), 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx(t), "leased", "v", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	r, err := cli.Get(ctx(t), "k0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx(t), r.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Defragment(ctx(t), c.Members[0].ClientURL); err != nil {
		t.Fatal(err)
	}
	st, err := cli.Status(ctx(t), c.Members[1].ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx(t),
		&pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: st.Header.MemberId, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	c.Etcdctl(t, "alarm", "disarm")
	m := c.Members[2]
	stopCompat(t, m)
	m.Restart(t)
	m.WaitReady(t)
	for _, mem := range c.Members {
		for _, l := range jsonLogLines(mem.Log()) {
			dup, err := repeatedKeys(l)
			if err != nil {
				t.Fatalf("member %s: log line is not a JSON object: %v\n%s", mem.Name, err, l)
			}
			if len(dup) > 0 {
				t.Errorf("member %s: the log line names %q more than once:\n%s", mem.Name, dup, l)
			}
		}
	}
}
