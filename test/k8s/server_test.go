package k8s

import (
	"bytes"
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
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.uber.org/zap"

	storagetesting "k8s.io/apiserver/pkg/storage/testing"
)

// serverEnv names the server binary to test. Empty means: build Cairn from
// the parent module.
const serverEnv = "CAIRN_K8S_SERVER"

// serverFlagsEnv adds flags to every server's command line, split on
// spaces, e.g. "--heartbeat-interval=10 --election-timeout=100" to cut the
// first election of each fresh member from about a second to well under.
const serverFlagsEnv = "CAIRN_K8S_SERVER_FLAGS"

// serverBinary is the binary every test starts; TestMain sets it.
var serverBinary string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	bin := os.Getenv(serverEnv)
	if bin == "" {
		dir, err := os.MkdirTemp("", "cairn-k8s-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin, err = buildCairn(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	} else if abs, err := filepath.Abs(bin); err == nil {
		bin = abs
	}
	serverBinary = bin
	fmt.Fprintf(os.Stderr, "k8s conformance: server %s\n", serverBinary)
	return m.Run()
}

// buildCairn builds cmd/cairn of the parent module (two directories up)
// into dir.
func buildCairn(dir string) (string, error) {
	out := filepath.Join(dir, "cairn")
	cmd := exec.Command("go", "build", "-o", out, "github.com/cairnkv/cairn/cmd/cairn")
	cmd.Dir = filepath.Join("..", "..")
	// The parent module has its own go.mod; do not let this module's
	// GOFLAGS (e.g. -mod=mod) or workspace leak into that build.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building cairn in %s: %v\n%s", cmd.Dir, err, b)
	}
	return out, nil
}

// serverOptions are the per-test knobs of a server process.
type serverOptions struct {
	// progressNotifyInterval, when non-zero, is passed as
	// --watch-progress-notify-interval (k8s' ProgressNotify and
	// WatchDispatchBookmarkEvents tests use 1s).
	progressNotifyInterval time.Duration
}

// server is one running one-member cluster.
type server struct {
	cmd      *exec.Cmd
	endpoint string
	logPath  string
	done     chan struct{} // closed when the process has exited
	waitErr  error
}

// portLock serialises "pick free ports, start the server" so two tests of
// this process never pick the same ports (as k8s' testserver does).
var portLock sync.Mutex

// startServer starts a fresh one-member cluster for t on 127.0.0.1 and
// stops it when t ends. The data directory and log live in t.TempDir();
// the tail of the log is printed if t fails.
func startServer(t testing.TB, opts serverOptions) *server {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := tryStartServer(t, opts)
		if err == nil {
			return s
		}
		lastErr = err
		t.Logf("server start attempt %d: %v", attempt+1, err)
	}
	t.Fatalf("could not start %s: %v", serverBinary, lastErr)
	return nil
}

func tryStartServer(t testing.TB, opts serverOptions) (*server, error) {
	portLock.Lock()
	defer portLock.Unlock()

	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	args := []string{
		"--name", "default",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "default=" + peer,
		"--log-level", "warn",
	}
	if opts.progressNotifyInterval > 0 {
		args = append(args, "--watch-progress-notify-interval", opts.progressNotifyInterval.String())
	}
	args = append(args, strings.Fields(os.Getenv(serverFlagsEnv))...)
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(serverBinary, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = serverProcAttr()
	started := time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	s := &server{cmd: cmd, endpoint: client, logPath: logPath, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%v; log:\n%s", err, s.logTail(40))
	}
	t.Logf("server %s ready after %v", s.endpoint, time.Since(started).Round(time.Millisecond))
	t.Cleanup(func() {
		stopping := time.Now()
		defer func() { t.Logf("server stopped after %v", time.Since(stopping).Round(time.Millisecond)) }()
		if err := s.stop(); err != nil {
			t.Errorf("stopping server: %v", err)
		}
		if t.Failed() {
			t.Logf("server log tail (%s):\n%s", s.logPath, s.logTail(30))
		}
	})
	return s, nil
}

// waitReady waits until the client port accepts connections and then until
// a linearizable Get succeeds: the member is up and has a leader. (Dialling
// gRPC before the port is open would put the connection into gRPC's 1s
// reconnect backoff.)
func (s *server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	addr := strings.TrimPrefix(s.endpoint, "http://")
	for {
		select {
		case <-s.done:
			return fmt.Errorf("server exited before it was ready: %v", s.waitErr)
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("client port %s not open after %v: %v", addr, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{s.endpoint},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		select {
		case <-s.done:
			return fmt.Errorf("server exited before it was ready: %v", s.waitErr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Get(ctx, "health-probe")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not ready after %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits; after 10s it kills the process.
func (s *server) stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New("server did not exit within 10s of SIGTERM; killed")
	}
}

func (s *server) logTail(lines int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(string(bytes.TrimRight(b, "\n")), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// newClient returns a Kubernetes etcd client for s, wired as k8s'
// testserver.RunEtcd wires it: KV and Kubernetes are wrapped by the
// storagetesting recorders the conformance tests count calls with.
func newClient(t testing.TB, s *server) *kubernetes.Client {
	t.Helper()
	client, err := kubernetes.New(clientv3.Config{
		Endpoints:   []string{s.endpoint},
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	recorder := storagetesting.NewKubernetesRecorder(client.Kubernetes)
	client.KV = storagetesting.NewKVRecorder(client.KV, recorder)
	client.Kubernetes = recorder
	return client
}

// runServer starts a fresh server for t and returns a client to it: the
// external-process counterpart of k8s' testserver.RunEtcd.
func runServer(t testing.TB, opts serverOptions) *kubernetes.Client {
	t.Helper()
	return newClient(t, startServer(t, opts))
}
