package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Environment variables through which TestMain hands the built binaries to
// the tests (the package keeps no mutable state). Setting them before
// `go test` reuses prebuilt binaries instead of building.
const (
	envCairnBin   = "CAIRN_E2E_CAIRN"
	envEtcdctlBin = "CAIRN_E2E_ETCDCTL"
	envBenchBin   = "CAIRN_E2E_BENCH"
)

// TestMain builds cmd/cairn, cmd/bench and etcdctl once into a temporary directory.
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
		{envCairnBin, filepath.Join(dir, "cairn"), "github.com/cairnkv/cairn/cmd/cairn"},
		{envEtcdctlBin, filepath.Join(dir, "etcdctl"), "go.etcd.io/etcd/etcdctl/v3"},
		{envBenchBin, filepath.Join(dir, "bench"), "github.com/cairnkv/cairn/cmd/bench"},
	} {
		if os.Getenv(b.env) != "" {
			continue
		}
		args := []string{"build", "-o", b.out}
		if raceEnabled && b.env == envCairnBin {
			args = append(args, "-race") // the daemon's own concurrency is checked too
		}
		cmd := exec.Command("go", append(args, b.pkg)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build %s: %v\n%s", b.pkg, err, out)
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

// Pid is the running member's process ID.
func (m *Member) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd.Process.Pid
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

// Member is one cairn process of a Cluster.
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string
	DataDir   string
	LogPath   string
	// JoinCluster, when set, starts the member with this --initial-cluster
	// and --initial-cluster-state existing (a member added at runtime).
	JoinCluster string

	c     *Cluster
	mu    sync.Mutex
	cmd   *exec.Cmd
	exitc chan struct{} // closed when cmd has exited
	state *os.ProcessState
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

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago (another process may take one before we do: callers retry).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("pick a free port: %v", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
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
		c := &Cluster{t: t, token: fmt.Sprintf("cairn-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()), extra: extra}
		ports := freePorts(t, 2*n)
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("m%d", i)
			dir := filepath.Join(base, fmt.Sprintf("try%d", attempt), name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			c.Members = append(c.Members, &Member{
				Name:      name,
				ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
				PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
				DataDir:   filepath.Join(dir, "data"),
				LogPath:   filepath.Join(dir, "cairn.log"),
				c:         c,
			})
		}
		t.Cleanup(c.cleanup)
		for _, m := range c.Members {
			if err := m.start(); err != nil {
				t.Fatal(err)
			}
		}
		err := c.waitReadyAll()
		if err == nil {
			return c
		}
		lastErr = err
		if !c.portCollision() {
			t.Fatalf("cluster did not become ready: %v", err)
		}
		t.Logf("port collision, retrying with other ports: %v", err)
		c.killAll()
	}
	t.Fatalf("cluster did not start after retries: %v", lastErr)
	return nil
}

// portCollision reports whether a member exited because its address was taken.
func (c *Cluster) portCollision() bool {
	for _, m := range c.Members {
		if m.exited() && strings.Contains(m.Log(), "address already in use") {
			return true
		}
	}
	return false
}

func (c *Cluster) initialCluster() string {
	parts := make([]string, len(c.Members))
	for i, m := range c.Members {
		parts[i] = m.Name + "=" + m.PeerURL
	}
	return strings.Join(parts, ",")
}

func (m *Member) initialCluster() string {
	if m.JoinCluster != "" {
		return m.JoinCluster
	}
	return m.c.initialCluster()
}

func (m *Member) clusterState() string {
	if m.JoinCluster != "" {
		return "existing"
	}
	return "new"
}

// Args returns the command-line flags m is started with.
func (m *Member) Args() []string {
	return append([]string{
		"--name", m.Name,
		"--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL,
		"--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL,
		"--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", m.initialCluster(),
		"--initial-cluster-state", m.clusterState(),
		"--initial-cluster-token", m.c.token,
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		// Explicit: the default output is covered by TestDefaultLogOutputIsStderr.
		"--log-outputs", "stderr",
	}, m.c.extra...)
}

// start launches m's process, appending its output to m.LogPath.
func (m *Member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil && !isClosed(m.exitc) {
		return fmt.Errorf("member %s is already running", m.Name)
	}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== e2e: starting %s %s\n", m.Name, strings.Join(m.Args(), " "))
	cmd := exec.Command(cairnBin(m.c.t), m.Args()...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=")
	cmd.Dir = filepath.Dir(m.LogPath) // stray files land in the test's temp dir
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start member %s: %w", m.Name, err)
	}
	exitc := make(chan struct{})
	m.cmd, m.exitc, m.state = cmd, exitc, nil
	go func() {
		cmd.Wait()
		logf.Close()
		m.mu.Lock()
		m.state = cmd.ProcessState
		m.mu.Unlock()
		close(exitc)
	}()
	return nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (m *Member) exited() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd == nil || isClosed(m.exitc)
}

// Log returns everything m's processes have written so far.
func (m *Member) Log() string {
	b, err := os.ReadFile(m.LogPath)
	if err != nil {
		return fmt.Sprintf("<no log: %v>", err)
	}
	return string(b)
}

// signal sends sig to m and waits for it to exit, returning its state.
func (m *Member) signal(sig syscall.Signal) (*os.ProcessState, error) {
	m.mu.Lock()
	cmd, exitc := m.cmd, m.exitc
	m.mu.Unlock()
	if cmd == nil {
		return nil, fmt.Errorf("member %s was never started", m.Name)
	}
	if isClosed(exitc) {
		return nil, fmt.Errorf("member %s already exited", m.Name)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return nil, fmt.Errorf("signal %s to %s: %w", sig, m.Name, err)
	}
	select {
	case <-exitc:
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-exitc
		return nil, fmt.Errorf("member %s did not exit within %v of %s", m.Name, stopTimeout, sig)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state, nil
}

// Kill ends m with SIGKILL, as a crash would.
func (m *Member) Kill(t testing.TB) {
	t.Helper()
	if _, err := m.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// Stop ends m with SIGTERM and fails the test unless it exits with status 0.
func (m *Member) Stop(t testing.TB) {
	t.Helper()
	st, err := m.signal(syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Success() {
		t.Fatalf("member %s: SIGTERM gave %v, want exit status 0\nlog:\n%s", m.Name, st, tail(m.Log(), 40))
	}
}

// Restart starts m again on the same data dir and ports; it does not wait
// for readiness (see WaitReady).
func (m *Member) Restart(t testing.TB) {
	t.Helper()
	var err error
	for i := 0; i < 50; i++ { // the old listeners may linger for a moment
		if err = m.start(); err != nil {
			t.Fatal(err)
		}
		m.mu.Lock()
		exitc := m.exitc
		m.mu.Unlock()
		select {
		case <-exitc:
			if strings.Contains(tail(m.Log(), 5), "address already in use") {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			t.Fatalf("member %s exited at once on restart:\n%s", m.Name, tail(m.Log(), 20))
		case <-time.After(200 * time.Millisecond):
		}
		return
	}
	t.Fatalf("member %s could not restart: %v\n%s", m.Name, err, tail(m.Log(), 20))
}

// health returns nil when m's /health says {"health":"true"}.
func (m *Member) health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/health: %s %s", resp.Status, b)
	}
	var h struct{ Health string }
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("/health: %w: %s", err, b)
	}
	if h.Health != "true" {
		return fmt.Errorf("/health: %s", b)
	}
	return nil
}

// waitReady polls /health until m is healthy, m exits or readyTimeout passes.
func (m *Member) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	var err error
	for time.Now().Before(deadline) {
		if m.exited() {
			return fmt.Errorf("member %s exited while starting:\n%s", m.Name, tail(m.Log(), 20))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = m.health(ctx)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("member %s not healthy after %v: %v", m.Name, readyTimeout, err)
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
		if !m.exited() {
			m.signal(syscall.SIGKILL)
		}
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
		if log := m.Log(); strings.Contains(log, "WARNING: DATA RACE") {
			i := strings.Index(log, "WARNING: DATA RACE")
			c.t.Errorf("member %s: the race detector found a data race:\n%s", m.Name, log[i:min(len(log), i+6000)])
		}
	}
	if c.t.Failed() {
		for _, m := range c.Members {
			c.t.Logf("==== log of member %s (%s):\n%s", m.Name, m.LogPath, tail(m.Log(), 150))
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
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

// eventually polls cond every 20 ms until it holds; after timeout it fails
// the test with what and cond's last detail. It is how tests wait for a
// state they cannot be told about.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, detail string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v (%s)", what, timeout, detail)
		}
		time.Sleep(20 * time.Millisecond) // the polling interval
	}
}
