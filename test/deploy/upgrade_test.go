package deploy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/internal/testutil"
	"github.com/cairnkv/cairn/linearizability"
	"github.com/cairnkv/cairn/version"
)

// upgradeFrom is the Cairn a rolling upgrade starts from when
// CAIRN_UPGRADE_FROM names none: the last commit before the cluster
// version (#13), the newest change that a member of the previous build
// must live beside.
const upgradeFrom = "88342f1"

// buildRevision builds cairn as of git revision rev (from `git archive`,
// so the checkout is untouched), stamped with stamp.
func buildRevision(t *testing.T, rev, stamp, out string) {
	t.Helper()
	src := t.TempDir()
	archive := exec.Command("git", "archive", "--format=tar", rev)
	archive.Dir = root
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	var archErr strings.Builder
	archive.Stderr = &archErr
	if err := archive.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("untar %s: %v %s", rev, err, out)
	}
	if err := archive.Wait(); err != nil {
		t.Fatalf("git archive %s: %v %s (the test needs the repository's history)", rev, err, archErr.String())
	}
	build := exec.Command("go", "build", "-ldflags", "-X github.com/cairnkv/cairn/version.Git="+stamp, "-o", out, "./cmd/cairn")
	build.Dir = src
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cairn at %s: %v\n%s", rev, err, b)
	}
}

// load is clients writing and reading a few keys through every member,
// their history recorded for the linearizability check.
type load struct {
	rec     *linearizability.Recorder
	start   time.Time
	keys    []string
	lastOK  atomic.Int64 // ns since start of the latest acknowledged operation
	maxGap  atomic.Int64 // the longest time without an acknowledged operation
	okCount atomic.Int64
}

func (l *load) now() int64 { return time.Since(l.start).Nanoseconds() }

func (l *load) ok() {
	now := l.now()
	for {
		last := l.lastOK.Load()
		if now <= last {
			break
		}
		if l.lastOK.CompareAndSwap(last, now) {
			for gap := now - last; ; {
				m := l.maxGap.Load()
				if gap <= m || l.maxGap.CompareAndSwap(m, gap) {
					break
				}
			}
			break
		}
	}
	l.okCount.Add(1)
}

func (l *load) client(ctx context.Context, id int, cl *clientv3.Client) {
	for n := 0; ctx.Err() == nil; n++ {
		key := l.keys[rand.IntN(len(l.keys))]
		opCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if rand.IntN(2) == 0 {
			val := fmt.Sprintf("c%d-%d", id, n)
			tok := l.rec.Invoke(id, linearizability.Put(key, val))
			resp, err := cl.Put(opCtx, key, val)
			if err != nil {
				l.rec.Unknown(tok)
			} else {
				l.rec.Return(tok, linearizability.Response{Revision: resp.Header.Revision})
				l.ok()
			}
		} else {
			tok := l.rec.Invoke(id, linearizability.Get(key))
			resp, err := cl.Get(opCtx, key)
			if err != nil {
				l.rec.Unknown(tok)
			} else {
				r := linearizability.Response{Revision: resp.Header.Revision}
				if len(resp.Kvs) == 1 {
					r.Found, r.Value = true, string(resp.Kvs[0].Value)
				}
				l.rec.Return(tok, r)
				l.ok()
			}
		}
		cancel()
	}
}

// TestRollingUpgrade starts three members of the previous build
// (CAIRN_UPGRADE_FROM, a git revision, or upgradeFrom) under a load of
// clients, replaces them one at a time with this tree's cairn on the same
// data dirs (SIGTERM, then the new binary with the same flags), then back
// to the previous build the same way (a rolling downgrade within one
// storage version), and checks that each member serves the version it
// should, that the clients' history,
// final reads included, is linearizable (no acknowledged write lost), and
// that no pause without an acknowledged operation lasted longer than a
// few elections.
func TestRollingUpgrade(t *testing.T) {
	from := os.Getenv("CAIRN_UPGRADE_FROM")
	if from == "" {
		from = upgradeFrom
	}
	bins := t.TempDir()
	oldBin, newBin := filepath.Join(bins, "cairn-old"), filepath.Join(bins, "cairn-new")
	const oldStamp, newStamp = "upgrade-from", "upgrade-to"
	buildRevision(t, from, oldStamp, oldBin)
	build := exec.Command("go", "build", "-ldflags", "-X github.com/cairnkv/cairn/version.Git="+newStamp, "-o", newBin, "./cmd/cairn")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build this tree's cairn: %v\n%s", err, b)
	}

	ctx := ctxT(t, 5*time.Minute)
	urls, err := proc.FreeURLs(6)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	members := make([]*proc.Member, 3)
	var peers []proc.Peer
	for i := range members {
		m := &proc.Member{Bin: oldBin, LogPath: filepath.Join(dir, fmt.Sprintf("m%d.log", i))}
		m.Name, m.DataDir, m.ClientURL, m.PeerURL = fmt.Sprintf("m%d", i), filepath.Join(dir, fmt.Sprintf("m%d.etcd", i)), urls[i], urls[3+i]
		m.Token = "upgrade"
		members[i] = m
		peers = append(peers, m.Peer())
	}
	for _, m := range members {
		m.InitialCluster = proc.InitialCluster(peers...)
		if err := m.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, _ = m.Stop(sctx)
			if t.Failed() {
				t.Logf("%s's log (tail):\n%s", m.Name, m.LogTail(30))
			}
		})
	}
	gitVersion := func(m *proc.Member) (string, error) {
		var v map[string]string
		err := httpJSON(ctx, m.ClientURL+"/version", "", &v)
		return v["git"], err
	}
	for _, m := range members {
		if err := m.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		if v, err := gitVersion(m); err != nil || v != oldStamp {
			t.Fatalf("%s before the upgrade: git version %q %v, want %q", m.Name, v, err, oldStamp)
		}
	}

	l := &load{start: time.Now(), keys: []string{"k0", "k1", "k2", "k3"}}
	l.rec = linearizability.NewRecorder(l.now)
	var eps []string
	for _, m := range members {
		eps = append(eps, m.ClientURL)
	}
	newClient := func() *clientv3.Client {
		cl, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	const clients = 3
	for id := range clients {
		cl := newClient()
		wg.Go(func() { l.client(loadCtx, id, cl) })
	}
	defer func() { stopLoad(); wg.Wait() }()
	progress := func(what string) {
		t.Helper()
		from := l.okCount.Load()
		testutil.Eventually(t, time.Minute, what, func() (bool, string) {
			n := l.okCount.Load() - from
			return n >= 50, fmt.Sprintf("%d operations acknowledged", n)
		})
	}
	progress("load on the old cluster")

	// roll replaces the members one at a time with bin, under the load.
	roll := func(what, bin, stamp string) {
		for _, m := range members {
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			_, err := m.Stop(sctx)
			cancel()
			if err != nil {
				t.Fatalf("stop %s: %v", m.Name, err)
			}
			m.Bin = bin // stopped: Start reads it next
			if err := m.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			if err := m.WaitHealthy(ctx); err != nil {
				t.Fatal(err)
			}
			if v, err := gitVersion(m); err != nil || v != stamp {
				t.Fatalf("%s after its %s: git version %q %v, want %q", m.Name, what, v, err, stamp)
			}
			progress("load after the " + what + " of " + m.Name)
		}
	}
	roll("upgrade", newBin, newStamp)
	// And back: both builds keep the same storage version (3.7), so the
	// earlier build runs on the data the current one wrote, as etcd allows
	// a rolling downgrade within a storage version (across one, etcdctl
	// downgrade enable lowers it first: e2e/TestDowngradeCompat).
	roll("downgrade", oldBin, oldStamp)
	stopLoad()
	wg.Wait()

	// Final reads of every key, then the check.
	cl := newClient()
	for _, k := range l.keys {
		tok := l.rec.Invoke(clients, linearizability.Get(k))
		resp, err := cl.Get(ctx, k)
		if err != nil {
			t.Fatalf("final read of %s: %v", k, err)
		}
		r := linearizability.Response{Revision: resp.Header.Revision}
		if len(resp.Kvs) == 1 {
			r.Found, r.Value = true, string(resp.Kvs[0].Value)
		}
		l.rec.Return(tok, r)
	}
	history := l.rec.History()
	res, err := linearizability.Check(linearizability.RegisterModel(), history, time.Minute)
	if err != nil {
		t.Fatalf("linearizability check: %v", err)
	}
	if !res.Ok() {
		out := filepath.Join(t.TempDir(), "upgrade.html")
		_ = linearizability.WriteVisualization(out, linearizability.RegisterModel(), res)
		t.Fatalf("the history of %d operations across the upgrade and downgrade is not linearizable (%v)", len(history), res.Outcome)
	}
	gap := time.Duration(l.maxGap.Load())
	t.Logf("%d operations, %d acknowledged, linearizable; longest pause without an acknowledged operation: %v", len(history), l.okCount.Load(), gap.Round(time.Millisecond))
	// Election timeout 500 ms (proc.ElectionTimeout): a leader's restart
	// costs an election of up to twice that, and clients' failover. Three
	// restarts must never add up to one long outage.
	if gap > 5*time.Second {
		t.Errorf("clients saw no acknowledged operation for %v during the upgrade or downgrade: more than an election's pause", gap)
	}
	for _, m := range members {
		var v map[string]string
		if err := httpJSON(ctx, m.ClientURL+"/version", "", &v); err != nil || v["etcdserver"] != version.Etcd || v["etcdcluster"] != version.EtcdCluster {
			t.Errorf("%s /version after the upgrade and downgrade: %v %v, want etcdserver %s etcdcluster %s", m.Name, v, err, version.Etcd, version.EtcdCluster)
		}
	}
}
