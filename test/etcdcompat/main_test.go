package etcdcompat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"

	"github.com/cairnkv/cairn/internal/proc"
)

// The environment variables naming prebuilt binaries to test instead of
// building them.
const (
	envCairn   = "CAIRN_ETCDCOMPAT_CAIRN"
	envEtcd    = "CAIRN_ETCDCOMPAT_ETCD"
	envEtcdutl = "CAIRN_ETCDCOMPAT_ETCDUTL"
	envCtl     = "CAIRN_ETCDCOMPAT_CAIRNCTL"
)

// The packages of etcd's binaries, tools of this module (go.mod).
const (
	etcdPackage    = "go.etcd.io/etcd/server/v3"
	etcdutlPackage = "go.etcd.io/etcd/etcdutl/v3"
)

// defaultToken is --initial-cluster-token's default, in etcd, etcdutl and
// Cairn alike: a member's ID is a hash of its peer URLs and this token.
const defaultToken = "etcd-cluster"

// startTimeout bounds a member's start, up to its first healthy /health.
const startTimeout = 60 * time.Second

// opTimeout bounds each test step against a running member.
const opTimeout = 30 * time.Second

// kind is which server a member runs.
type kind string

const (
	cairnKind kind = "cairn"
	etcdKind  kind = "etcd"
)

// bins are the absolute paths of the binaries under test.
var bins = map[string]string{}

func TestMain(m *testing.M) {
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr))
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cairn-etcdcompat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	builds := []struct {
		name, env, pkg, moduleDir string
	}{
		// cairn from the parent module, with Cairn's own go.mod.
		{"cairn", envCairn, "./cmd/cairn", filepath.Join("..", "..")},
		{"cairnctl", envCtl, "./cmd/cairnctl", filepath.Join("..", "..")},
		// etcd's from this module, whose go.mod names them as tools.
		{"etcd", envEtcd, etcdPackage, "."},
		{"etcdutl", envEtcdutl, etcdutlPackage, "."},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(builds))
	for i, b := range builds {
		if p := os.Getenv(b.env); p != "" {
			abs, err := filepath.Abs(p)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			bins[b.name] = abs
			continue
		}
		out := filepath.Join(dir, b.name)
		bins[b.name] = out
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			cmd := exec.Command("go", "build", "-o", out, b.pkg)
			cmd.Dir = b.moduleDir
			cmd.Env = append(os.Environ(), "GOWORK=off")
			if log, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("building %s (%s): %v\n%s", b.name, b.pkg, err, log)
				return
			}
			fmt.Fprintf(os.Stderr, "built %s in %v\n", b.name, time.Since(start).Round(time.Second))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// server is one running single-member cluster and a client of it.
type server struct {
	*proc.Member
	kind kind
	cli  *clientv3.Client
}

func (s *server) String() string { return fmt.Sprintf("%s %s", s.kind, s.Name) }

// startNew starts a member of a new one-member cluster of kind k.
func startNew(t *testing.T, k kind, name string) *server {
	t.Helper()
	return start(t, k, name, nil)
}

// startRestored restores the snapshot file snap with etcdutl (on a copy of
// it: etcdutl writes to the file it is given) into a new data dir, as the
// member name of a one-member cluster, and starts a member of kind k on it
// with the flags given to etcdutl.
func startRestored(t *testing.T, k kind, name, snap string) *server {
	t.Helper()
	return start(t, k, name, func(dataDir, peerURL string) {
		cp := copyFile(t, snap)
		etcdutl(t, "snapshot", "restore", cp,
			"--data-dir", dataDir,
			"--name", name,
			"--initial-cluster", name+"="+peerURL,
			"--initial-advertise-peer-urls", peerURL)
	})
}

// start starts a one-member cluster of kind k on free ports, prepare first
// filling its data dir when not nil, waits until it is healthy, and stops it
// when the test ends. A start that loses one of its ports to another
// process is done again on other ports (and so a new data dir).
func start(t *testing.T, k kind, name string, prepare func(dataDir, peerURL string)) *server {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		urls, err := proc.FreeURLs(2)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		m := &proc.Member{
			Flags:   proc.Flags{Name: name, DataDir: filepath.Join(dir, "data"), ClientURL: urls[0], PeerURL: urls[1]},
			Bin:     bins[string(k)],
			LogPath: filepath.Join(dir, string(k)+".log"),
		}
		m.InitialCluster = proc.InitialCluster(m.Peer())
		if prepare != nil {
			prepare(m.DataDir, m.PeerURL)
		}
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		lastErr = m.WaitHealthy(ctx)
		cancel()
		if lastErr == nil {
			return connect(t, k, m)
		}
		if m.Running() {
			_ = m.Kill()
		}
		if !errors.Is(lastErr, proc.ErrAddrInUse) {
			t.Fatalf("%s %s did not become healthy: %v\nlog:\n%s", k, name, lastErr, m.LogTail(60))
		}
		t.Logf("port collision, retrying on other ports: %v", lastErr)
	}
	t.Fatalf("%s %s did not start: %v", k, name, lastErr)
	return nil
}

// connect makes a client of the running m and has the test's end close it
// and stop m with SIGTERM, expecting a clean exit: cairn's status 0, and
// for etcd also death by SIGTERM, which etcd raises again once it has shut
// down.
func connect(t *testing.T, k kind, m *proc.Member) *server {
	t.Helper()
	s := &server{Member: m, kind: k}
	t.Cleanup(func() {
		if s.cli != nil {
			s.cli.Close()
		}
		if m.Running() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			st, err := m.Stop(ctx)
			cancel()
			switch {
			case err != nil:
				t.Errorf("stopping %s: %v", s, err)
			case !cleanExit(k, st):
				t.Errorf("%s exited with %v on SIGTERM", s, st)
			}
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", s, m.LogTail(60))
		}
	})
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{m.ClientURL},
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("client of %s: %v", s, err)
	}
	s.cli = cli
	return s
}

// restart stops s with SIGTERM and starts it again on its data dir, with a
// new client.
func restart(t *testing.T, s *server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	st, err := s.Member.Stop(ctx)
	if err != nil || !cleanExit(s.kind, st) {
		t.Fatalf("stopping %s: %v %v", s, st, err)
	}
	if err := s.Member.Restart(ctx); err != nil {
		t.Fatalf("restarting %s: %v", s, err)
	}
	if err := s.Member.WaitHealthy(ctx); err != nil {
		t.Fatalf("%s after a restart: %v", s, err)
	}
	s.cli.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.ClientURL}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("client of %s: %v", s, err)
	}
	s.cli = cli
}

func cleanExit(k kind, st *os.ProcessState) bool {
	if st.Success() {
		return true
	}
	ws, ok := st.Sys().(syscall.WaitStatus)
	return k == etcdKind && ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}

// opCtx is a context for one step of a test.
func opCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// etcdutl runs etcdutl with args and returns its standard output, failing
// the test if it fails.
func etcdutl(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins["etcdutl"], args...)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("etcdutl %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// copyFile copies the file src into a new temporary directory and returns
// the copy's path.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// storageVersion is the storage version of etcd 3.7's database.
const storageVersion = "3.7.0"

// saveSnapshot saves a snapshot of s as etcdctl snapshot save does, once
// s's database has its storage version, and returns its path.
func saveSnapshot(t *testing.T, s *server) string {
	t.Helper()
	ctx := opCtx(t)
	// A new etcd writes the storage version into its database a moment
	// after it starts (its version monitor); a snapshot taken before has
	// none.
	for {
		st, err := s.cli.Status(ctx, s.ClientURL)
		if err == nil && st.StorageVersion == storageVersion {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: storage version not %s: status %v, %v", s, storageVersion, st, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	path := filepath.Join(t.TempDir(), string(s.kind)+".db")
	version, err := snapshot.SaveWithVersion(ctx, zap.NewNop(), clientv3.Config{
		Endpoints:   []string{s.ClientURL},
		DialTimeout: 10 * time.Second,
	}, path)
	if err != nil {
		t.Fatalf("snapshot of %s: %v", s, err)
	}
	if version != storageVersion {
		t.Errorf("snapshot of %s: its version is %q, want %s", s, version, storageVersion)
	}
	return path
}

// etcdIDs returns the cluster ID and the member IDs etcd gives the
// members of a cluster started (or restored by etcdutl) with
// --initial-cluster initialCluster and the default token, computed by
// etcd's own code.
func etcdIDs(t *testing.T, initialCluster string) (cluster uint64, members map[string]uint64) {
	t.Helper()
	urls, err := types.NewURLsMap(initialCluster)
	if err != nil {
		t.Fatal(err)
	}
	c, err := membership.NewClusterFromURLsMap(zap.NewNop(), defaultToken, urls)
	if err != nil {
		t.Fatal(err)
	}
	members = map[string]uint64{}
	for _, m := range c.Members() {
		members[m.Name] = uint64(m.ID)
	}
	return uint64(c.ID()), members
}

// checkMembers checks that s's cluster is the one member s, with the IDs
// etcd gives it: its member list and the IDs in its responses' headers.
func checkMembers(t *testing.T, s *server) {
	t.Helper()
	wantCluster, wantMembers := etcdIDs(t, s.InitialCluster)
	resp, err := s.cli.MemberList(opCtx(t))
	if err != nil {
		t.Fatalf("member list of %s: %v", s, err)
	}
	if len(resp.Members) != 1 {
		t.Fatalf("%s: member list %v, want one member", s, resp.Members)
	}
	m := resp.Members[0]
	if m.Name != s.Name || m.ID != wantMembers[s.Name] || len(m.PeerURLs) != 1 || m.PeerURLs[0] != s.PeerURL ||
		len(m.ClientURLs) != 1 || m.ClientURLs[0] != s.ClientURL || m.IsLearner {
		t.Errorf("%s: member list has %v; want %s with etcd's ID %x, peer URL %s and client URL %s",
			s, m, s.Name, wantMembers[s.Name], s.PeerURL, s.ClientURL)
	}
	if h := resp.Header; h.ClusterId != wantCluster || h.MemberId != wantMembers[s.Name] {
		t.Errorf("%s: cluster ID %x, member ID %x; etcd's are %x and %x", s, h.ClusterId, h.MemberId, wantCluster, wantMembers[s.Name])
	}
}
