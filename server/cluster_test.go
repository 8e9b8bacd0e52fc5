package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/transport"
	"github.com/cairnkv/cairn/vfs"
)

// testCluster runs real Servers (loop goroutine, ticker) over the in-memory
// transport. WALs live on per-member MemFS so a member can be crashed.
type testCluster struct {
	t       testing.TB
	net     *transport.MemNetwork
	members []node.Member
	dirs    map[uint64]string
	fs      map[uint64]*vfs.MemFS
	servers map[uint64]*Server
	opts    clusterOpts
	// joining members start with Config.Join (added to a running cluster).
	joining map[uint64]bool
	mu      sync.Mutex
}

type clusterOpts struct {
	snapshotCount, catchUp uint64
	logger                 *zap.Logger
	// walFS, if set, makes every member's WAL live on it (in a per-member
	// directory) instead of on a MemFS; crash() needs MemFS.
	walFS vfs.FS
	// electionTicks overrides the members' election timeout (10 ticks of
	// 10 ms). The first election is fast-forwarded whatever it is.
	electionTicks int
	// edit, if set, edits every member's Config before it starts.
	edit func(*Config)
}

func newTestCluster(t testing.TB, n int, opts clusterOpts) *testCluster {
	t.Helper()
	c := &testCluster{t: t, net: transport.NewMemNetwork(), dirs: map[uint64]string{}, fs: map[uint64]*vfs.MemFS{}, servers: map[uint64]*Server{}, opts: opts}
	if c.opts.logger == nil {
		c.opts.logger = zap.NewNop()
	}
	for i := 1; i <= n; i++ {
		urls := []string{fmt.Sprintf("mem://m%d", i)}
		c.members = append(c.members, node.Member{ID: node.MemberID(urls, "test"), Name: fmt.Sprintf("m%d", i), PeerURLs: urls})
	}
	for _, m := range c.members {
		c.dirs[m.ID] = t.TempDir()
		c.fs[m.ID] = vfs.NewMem()
		c.start(m.ID)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.servers {
			s.Stop()
		}
	})
	return c
}

func (c *testCluster) member(id uint64) node.Member {
	for _, m := range c.members {
		if m.ID == id {
			return m
		}
	}
	c.t.Fatalf("no member %x", id)
	return node.Member{}
}

// clusterID is the running cluster's ID, or 0 before any member started.
func (c *testCluster) clusterID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.servers {
		return s.ClusterID()
	}
	return 0
}

// addMember registers a member that will join the running cluster.
func (c *testCluster) addMember(name string) node.Member {
	urls := []string{"mem://" + name}
	m := node.Member{ID: node.MemberID(urls, "test"), Name: name, PeerURLs: urls}
	c.members = append(c.members, m)
	c.dirs[m.ID] = c.t.TempDir()
	c.fs[m.ID] = vfs.NewMem()
	if c.joining == nil {
		c.joining = map[uint64]bool{}
	}
	c.joining[m.ID] = true
	return m
}

func (c *testCluster) walFS(id uint64) vfs.FS {
	if c.opts.walFS != nil {
		return c.opts.walFS
	}
	return c.fs[id]
}

func (c *testCluster) start(id uint64) { c.startWith(id, nil) }

// startWith starts a member, letting edit adjust its configuration.
func (c *testCluster) startWith(id uint64, edit func(*Config)) {
	c.t.Helper()
	if err := c.tryStart(id, edit); err != nil {
		c.t.Fatalf("starting %s: %v", c.member(id).Name, err)
	}
}

// tryStart starts a member and returns why it could not start.
func (c *testCluster) tryStart(id uint64, edit func(*Config)) error {
	m := c.member(id)
	cfg := Config{
		Core: node.Config{
			Name: m.Name, ID: id, ClusterToken: "test", InitialMembers: c.members,
			Join: c.joining[id], ClusterID: c.clusterID(),
			DataDir: c.dirs[id], WALFS: c.walFS(id), WALSegmentSize: 1 << 20,
			Logger: c.opts.logger.Named(m.Name), ElectionTicks: cmp.Or(c.opts.electionTicks, 10), HeartbeatTicks: 1,
			SnapshotCount: c.opts.snapshotCount, SnapshotCatchUpEntries: c.opts.catchUp,
			BackendBatchInterval: 20 * time.Millisecond, TickInterval: 10 * time.Millisecond,
		},
		ClientURLs: []string{"http://" + m.Name},
	}
	if c.opts.edit != nil {
		c.opts.edit(&cfg)
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg, func(h transport.Handler) transport.Transport { return c.net.Join(id, h) })
	if err != nil {
		c.net.Leave(id)
		return err
	}
	s.Start()
	c.mu.Lock()
	c.servers[id] = s
	c.mu.Unlock()
	return nil
}

// stop stops a member gracefully.
func (c *testCluster) stop(id uint64) {
	c.mu.Lock()
	s := c.servers[id]
	delete(c.servers, id)
	c.mu.Unlock()
	s.Stop()
	c.net.Leave(id)
}

// crash stops a member as a power cut would: the WAL keeps only what was
// fsynced (the last write may tear) and the database loses its open batch.
func (c *testCluster) crash(id uint64, r *rand.Rand) {
	c.mu.Lock()
	s := c.servers[id]
	delete(c.servers, id)
	c.mu.Unlock()
	s.crash()
	c.net.Leave(id)
	c.fs[id] = c.fs[id].Crash(r, true)
}

func (c *testCluster) server(id uint64) *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[id]
}

func (c *testCluster) running() []*Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Server
	for _, m := range c.members {
		if s, ok := c.servers[m.ID]; ok {
			out = append(out, s)
		}
	}
	return out
}

// waitLeader waits until every running member agrees on one running leader.
func (c *testCluster) waitLeader() uint64 {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var lead uint64
		agree := true
		for _, s := range c.running() {
			l := s.Leader()
			if l == 0 || (lead != 0 && l != lead) {
				agree = false
				break
			}
			lead = l
		}
		if agree && lead != 0 && c.server(lead) != nil {
			return lead
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("no leader agreed on within 20s")
	return 0
}

// put writes through s, retrying while the cluster has no leader.
func (c *testCluster) put(s *Server, key, val string) *pb.PutResponse {
	c.t.Helper()
	var lastErr error
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		resp, err := s.Put(ctx, &pb.PutRequest{Key: []byte(key), Value: []byte(val)})
		cancel()
		if err == nil {
			return resp
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("put %s via %x: %v", key, s.ID(), lastErr)
	return nil
}

// requireKeys asserts that a linearizable read on s returns exactly want
// for the keys in want.
func requireKeys(t *testing.T, s *Server, want map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var resp *pb.RangeResponse
	var err error
	for ctx.Err() == nil {
		resp, err = s.Range(ctx, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("range on %x: %v", s.ID(), err)
	}
	got := map[string]string{}
	for _, kv := range resp.GetKvs() {
		got[string(kv.GetKey())] = string(kv.GetValue())
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("member %x: key %q = %q, want %q (acknowledged write lost or stale)", s.ID(), k, got[k], v)
		}
	}
}

func TestClusterReplicatesWrites(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("%d-members", n), func(t *testing.T) {
			c := newTestCluster(t, n, clusterOpts{})
			c.waitLeader()
			want := map[string]string{}
			servers := c.running()
			var lastRev int64
			for i := 0; i < 30; i++ {
				k, v := fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d", i)
				resp := c.put(servers[i%len(servers)], k, v)
				if resp.GetHeader().GetRevision() <= lastRev {
					t.Fatalf("put %s: revision %d after %d: revisions must increase", k, resp.GetHeader().GetRevision(), lastRev)
				}
				lastRev = resp.GetHeader().GetRevision()
				if resp.GetHeader().GetClusterId() != servers[0].ClusterID() || resp.GetHeader().GetMemberId() == 0 {
					t.Fatalf("bad header %v", resp.GetHeader())
				}
				want[k] = v
			}
			if lastRev != 31 {
				t.Fatalf("30 puts on a fresh cluster ended at revision %d, want 31", lastRev)
			}
			for _, s := range servers {
				requireKeys(t, s, want)
			}
		})
	}
}

func TestLeaderFailoverKeepsAcknowledgedWrites(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{})
	lead := c.waitLeader()
	want := map[string]string{}
	for i := 0; i < 20; i++ {
		c.put(c.server(lead), fmt.Sprintf("a%02d", i), "1")
		want[fmt.Sprintf("a%02d", i)] = "1"
	}
	c.stop(lead)
	newLead := c.waitLeader()
	if newLead == lead {
		t.Fatalf("stopped leader %x still leads", lead)
	}
	for i := 0; i < 20; i++ {
		c.put(c.server(newLead), fmt.Sprintf("b%02d", i), "2")
		want[fmt.Sprintf("b%02d", i)] = "2"
	}
	c.start(lead)
	c.waitLeader()
	for _, s := range c.running() {
		requireKeys(t, s, want)
	}
}

func TestRestartReplaysWALAndDatabase(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	id := c.waitLeader()
	want := map[string]string{}
	var rev int64
	for i := 0; i < 100; i++ {
		rev = c.put(c.server(id), fmt.Sprintf("k%03d", i), fmt.Sprint(i)).GetHeader().GetRevision()
		want[fmt.Sprintf("k%03d", i)] = fmt.Sprint(i)
	}
	c.stop(id)
	c.start(id)
	c.waitLeader()
	requireKeys(t, c.server(id), want)
	if got := c.server(id).KV().Rev(); got != rev {
		t.Fatalf("revision after restart = %d, want %d", got, rev)
	}
}

func TestCrashLosesNoAcknowledgedWrite(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := newTestCluster(t, 3, clusterOpts{})
	want := map[string]string{}
	for round := 0; round < 3; round++ {
		lead := c.waitLeader()
		for i := 0; i < 20; i++ {
			k := fmt.Sprintf("r%d-%02d", round, i)
			c.put(c.server(lead), k, "x")
			want[k] = "x"
		}
		// Crash the leader right after acknowledged writes: its WAL keeps
		// only what was fsynced, its database only committed batches.
		c.crash(lead, r)
		c.start(lead)
	}
	c.waitLeader()
	for _, s := range c.running() {
		requireKeys(t, s, want)
	}
}

func TestFollowerCatchesUpThroughSnapshot(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{snapshotCount: 20, catchUp: 5})
	lead := c.waitLeader()
	var follower uint64
	for _, m := range c.members {
		if m.ID != lead {
			follower = m.ID
			break
		}
	}
	c.stop(follower)
	want := map[string]string{}
	for i := 0; i < 120; i++ {
		k := fmt.Sprintf("s%03d", i)
		c.put(c.server(lead), k, "v")
		want[k] = "v"
	}
	c.start(follower)
	c.waitLeader()
	requireKeys(t, c.server(follower), want)
	installed := make(chan uint64, 1)
	f := c.server(follower)
	if err := f.do(context.Background(), func() { installed <- f.core.SnapshotsInstalled() }); err != nil {
		t.Fatal(err)
	}
	if n := <-installed; n == 0 {
		t.Fatalf("follower caught up without installing a snapshot; the log should have been compacted past it")
	}
}

func TestProposalsFailWithStoppedAfterStop(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	id := c.waitLeader()
	s := c.server(id)
	c.stop(id)
	_, err := s.Put(context.Background(), &pb.PutRequest{Key: []byte("k"), Value: []byte("v")})
	if !errors.Is(err, node.ErrStopped) {
		t.Fatalf("put after stop: %v, want etcdserver: server stopped", err)
	}
}
