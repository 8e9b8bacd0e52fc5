package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/proc"
)

// checkOneLineError asserts cairn exited non-zero with exactly one line
// on stderr, equal to want.
func checkOneLineError(t *testing.T, what string, r ctlResult, want string) {
	t.Helper()
	if r.Code == 0 {
		t.Errorf("%s: exit status 0, want non-zero", what)
	}
	if r.Stderr != want+"\n" {
		t.Errorf("%s: stderr\n%q\nwant the one line\n%q", what, r.Stderr, want+"\n")
	}
}

func TestBadFlagsExitWithOneLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := runCairn(t, dir, "--no-such-flag")
	checkOneLineError(t, "unknown flag", r, "cairn: unknown flag --no-such-flag (see --help)")

	urls := freeURLs(t, 2)
	client, peer := urls[0], urls[1]
	base := []string{
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "a=" + peer, "--initial-cluster-state", "new",
	}
	r = runCairn(t, dir, append([]string{"--name", "b"}, base...)...)
	checkOneLineError(t, "name not in --initial-cluster", r,
		fmt.Sprintf("cairn: invalid value %q for --name: no member of that name in --initial-cluster (%q)", "b", "a="+peer))

	// An address in use: hold the client port.
	l, err := net.Listen("tcp", strings.TrimPrefix(client, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r = runCairn(t, dir, append([]string{"--name", "a"}, base...)...)
	checkOneLineError(t, "client address in use", r,
		fmt.Sprintf("cairn: --listen-client-urls: cannot listen on %s: bind: address already in use", client))

	// None of the failures above may leave files in the working directory.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) > 1 || (len(names) == 1 && names[0] != "data") {
		t.Errorf("working directory holds %q after failed starts, want at most the data dir", names)
	}
}

// TestDefaultLogOutputIsStderr: without --log-outputs, etcd logs to
// stderr ("default"); it must not create a file named "default".
func TestDefaultLogOutputIsStderr(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	m := c.Members[0]
	m.Stop(t)
	var args []string
	for _, a := range m.Args() {
		if a == "--log-outputs" || a == "stderr" {
			continue
		}
		args = append(args, a)
	}
	wd := t.TempDir()
	cmd := exec.Command(cairnBin(t), args...)
	cmd.Dir = wd
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := <-done; err != nil {
			t.Errorf("cairn with default log output: SIGTERM gave %v, want exit 0", err)
		}
		if !strings.Contains(stderr.String(), `"msg":"cairn serving"`) {
			t.Errorf("stderr of cairn with the default --log-outputs has no \"cairn serving\" line:\n%s", proc.Tail(stderr.String(), 10))
		}
		if _, err := os.Stat(filepath.Join(wd, "default")); err == nil {
			t.Errorf("cairn created the file %s: --log-outputs=default must mean stderr, as in etcd", filepath.Join(wd, "default"))
		}
	}()
	var err error
	for deadline := time.Now().Add(readyTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = proc.Health(ctx(t), m.ClientURL); err == nil {
			break
		}
	}
	if err != nil {
		t.Errorf("cairn with default log output never became healthy: %v", err)
	}
}

func TestSIGTERMExitsZero(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)
	if _, err := cli.Put(ctx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	c.Members[0].Stop(t)
	if log := c.Members[0].Log(); !strings.Contains(log, "cairn stopped") {
		t.Errorf("log does not end with \"cairn stopped\":\n%s", proc.Tail(log, 5))
	}
	// A clean stop keeps the data too.
	c.Members[0].Restart(t)
	c.Members[0].WaitReady(t)
	g, err := c.Client(t).Get(ctx(t), "k")
	checkGet(t, "after SIGTERM and restart", g, err, wantKVs(want("k", "v", 2, 2, 1)), 1, false, 2)
}

// TestRestartAfterSIGKILLKeepsAcknowledgedWrites writes keys, kills the
// member with SIGKILL right after the last acknowledgement, restarts it
// and reads every key back at the same revisions.
func TestRestartAfterSIGKILLKeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	m := c.Members[0]
	cli := c.Client(t)
	const n = 200
	for i := 0; i < n; i++ {
		r, err := cli.Put(ctx(t), fmt.Sprintf("key%04d", i), fmt.Sprintf("value%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if r.Header.Revision != int64(i+2) {
			t.Fatalf("put %d: revision %d, want %d", i, r.Header.Revision, i+2)
		}
	}
	if _, err := cli.Delete(ctx(t), "key0000"); err != nil { // revision n+2
		t.Fatal(err)
	}
	check := func(what string, rev int64) {
		t.Helper()
		m.Restart(t)
		m.WaitReady(t)
		cli := c.Client(t)
		for _, opt := range [][]clientv3.OpOption{nil, {clientv3.WithSerializable()}} {
			g, err := cli.Get(ctx(t), "key", append([]clientv3.OpOption{clientv3.WithPrefix()}, opt...)...)
			if err != nil {
				t.Fatalf("%s: get: %v", what, err)
			}
			if g.Header.Revision != rev || g.Count != n-1 || len(g.Kvs) != n-1 {
				have := map[string]bool{}
				for _, kv := range g.Kvs {
					have[string(kv.Key)] = true
				}
				var missing []string
				for i := 1; i < n; i++ {
					if k := fmt.Sprintf("key%04d", i); !have[k] {
						missing = append(missing, fmt.Sprintf("%s (rev %d)", k, i+2))
					}
				}
				t.Fatalf("%s: rev=%d count=%d kvs=%d, want rev=%d count=%d; acknowledged keys missing: %v; key0000 (deleted at rev %d) present: %v",
					what, g.Header.Revision, g.Count, len(g.Kvs), rev, n-1, missing, n+2, have["key0000"])
			}
			for j, kv := range g.Kvs {
				i := j + 1
				if got, w := kvString(kv), want(fmt.Sprintf("key%04d", i), fmt.Sprintf("value%d", i), int64(i+2), int64(i+2), 1); got != w {
					t.Fatalf("%s: kv %d = %s, want %s", what, j, got, w)
				}
			}
		}
		// History survives too.
		g, err := cli.Get(ctx(t), "key0000", clientv3.WithRev(2))
		checkGet(t, what+": deleted key at rev 2", g, err, wantKVs(want("key0000", "value0", 2, 2, 1)), 1, false, rev)
	}
	m.Kill(t)
	check("after first SIGKILL", n+2)

	// Again, with writes acknowledged right before the kill.
	cli = c.Client(t)
	for i := 0; i < 20; i++ {
		r, err := cli.Put(ctx(t), fmt.Sprintf("late%02d", i), "x")
		if err != nil || r.Header.Revision != int64(n+3+i) {
			t.Fatalf("late put %d: %v %v, want rev %d", i, r, err, n+3+i)
		}
	}
	m.Kill(t)
	check("after second SIGKILL", n+22)
	g, err := c.Client(t).Get(ctx(t), "late", clientv3.WithPrefix(), clientv3.WithCountOnly())
	checkGet(t, "late keys after second SIGKILL", g, err, wantKVs(), 20, false, n+22)
}

// TestDataDirOfAnotherClusterIsRefused: restarting a member's data dir with
// another --initial-cluster-token (so another cluster ID) must fail with one
// clear line rather than join a cluster its data does not belong to.
func TestDataDirOfAnotherClusterIsRefused(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	m := c.Members[0]
	m.Stop(t)
	args := m.Args()
	for i := range args {
		if args[i] == "--initial-cluster-token" {
			args[i+1] = "another-cluster"
		}
	}
	r := runCairn(t, t.TempDir(), args...)
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	last := lines[len(lines)-1]
	if r.Code == 0 || !strings.HasPrefix(last, "cairn: ") || !strings.Contains(last, "belongs to") || !strings.Contains(last, m.DataDir) {
		t.Fatalf("starting a data dir with another cluster's token: exit %d, last stderr line %q", r.Code, last)
	}
}

// TestSeveralClientURLs: etcd serves every --listen-client-urls; so must
// Cairn, and SIGTERM must still exit cleanly.
func TestSeveralClientURLs(t *testing.T) {
	t.Parallel()
	urls := freeURLs(t, 3)
	second := urls[1]
	both := urls[0] + "," + second
	c := newCluster(t, "--listen-client-urls", both, "--advertise-client-urls", both)
	m := c.newMember(t, "m0", t.TempDir(), urls[0], urls[2])
	m.InitialCluster = proc.InitialCluster(m.Peer())
	c.Members = []*Member{m}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	m.WaitReady(t)
	for _, u := range []string{m.ClientURL, second} {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{u}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx(t), "k", u); err != nil {
			t.Fatalf("put through %s: %v", u, err)
		}
		r, err := cli.Get(ctx(t), "k")
		cli.Close()
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != u {
			t.Fatalf("get through %s: %v %v", u, r, err)
		}
	}
	m.Stop(t)
}
