package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cairnkv/cairn/internal/proc"
)

// reusePortListen binds addr with SO_REUSEPORT.
func reusePortListen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// --socket-reuse-port sets SO_REUSEPORT on the member's listeners, so
// another socket with it can bind the same port (etcd's flag); without the
// flag the same bind fails.
func TestFlagsCompatSocketReusePort(t *testing.T) {
	for _, reuse := range []bool{true, false} {
		var extra []string
		if reuse {
			extra = append(extra, "--socket-reuse-port")
		}
		c := NewClusterArgs(t, 1, extra...)
		addr := strings.TrimPrefix(c.Members[0].ClientURL, "http://")
		l, err := reusePortListen(addr)
		if reuse && err != nil {
			t.Fatalf("binding the client port of a member started with --socket-reuse-port: %v", err)
		}
		if !reuse && err == nil {
			l.Close()
			t.Fatal("bound the client port of a member started without --socket-reuse-port")
		}
		if l != nil {
			l.Close()
		}
	}
}

// --warning-unary-request-duration logs a request that took longer, as
// etcd's "request stats" warning: the method, and the key with the value's
// size only.
func TestFlagsCompatWarningUnaryRequestDuration(t *testing.T) {
	c := NewClusterArgs(t, 1, "--warning-unary-request-duration", "1ns")
	if _, err := c.Client(t).Put(ctx(t), "slow", "v"); err != nil { // a 1-byte value
		t.Fatal(err)
	}
	log := c.Members[0].Log()
	if !strings.Contains(log, `"msg":"request stats"`) || !strings.Contains(log, `"response type":"/etcdserverpb.KV/Put"`) ||
		!strings.Contains(log, `value_size:1`) {
		t.Fatalf("no slow-request warning for the put in the log:\n%s", proc.Tail(log, 20))
	}
}

// fsyncCount is the number of WAL fsyncs m reports (etcd's
// etcd_disk_wal_fsync_duration_seconds histogram).
func fsyncCount(t *testing.T, m *Member) int {
	t.Helper()
	n, err := strconv.Atoi(metricValue(t, m, "etcd_disk_wal_fsync_duration_seconds_count"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// --unsafe-no-fsync: writes call no WAL fsync (the histogram of WAL
// fsyncs does not move), where without it every sequential write does;
// a clean stop and restart keeps the data.
func TestFlagsCompatUnsafeNoFsync(t *testing.T) {
	t.Parallel()
	const puts = 10
	for _, unsafe := range []bool{true, false} {
		var extra []string
		if unsafe {
			extra = []string{"--unsafe-no-fsync"}
		}
		c := NewClusterArgs(t, 1, extra...)
		m := c.Members[0]
		cli := c.Client(t)
		before := fsyncCount(t, m)
		for i := 0; i < puts; i++ {
			if _, err := cli.Put(ctx(t), fmt.Sprintf("k%d", i), "v"); err != nil {
				t.Fatal(err)
			}
		}
		after := fsyncCount(t, m)
		if unsafe && after != before {
			t.Errorf("with --unsafe-no-fsync, %d puts made %d WAL fsyncs, want none", puts, after-before)
		}
		if !unsafe && after-before < puts {
			t.Errorf("without --unsafe-no-fsync, %d sequential puts made %d WAL fsyncs, want at least %d", puts, after-before, puts)
		}
		if unsafe {
			stopCompat(t, m)
			m.Restart(t)
			m.WaitReady(t)
			r, err := c.MemberClient(t, m).Get(ctx(t), "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil || r.Count != puts {
				t.Fatalf("after a clean restart with --unsafe-no-fsync: %v keys, %v; want %d", r, err, puts)
			}
		}
	}
}

// lockedKiB is VmLck of process pid: the memory it holds locked.
func lockedKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the member's locked memory needs Linux's /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmLck:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("VmLck %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no VmLck in /proc/<pid>/status")
	return 0
}

// --memory-mlock locks the backend's pages in RAM; without it nothing is
// locked.
func TestFlagsCompatMemoryMlock(t *testing.T) {
	t.Parallel()
	for _, mlock := range []bool{true, false} {
		var extra []string
		if mlock {
			extra = []string{"--memory-mlock"}
		}
		c := NewClusterArgs(t, 1, extra...)
		if _, err := c.Client(t).Put(ctx(t), "k", "v"); err != nil {
			t.Fatal(err)
		}
		kib := lockedKiB(t, c.Members[0].Pid())
		if mlock && kib == 0 {
			t.Errorf("with --memory-mlock the member holds no locked memory")
		}
		if !mlock && kib != 0 {
			t.Errorf("without --memory-mlock the member holds %d KiB locked", kib)
		}
	}
}

// --memory-mlock with no right to lock memory (no CAP_IPC_LOCK, a locked
// memory limit of 0) stops the member at start with the mlock error, as
// etcd does.
func TestFlagsCompatMemoryMlockRefused(t *testing.T) {
	t.Parallel()
	prlimit, err1 := exec.LookPath("prlimit")
	setpriv, err2 := exec.LookPath("setpriv")
	if err1 != nil || err2 != nil {
		t.Fatal("this test needs prlimit and setpriv (Debian's util-linux) to take the right to lock memory away")
	}
	dir := t.TempDir()
	urls := freeURLs(t, 2)
	cmd := exec.Command(prlimit, "--memlock=0:0", setpriv, "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock",
		cairnBin(t), "--data-dir", filepath.Join(dir, "data"), "--memory-mlock",
		"--listen-client-urls", urls[0], "--advertise-client-urls", urls[0],
		"--listen-peer-urls", urls[1], "--initial-advertise-peer-urls", urls[1], "--initial-cluster", "default="+urls[1])
	out, err := runToExit(t, cmd)
	if err == nil {
		t.Fatalf("a member that may not lock memory started with --memory-mlock:\n%s", out)
	}
	if !strings.Contains(out, "mlock error") {
		t.Fatalf("the member stopped (%v) without saying mlock failed:\n%s", err, proc.Tail(out, 10))
	}
}

// runToExit runs cmd to completion (within stopTimeout) and returns what
// it wrote on stdout and stderr, and how it exited.
func runToExit(t *testing.T, cmd *exec.Cmd) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not exit within %v:\n%s", cmd.Args, stopTimeout, proc.Tail(out.String(), 20))
		return "", nil
	}
}

// startHTTPSplit starts one member whose client HTTP is on a listener of
// its own (--listen-client-http-urls) and waits until that listener says
// it is healthy; it returns the member and the HTTP URL.
func startHTTPSplit(t *testing.T, extra ...string) (*Cluster, *Member, string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		urls := freeURLs(t, 3)
		httpURL := urls[2]
		c := newCluster(t, append([]string{"--listen-client-http-urls", httpURL}, extra...)...)
		m := c.newMember(t, "m0", t.TempDir(), urls[0], urls[1])
		m.InitialCluster = proc.InitialCluster(m.Peer())
		c.Members = []*Member{m}
		if !startListening(t, m, attempt) {
			continue
		}
		eventually(t, readyTimeout, "healthy on --listen-client-http-urls", func() (bool, string) {
			err := proc.Health(ctx(t), httpURL)
			return err == nil, fmt.Sprint(err)
		})
		return c, m, httpURL
	}
}

// --listen-client-http-urls: the HTTP side (gateway, probes, /version,
// /metrics) moves to its own listener and --listen-client-urls serve gRPC
// only, as in etcd.
func TestFlagsCompatListenClientHTTPURLs(t *testing.T) {
	t.Parallel()
	c, m, httpURL := startHTTPSplit(t)
	// gRPC on the client URL.
	if _, err := c.Client(t).Put(ctx(t), "foo", "bar"); err != nil {
		t.Fatalf("put over gRPC on --listen-client-urls: %v", err)
	}
	// HTTP on the HTTP URL.
	for _, path := range []string{"/health", "/livez", "/readyz", "/version", "/metrics"} {
		if p := getProbe(t, "GET", httpURL+path); p.code != http.StatusOK {
			t.Errorf("GET %s on --listen-client-http-urls: %d %s", path, p.code, p.body)
		}
	}
	resp, err := http.Post(httpURL+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"Zm9v"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"value":"YmFy"`) {
		t.Errorf("POST /v3/kv/range on --listen-client-http-urls: %d %s", resp.StatusCode, body)
	}
	// No HTTP on the client URL...
	if p, err := fetchProbe(ctx(t), "GET", m.ClientURL+"/health"); err == nil {
		t.Errorf("GET /health on --listen-client-urls answered %d %q; want no HTTP there", p.code, p.body)
	}
	// ...and no gRPC on the HTTP URL.
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{httpURL}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := cli.Get(short, "foo"); err == nil {
		t.Errorf("a gRPC Get through --listen-client-http-urls succeeded; want gRPC only on --listen-client-urls")
	}
}

// --enable-grpc-gateway=false leaves the JSON gateway out; the probes stay.
func TestFlagsCompatGatewayDisabled(t *testing.T) {
	t.Parallel()
	c := NewClusterArgs(t, 1, "--enable-grpc-gateway=false")
	m := c.Members[0]
	if code, body := httpDo(t, m, "POST", "/v3/kv/range", `{"key":"Zm9v"}`); code != http.StatusNotFound {
		t.Errorf("POST /v3/kv/range with the gateway disabled: %d %s; want 404", code, body)
	}
	if code, _ := httpDo(t, m, "GET", "/version", ""); code != http.StatusOK {
		t.Errorf("GET /version with the gateway disabled: %d", code)
	}
}

// --feature-gates: etcd's syntax and gate names; an unknown gate stops
// the member with etcd's words. StopGRPCServiceOnDefrag reports the gRPC
// service NOT_SERVING while a defragmentation runs, with etcd's log line.
func TestFlagsCompatFeatureGates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, bad := range []struct{ value, want string }{
		{"Foo=true", "unrecognized feature gate: Foo"},
		{"CompactHashCheck", "missing bool value for CompactHashCheck"},
		{"CompactHashCheck=maybe", "invalid value of CompactHashCheck=maybe"},
	} {
		r := runCairn(t, dir, "--data-dir", filepath.Join(dir, "data"), "--feature-gates", bad.value)
		if r.Code == 0 || !strings.Contains(r.Stderr, bad.want) {
			t.Errorf("--feature-gates %s: exit %d, stderr\n%s\nwant a failure saying %q", bad.value, r.Code, proc.Tail(r.Stderr, 5), bad.want)
		}
	}
	c := NewClusterArgs(t, 1, "--feature-gates", "StopGRPCServiceOnDefrag=true,CompactHashCheck=true")
	m := c.Members[0]
	if _, err := c.Client(t).Defragment(ctx(t), m.ClientURL); err != nil {
		t.Fatal(err)
	}
	log := m.Log()
	if !strings.Contains(log, `"msg":"grpc service status changed"`) || !strings.Contains(log, `"status":"NOT_SERVING"`) ||
		!strings.Contains(log, `"reason":"defrag is active"`) {
		t.Fatalf("no NOT_SERVING status change for the defragmentation in the log:\n%s", proc.Tail(log, 20))
	}
	eventually(t, readyTimeout, "gRPC health SERVING after the defragmentation", func() (bool, string) {
		conn, err := grpc.NewClient(strings.TrimPrefix(m.ClientURL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return false, err.Error()
		}
		defer conn.Close()
		r, err := healthpb.NewHealthClient(conn).Check(ctx(t), &healthpb.HealthCheckRequest{})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING, fmt.Sprint(r, err)
	})
}

// The flags etcd 3.7 removed are refused as unknown, and the values etcd
// 3.7 refuses are refused, by both.
func TestFlagsCompatRemovedFlagsAndBadValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string // in what the binary printed
	}{
		{[]string{"--experimental-compact-hash-check-time", "1m"}, "experimental-compact-hash-check-time"},
		{[]string{"--experimental-initial-corrupt-check=true"}, "experimental-initial-corrupt-check"},
		{[]string{"--experimental-memory-mlock"}, "experimental-memory-mlock"},
		{[]string{"--proxy", "on"}, "proxy"},
		{[]string{"--compact-hash-check-time", "bogus"}, "compact-hash-check-time"},
		{[]string{"--compact-hash-check-time", "0s"}, "compact-hash-check-time"},
		{[]string{"--v2-deprecation", "not-yet"}, "not-yet"},
		{[]string{"--memory-mlock=sometimes"}, "memory-mlock"},
		{[]string{"--unsafe-no-fsync=perhaps"}, "unsafe-no-fsync"},
		{[]string{"--listen-client-http-urls", "bogus"}, "bogus"},
	} {
		r := runCairn(t, dir, append([]string{"--data-dir", filepath.Join(dir, "data")}, tc.args...)...)
		if r.Code == 0 || !strings.Contains(r.Stderr+r.Stdout, tc.want) {
			t.Errorf("%q: exit %d, output\n%s\nwant a failure naming %q", tc.args, r.Code, proc.Tail(r.Stderr+r.Stdout, 5), tc.want)
		}
	}
	// What etcd 3.7 accepts: etcd's --v2-deprecation values and a valid
	// --compact-hash-check-time.
	c := NewClusterArgs(t, 1, "--v2-deprecation", "write-only", "--compact-hash-check-time", "10s")
	if _, err := c.Client(t).Put(ctx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
}
