package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/internal/testutil"
)

// Environment variables through which TestMain hands the built binaries to
// the tests (the package keeps no mutable state). Setting them before
// `go test` reuses prebuilt binaries instead of building.
const (
	envCairnBin   = "CAIRN_E2E_CAIRN"
	envEtcdctlBin = "CAIRN_E2E_ETCDCTL"
	envBenchBin   = "CAIRN_E2E_BENCH"
	envCtlBin     = "CAIRN_E2E_CAIRNCTL"
)

// TestMain builds cmd/cairn, cmd/bench, cmd/cairnctl and etcdctl once into a temporary directory.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cairn-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, b := range []struct{ env, out, pkg string }{
		{envCairnBin, filepath.Join(dir, "cairn"), proc.CairnPackage},
		{envEtcdctlBin, filepath.Join(dir, "etcdctl"), "go.etcd.io/etcd/etcdctl/v3"},
		{envBenchBin, filepath.Join(dir, "bench"), "github.com/cairnkv/cairn/cmd/bench"},
		{envCtlBin, filepath.Join(dir, "cairnctl"), "github.com/cairnkv/cairn/cmd/cairnctl"},
	} {
		if os.Getenv(b.env) != "" {
			continue
		}
		// Under -race the daemon's own concurrency is checked too.
		race := raceEnabled && b.env == envCairnBin
		if err := proc.Build(b.out, b.pkg, proc.BuildOptions{Race: race}); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			return 1
		}
		os.Setenv(b.env, b.out)
	}
	return m.Run()
}

func cairnBin(t testing.TB) string {
	t.Helper()
	p := os.Getenv(envCairnBin)
	if p == "" {
		t.Fatalf("%s is not set: TestMain did not build cairn", envCairnBin)
	}
	return p
}

func benchBin(t testing.TB) string {
	t.Helper()
	p := os.Getenv(envBenchBin)
	if p == "" {
		t.Fatalf("%s is not set: TestMain did not build bench", envBenchBin)
	}
	return p
}

func etcdctlBin(t testing.TB) string {
	t.Helper()
	p := os.Getenv(envEtcdctlBin)
	if p == "" {
		t.Fatalf("%s is not set: TestMain did not build etcdctl", envEtcdctlBin)
	}
	return p
}

// Timeouts of the harness. Generous: the machine is shared and slow.
const (
	readyTimeout   = 30 * time.Second
	stopTimeout    = 20 * time.Second
	requestTimeout = 10 * time.Second
)

// Member is one cairn member of a Cluster: its flags, data dir, log file
// and process (see proc.Member).
type Member struct {
	*proc.Member
}

// Cluster is a set of cairn members started on loopback for one test.
type Cluster struct {
	t       testing.TB
	token   string
	Members []*Member
	extra   []string // flags appended for every member

	mu      sync.Mutex
	clients map[*Member]*clientv3.Client // see MemberClient
}

// freeURLs returns n loopback URLs on ports that were free a moment ago
// (another process may take one before we do: callers retry).
func freeURLs(t testing.TB, n int) []string {
	t.Helper()
	urls, err := proc.FreeURLs(n)
	if err != nil {
		t.Fatal(err)
	}
	return urls
}

// NewCluster starts an n-member cluster and waits until every member
// reports healthy. Members are killed, and on failure their logs dumped,
// when the test ends.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return NewClusterArgs(t, n)
}

// NewClusterArgs is NewCluster with extra flags for every member.
func NewClusterArgs(t testing.TB, n int, extra ...string) *Cluster {
	t.Helper()
	base := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		c := newCluster(t, extra...)
		urls := freeURLs(t, 2*n)
		var peers []proc.Peer
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("m%d", i)
			dir := filepath.Join(base, fmt.Sprintf("try%d", attempt), name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			m := c.newMember(t, name, dir, urls[2*i], urls[2*i+1])
			c.Members = append(c.Members, m)
			peers = append(peers, m.Peer())
		}
		err := c.startAll(t, peers)
		if err == nil {
			return c
		}
		lastErr = err
		t.Logf("port collision, retrying with other ports: %v", err)
		c.killAll()
	}
	t.Fatalf("cluster did not start after retries: %v", lastErr)
	return nil
}

// startAll starts every member of c, with peers as the initial cluster,
// and waits until all are ready. It returns nil, or the error of a port
// taken meanwhile (ErrAddrInUse: the caller retries with other ports); it
// fails t on any other error.
func (c *Cluster) startAll(t testing.TB, peers []proc.Peer) error {
	t.Helper()
	for _, m := range c.Members {
		m.InitialCluster = proc.InitialCluster(peers...)
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
	}
	err := c.waitReadyAll()
	if err != nil && !errors.Is(err, proc.ErrAddrInUse) {
		t.Fatalf("cluster did not become ready: %v", err)
	}
	return err
}

// startListening starts m and waits until it listens. It returns false
// when a port was taken meanwhile and attempt < 3 (the caller retries
// with other ports); it fails t on any other error.
func startListening(t testing.TB, m *Member, attempt int) bool {
	t.Helper()
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	err := m.WaitListening(wctx)
	cancel()
	if errors.Is(err, proc.ErrAddrInUse) && attempt < 3 {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// newCluster returns an empty cluster with its own token, whose members
// get the extra flags; it is cleaned up when the test ends.
func newCluster(t testing.TB, extra ...string) *Cluster {
	if raceEnabled {
		// A bcrypt check at etcd's default cost takes over a second in a
		// race build (64 ms without), and every login makes one: at the
		// lowest cost etcd allows, tests with users do not time out on a
		// busy machine. The default cost is tested in server's unit tests.
		extra = append([]string{"--bcrypt-cost", "4"}, extra...)
	}
	c := &Cluster{t: t, token: fmt.Sprintf("cairn-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()), extra: extra}
	t.Cleanup(c.cleanup)
	return c
}

// newMember lays out a member of c named name, its data and log under
// dir; its --initial-cluster is left to the caller.
func (c *Cluster) newMember(t testing.TB, name, dir, clientURL, peerURL string) *Member {
	return &Member{&proc.Member{
		Flags: proc.Flags{
			Name: name, DataDir: filepath.Join(dir, "data"),
			ClientURL: clientURL, PeerURL: peerURL,
			Token: c.token, Extra: c.extra,
		},
		Bin:     cairnBin(t),
		LogPath: filepath.Join(dir, "cairn.log"),
	}}
}

// join starts m, already added to the cluster, with --initial-cluster
// initialCluster and --initial-cluster-state existing, and waits until it
// is healthy; it is killed when the test ends.
func (m *Member) join(t testing.TB, initialCluster string) {
	t.Helper()
	m.InitialCluster, m.Existing = initialCluster, true
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Member.Kill() })
	m.WaitReady(t)
}

// Kill ends m with SIGKILL, as a crash would.
func (m *Member) Kill(t testing.TB) {
	t.Helper()
	if err := m.Member.Kill(); err != nil {
		t.Fatal(err)
	}
}

// Stop ends m with SIGTERM and fails the test unless it exits with status 0.
func (m *Member) Stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	st, err := m.Member.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Success() {
		t.Fatalf("member %s: SIGTERM gave %v, want exit status 0\nlog:\n%s", m.Name, st, m.LogTail(40))
	}
}

// Restart starts m again on the same data dir and ports and waits until
// it listens, but not until it is ready (see WaitReady).
func (m *Member) Restart(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := m.Member.Restart(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitReady waits until m reports healthy, m exits or readyTimeout passes.
func (m *Member) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	return m.WaitHealthy(ctx)
}

// WaitReady waits until m reports healthy.
func (m *Member) WaitReady(t testing.TB) {
	t.Helper()
	if err := m.waitReady(); err != nil {
		t.Fatal(err)
	}
}

func (c *Cluster) waitReadyAll() error {
	errc := make(chan error, len(c.Members))
	for _, m := range c.Members {
		go func() { errc <- m.waitReady() }()
	}
	var errs []error
	for range c.Members {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killAll kills every running member.
func (c *Cluster) killAll() {
	for _, m := range c.Members {
		_ = m.Member.Kill()
	}
}

func (c *Cluster) cleanup() {
	c.mu.Lock()
	for _, cli := range c.clients {
		cli.Close()
	}
	c.clients = nil
	c.mu.Unlock()
	c.killAll()
	for _, m := range c.Members {
		if race := m.DataRace(); race != "" {
			c.t.Errorf("member %s: the race detector found a data race:\n%s", m.Name, race)
		}
	}
	if c.t.Failed() {
		for _, m := range c.Members {
			c.t.Logf("==== log of member %s (%s):\n%s", m.Name, m.LogPath, m.LogTail(150))
		}
	}
}

// ClientURLs returns every member's client URL.
func (c *Cluster) ClientURLs() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// Client returns a clientv3 client of the given members (all when none
// are named), closed when the test ends.
func (c *Cluster) Client(t testing.TB, members ...*Member) *clientv3.Client {
	t.Helper()
	if len(members) == 0 {
		members = c.Members
	}
	eps := make([]string, len(members))
	for i, m := range members {
		eps[i] = m.ClientURL
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("clientv3.New(%v): %v", eps, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// MemberClient returns a clientv3 client of m alone, shared by the
// cluster's users and closed when the test ends; it reconnects by itself
// after m restarts.
func (c *Cluster) MemberClient(t testing.TB, m *Member) *clientv3.Client {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if cli, ok := c.clients[m]; ok {
		return cli
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{m.ClientURL},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("clientv3.New(%s): %v", m.ClientURL, err)
	}
	if c.clients == nil {
		c.clients = make(map[*Member]*clientv3.Client)
	}
	c.clients[m] = cli
	return cli
}

// ctlResult is one etcdctl run.
type ctlResult struct {
	Stdout, Stderr string
	Code           int
}

// Etcdctl runs etcdctl against the given endpoints with args and stdin.
func (c *Cluster) etcdctlAt(t testing.TB, endpoints []string, stdin string, args ...string) ctlResult {
	t.Helper()
	full := append([]string{"--endpoints", strings.Join(endpoints, ","), "--dial-timeout", "5s", "--command-timeout", "10s"}, args...)
	cmd := exec.Command(etcdctlBin(t), full...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	res := ctlResult{Stdout: so.String(), Stderr: se.String()}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("etcdctl %v: %v", full, err)
		}
		res.Code = ee.ExitCode()
	}
	return res
}

// Etcdctl runs etcdctl with --endpoints of every member and fails the
// test unless it exits 0; it returns stdout.
func (c *Cluster) Etcdctl(t testing.TB, args ...string) string {
	t.Helper()
	return c.EtcdctlStdin(t, "", args...)
}

// EtcdctlStdin is Etcdctl with stdin.
func (c *Cluster) EtcdctlStdin(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	r := c.etcdctlAt(t, c.ClientURLs(), stdin, args...)
	if r.Code != 0 {
		t.Fatalf("etcdctl %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// lastLine returns the last non-empty line of s: etcdctl prints client
// log lines on stderr before its "Error: ..." line.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// runCairn runs the cairn binary in dir to completion with args, for tests
// of bad configurations; it fails the test if cairn does not exit within
// stopTimeout.
func runCairn(t testing.TB, dir string, args ...string) ctlResult {
	t.Helper()
	cmd := exec.Command(cairnBin(t), args...)
	cmd.Dir = dir
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("cairn %v did not exit within %v\nstderr: %s", args, stopTimeout, se.String())
	}
	res := ctlResult{Stdout: so.String(), Stderr: se.String()}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("cairn %v: %v", args, err)
		}
		res.Code = ee.ExitCode()
	}
	return res
}

// ctx returns a context with requestTimeout, cancelled when the test ends.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), requestTimeout)
	t.Cleanup(cancel)
	return c
}

// eventually waits for a state the test cannot be told about.
var eventually = testutil.Eventually
