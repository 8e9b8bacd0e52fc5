package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/node"
)

// member is one cairn process of the cluster under test.
type member struct {
	idx       int
	name      string
	id        uint64
	clientURL string
	peerURL   string // the real --listen-peer-urls
	proxyURL  string // what the others dial: --initial-advertise-peer-urls
	dataDir   string
	logPath   string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exitc  chan struct{}
	paused bool
	starts int
}

// cluster is an n-member cairn cluster on loopback behind a peer Network.
type cluster struct {
	bin     string
	env     []string // extra environment of every member
	token   string
	extra   []string // extra flags
	members []*member
	net     *Network
	proxies []*Proxy
	log     func(format string, args ...any)
}

// freePort returns a port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newCluster lays out n members under dir and starts their proxies; the
// members themselves are started by start.
func newCluster(bin, dir string, n int, token string, env, extra []string, logf func(string, ...any)) (*cluster, error) {
	c := &cluster{bin: bin, env: env, token: token, extra: extra, log: logf}
	var proxyLns []net.Listener
	for i := 0; i < n; i++ {
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("proxy listener: %w", err)
		}
		proxyLns = append(proxyLns, pl)
		name := fmt.Sprintf("m%d", i)
		m := &member{
			idx: i, name: name,
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", cp),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", pp),
			proxyURL:  "http://" + pl.Addr().String(),
			dataDir:   filepath.Join(dir, name+".data"),
			logPath:   filepath.Join(dir, name+".log"),
		}
		m.id = node.MemberID([]string{m.proxyURL}, token)
		c.members = append(c.members, m)
	}
	c.net = NewNetwork(n, c.indexOf)
	for i, m := range c.members {
		c.proxies = append(c.proxies, c.net.NewProxy(i, proxyLns[i], strings.TrimPrefix(m.peerURL, "http://")))
	}
	return c, nil
}

// indexOf maps a member ID to its index, or -1.
func (c *cluster) indexOf(id uint64) int {
	for _, m := range c.members {
		if m.id == id {
			return m.idx
		}
	}
	return -1
}

func (c *cluster) initialCluster() string {
	parts := make([]string, len(c.members))
	for i, m := range c.members {
		parts[i] = m.name + "=" + m.proxyURL
	}
	return strings.Join(parts, ",")
}

func (c *cluster) args(m *member) []string {
	a := []string{
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL,
		"--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL,
		"--initial-advertise-peer-urls", m.proxyURL,
		"--initial-cluster", c.initialCluster(),
		"--initial-cluster-state", "new",
		"--initial-cluster-token", c.token,
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		"--log-outputs", "stderr",
	}
	return append(a, c.extra...)
}

// startMember launches m (appending to its log), retrying while its old
// ports are still held by the kernel.
func (c *cluster) startMember(m *member) error {
	var lastErr error
	for attempt := 0; attempt < 40; attempt++ {
		exitc, err := c.spawn(m)
		if err != nil {
			return err
		}
		select {
		case <-exitc:
			lastErr = fmt.Errorf("member %s exited at once:\n%s", m.name, tailFile(m.logPath, 15))
			if strings.Contains(tailFile(m.logPath, 5), "address already in use") {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return lastErr
		case <-time.After(150 * time.Millisecond):
			return nil
		}
	}
	return lastErr
}

func (c *cluster) spawn(m *member) (chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil && !isClosed(m.exitc) {
		return nil, fmt.Errorf("member %s is already running", m.name)
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("member log: %w", err)
	}
	fmt.Fprintf(logf, "==== chaos: starting %s %s\n", c.bin, strings.Join(c.args(m), " "))
	cmd := exec.Command(c.bin, c.args(m)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET="), c.env...)
	cmd.Dir = filepath.Dir(m.logPath)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start member %s: %w", m.name, err)
	}
	exitc := make(chan struct{})
	m.cmd, m.exitc, m.paused = cmd, exitc, false
	m.starts++
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exitc)
	}()
	return exitc, nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// running reports whether m's process is alive (possibly paused).
func (m *member) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil && !isClosed(m.exitc)
}

// signal sends sig to m's process.
func (m *member) signal(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || isClosed(m.exitc) {
		return fmt.Errorf("member %s is not running", m.name)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to %s: %w", sig, m.name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		m.paused = true
	case syscall.SIGCONT:
		m.paused = false
	}
	return nil
}

// kill ends m with SIGKILL and waits for it to exit.
func (m *member) kill() error {
	m.mu.Lock()
	cmd, exitc := m.cmd, m.exitc
	m.mu.Unlock()
	if cmd == nil || isClosed(exitc) {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", m.name, err)
	}
	<-exitc
	m.mu.Lock()
	m.paused = false
	m.mu.Unlock()
	return nil
}

// exitedUnexpectedly reports members whose process ended by itself.
func (c *cluster) crashed() []string {
	var out []string
	for _, m := range c.members {
		if !m.running() {
			out = append(out, m.name)
		}
	}
	return out
}

// stop kills every member and closes the network.
func (c *cluster) stop() {
	for _, m := range c.members {
		_ = m.signal(syscall.SIGCONT)
		_ = m.kill()
	}
	for _, p := range c.proxies {
		_ = p.Close()
	}
	c.net.Close()
}

// client returns a clientv3 client of m alone, reconnecting fast after a
// restart.
func (m *member) client() (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{m.clientURL},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("client of %s: %w", m.name, err)
	}
	return cli, nil
}

// leader asks every running member for its view of the leader and returns
// the index most of them name, or -1.
func (c *cluster) leader(ctx context.Context, clis []*clientv3.Client) int {
	votes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, m := range c.members {
		if !m.running() {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			st, err := clis[i].Status(cctx, m.clientURL)
			if err != nil || st.Leader == 0 {
				return
			}
			mu.Lock()
			votes[c.indexOf(st.Leader)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	best, bestVotes := -1, 0
	for idx, v := range votes {
		if idx >= 0 && (v > bestVotes || (v == bestVotes && idx < best)) {
			best, bestVotes = idx, v
		}
	}
	return best
}

// tailFile returns the last n lines of the file at path.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("<no log: %v>", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
