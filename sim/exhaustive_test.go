package sim

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/vfs"
)

// Exhaustive power cuts inside every durable step (issue #16). The swarm
// (cut.go) cuts a member's power at a random operation of its disk; these
// tests cut it at every one. Each durable step of a member (its first start,
// bootstrapping or joining; a WAL save of entries and hard state, and one
// that cuts a new segment; the raft snapshot taken at the snapshot count
// with its WAL marker and segment release; a received snapshot's install;
// a membership change: learner added, promoted, member removed; a leader
// transfer's term and vote saves; a --force-new-cluster restart) runs once
// in a tiny scripted cluster of production node.Cores, to count the N
// operations (create, open, write, sync, truncate, rename, remove, mkdir,
// dir sync) the member's file system sees. Then, for every k in 1..N+1 and
// every tear the crash offers (no torn write, and torn writes of three
// seeded lengths), a fresh cluster runs the same script with the member's
// power cut at its k-th operation (N+1: right after the step), the member
// restarts from what the crash left, and:
//   - the crash kept everything the member acknowledged to raft before it
//     (the log up to the last index its MsgAppResps claimed, or leading, the
//     match raft counted for its own copy; the vote it granted; the term of
//     every message it sent) and the member restarts cleanly: the crash
//     model (only synced bytes survive, and only the directory entries
//     of each directory's last dir sync, as vfs.MemFS documents; committed
//     database batches survive) never makes a loss
//     legitimate, so any refusal to start, and any panic, is a failure;
//   - the cluster converges: one leader, every member applied what it
//     committed, the same HashKV and the same membership everywhere, and
//     every write a client was told succeeded is there on every member (a
//     membership change acknowledged to its caller is in every member list).
// The restart is then cut at each of its own operations too (WAL tail
// repair, the finishing of an interrupted snapshot install in
// node/start.go), without a torn write (and with one for the install), and
// restarted again. Not reached: the shell's staging of a streamed snapshot
// (node.StageSnapshot) and the database swap write real files of the OS,
// outside vfs.

// xPower is one incarnation's power in an exhaustive run: armed, it counts
// the disk operations and cuts at the failAt-th (0: never).
type xPower struct {
	armed  bool
	n      int
	failAt int
	fired  bool
	ops    []string
}

func (p *xPower) arm(failAt int) { p.armed, p.n, p.failAt, p.ops = true, 0, failAt, nil }

func (p *xPower) op(kind, name string) error {
	if p.fired {
		return errPowerCut
	}
	if !p.armed {
		return nil
	}
	p.n++
	p.ops = append(p.ops, kind+" "+filepath.Base(name))
	if p.n == p.failAt {
		p.fired = true
		return errPowerCut
	}
	return nil
}

// xFS counts and cuts the operations of cutFS, naming them.
type xFS struct {
	vfs.FS
	p    *xPower
	root string // the cluster's directory
}

type xFile struct {
	vfs.File
	p    *xPower
	name string
}

func (f xFS) wrap(name string, file vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return xFile{File: file, p: f.p, name: name}, nil
}

func (f xFS) Create(name string) (vfs.File, error) {
	if err := f.p.op("create", name); err != nil {
		return nil, err
	}
	file, err := f.FS.Create(name)
	return f.wrap(name, file, err)
}
func (f xFS) Open(name string) (vfs.File, error) {
	if err := f.p.op("open", name); err != nil {
		return nil, err
	}
	file, err := f.FS.Open(name)
	return f.wrap(name, file, err)
}
func (f xFS) OpenReadWrite(name string) (vfs.File, error) {
	if err := f.p.op("open-rw", name); err != nil {
		return nil, err
	}
	file, err := f.FS.OpenReadWrite(name)
	return f.wrap(name, file, err)
}
func (f xFS) Remove(name string) error {
	if err := f.p.op("remove", name); err != nil {
		return err
	}
	return f.FS.Remove(name)
}
func (f xFS) RemoveAll(dir string) error {
	if err := f.p.op("remove-all", dir); err != nil {
		return err
	}
	return f.FS.RemoveAll(dir)
}
func (f xFS) Rename(oldname, newname string) error {
	if err := f.p.op("rename", oldname); err != nil {
		return err
	}
	return f.FS.Rename(oldname, newname)
}
func (f xFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := f.p.op("mkdir", dir); err != nil {
		return err
	}
	return f.FS.MkdirAll(dir, perm)
}
func (f xFS) SyncDir(dir string) error {
	name := dir
	if filepath.Clean(dir) == f.root {
		name = "cluster-dir" // a temporary name, different in every run
	}
	if err := f.p.op("syncdir", name); err != nil {
		return err
	}
	return f.FS.SyncDir(dir)
}
func (f xFile) Write(p []byte) (int, error) {
	if err := f.p.op("write", f.name); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}
func (f xFile) Sync() error {
	if err := f.p.op("sync", f.name); err != nil {
		return err
	}
	return f.File.Sync()
}
func (f xFile) Truncate(size int64) error {
	if err := f.p.op("truncate", f.name); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

// xTear is how a crash treats unsynced writes: lost, or torn to a length
// drawn from seed (vfs.MemFS.Crash).
type xTear struct {
	tear bool
	seed uint64
}

func (t xTear) String() string {
	if !t.tear {
		return "no-tear"
	}
	return fmt.Sprintf("tear-%d", t.seed)
}

var xTears = []xTear{{}, {true, 1}, {true, 2}, {true, 3}}

// xConfig is a scripted cluster's settings.
type xConfig struct {
	voters                 int // the initial cluster's size (default 3)
	snapshotCount, catchUp uint64
	segmentSize            int64
	bugs                   node.Bugs // planted on every member
	lyingWAL               bool      // BugAckBeforeFsync's disk under every WAL
}

// xCluster is a scripted cluster of three production cores: messages wait
// in one queue until delivered in order, time moves only when ticked.
type xCluster struct {
	dir     string
	cfg     xConfig
	clk     *clock.Fake
	tear    *rand.Rand
	tearOn  bool
	members []node.Member
	nodes   []*xNode
	queue   []*raftpb.Message
	cut     map[uint64]bool // members cut off from every other
	// acked holds the puts clients were told succeeded; ccAcked the
	// membership changes their callers were told were applied.
	acked   map[string]string
	ccAcked []string
	err     error
}

type xNode struct {
	c     *xCluster
	m     node.Member
	core  *node.Core // nil while down
	fs    *vfs.MemFS
	dir   string
	power *xPower
	join  bool
	gone  bool // stopped on its own removal
	// forceNew restarts it with Config.ForceNewCluster.
	forceNew bool
	// What this member acknowledged to raft: its log up to ackIndex (the
	// highest index its MsgAppResps claimed, or, leading, the match raft
	// counts for its own copy), its vote for voteFor in voteTerm, and the
	// terms of the messages it sent (pre-votes aside, which ask for a term
	// not taken yet).
	ackIndex, voteTerm, voteFor, sentTerm uint64
}

func newXCluster(dir string, cfg xConfig, tear xTear) *xCluster {
	c := &xCluster{dir: dir, cfg: cfg, clk: clock.NewFake(time.Unix(1_700_000_000, 0)), cut: map[uint64]bool{}, acked: map[string]string{}, tearOn: tear.tear}
	if tear.tear {
		c.tear = rand.New(rand.NewPCG(tear.seed, 0x54454152))
	}
	for i := 0; i < 4; i++ { // n4 is only ever added as a learner
		name := fmt.Sprintf("n%d", i+1)
		urls := []string{"sim://" + name}
		m := node.Member{ID: node.MemberID(urls, "x"), Name: name, PeerURLs: urls}
		c.members = append(c.members, m)
		c.nodes = append(c.nodes, &xNode{c: c, m: m, fs: vfs.NewMem(), dir: filepath.Join(dir, name), power: &xPower{}, join: i == 3})
	}
	return c
}

func (c *xCluster) voters() int {
	if c.cfg.voters == 0 {
		return 3
	}
	return c.cfg.voters
}

func (c *xCluster) failf(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

func (c *xCluster) byID(id uint64) *xNode {
	for _, n := range c.nodes {
		if n.m.ID == id {
			return n
		}
	}
	return nil
}

// guard runs f, turning a panic into an error.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

func (n *xNode) start() error {
	c := n.c
	var walFS vfs.FS = n.fs
	if c.cfg.lyingWAL {
		walFS = lyingFS{n.fs}
	}
	cfg := node.Config{
		Name: n.m.Name, ID: n.m.ID, ClusterToken: "x", InitialMembers: c.members[:c.voters()],
		DataDir: n.dir, WALFS: xFS{FS: walFS, p: n.power, root: c.dir}, SnapFS: xFS{FS: n.fs, p: n.power, root: c.dir},
		WALSegmentSize: c.cfg.segmentSize, Transport: xTransport{n}, Clock: c.clk,
		ElectionTicks: 10, HeartbeatTicks: 1,
		SnapshotCount: c.cfg.snapshotCount, SnapshotCatchUpEntries: c.cfg.catchUp,
		BackendNoSync: true, Bugs: c.cfg.bugs,
	}
	if n.join {
		cfg.Join, cfg.ClusterID = true, c.nodes[0].core.ClusterID()
	}
	cfg.ForceNewCluster = n.forceNew
	var core *node.Core
	err := guard(func() (err error) { core, err = node.NewCore(cfg); return err })
	if err != nil {
		return err
	}
	n.core = core
	return nil
}

// startCut starts n, whose power may be cut while it starts: then it is
// down, its disk crashed.
func (c *xCluster) startCut(n *xNode) error {
	err := n.start()
	if !n.power.fired {
		return err
	}
	if err == nil {
		c.crash(n)
		return nil
	}
	n.fs = n.fs.Crash(c.tear, c.tearOn)
	n.power = &xPower{}
	if err := n.checkDurable(); err != nil && n.ackIndex > 0 {
		c.failf("%s after the crash: %v", n.m.Name, err)
	}
	return nil
}

// crash cuts n's power: the core stops, its disk keeps what was synced
// (torn writes if the run tears), and what it acknowledged must be there.
func (c *xCluster) crash(n *xNode) {
	n.core.Crash()
	n.core = nil
	n.fs = n.fs.Crash(c.tear, c.tearOn)
	n.power = &xPower{}
	if err := n.checkDurable(); err != nil {
		c.failf("%s after the crash: %v", n.m.Name, err)
	}
}

// checkDurable reads the crashed member's WAL (from a copy) and checks it
// holds what the member acknowledged.
func (n *xNode) checkDurable() error {
	w, err := wal.Open(wal.Config{FS: n.fs.Crash(nil, false), Dir: node.WALDir(n.dir), SegmentSize: n.c.cfg.segmentSize})
	if err != nil {
		return fmt.Errorf("its WAL is unreadable: %w", err)
	}
	defer w.Close()
	_, hs, snap, ents, err := w.ReadAll()
	if err != nil {
		return fmt.Errorf("its WAL is unreadable: %w", err)
	}
	last := snap.GetIndex()
	if len(ents) > 0 {
		last = max(last, ents[len(ents)-1].GetIndex())
	}
	if last < n.ackIndex {
		return fmt.Errorf("acknowledged log lost: it acknowledged entries up to %d, its WAL holds up to %d", n.ackIndex, last)
	}
	if hs.GetTerm() < n.sentTerm {
		return fmt.Errorf("acknowledged term lost: it sent messages in term %d, its WAL says term %d", n.sentTerm, hs.GetTerm())
	}
	if hs.GetTerm() < n.voteTerm || hs.GetTerm() == n.voteTerm && n.voteFor != 0 && hs.GetVote() != n.voteFor {
		return fmt.Errorf("acknowledged vote lost: it voted for %x in term %d, its WAL says term %d vote %x", n.voteFor, n.voteTerm, hs.GetTerm(), hs.GetVote())
	}
	return nil
}

// process runs n's Ready until it has none; a cut power crashes it.
func (c *xCluster) process(n *xNode) {
	for n.core != nil && n.core.HasReady() {
		err := guard(n.core.Process)
		if n.power.fired {
			c.crash(n)
			return
		}
		if err != nil {
			if errors.Is(err, node.ErrRemoved) {
				n.gone = true
				_ = n.core.Close()
				n.core = nil
				return
			}
			c.failf("%s stopped: %v", n.m.Name, err)
			n.core.Crash()
			n.core = nil
			return
		}
		if n.core.IsLeader() {
			n.ackIndex = max(n.ackIndex, n.core.Status().Progress[n.m.ID].Match)
		}
	}
}

type xTransport struct{ n *xNode }

func (t xTransport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		switch {
		case m.GetType() == raftpb.MsgAppResp && !m.GetReject():
			t.n.ackIndex = max(t.n.ackIndex, m.GetIndex())
		case m.GetType() == raftpb.MsgVoteResp && !m.GetReject():
			t.n.voteTerm, t.n.voteFor = m.GetTerm(), m.GetTo()
		}
		if m.GetType() != raftpb.MsgPreVote && m.GetType() != raftpb.MsgPreVoteResp {
			t.n.sentTerm = max(t.n.sentTerm, m.GetTerm())
		}
		t.n.c.queue = append(t.n.c.queue, proto.Clone(m).(*raftpb.Message))
	}
}

func (t xTransport) SendSnapshot(m *raftpb.Message, db node.SnapshotBody) {
	var buf bytes.Buffer
	_, err := db.WriteTo(&buf)
	_ = db.Close()
	if err != nil {
		t.n.c.failf("%s: reading a snapshot database: %v", t.n.m.Name, err)
		return
	}
	m = proto.Clone(m).(*raftpb.Message)
	m.Snapshot.Data = buf.Bytes()
	t.n.c.queue = append(t.n.c.queue, m)
}
func (xTransport) AddPeer(uint64, []string)    {}
func (xTransport) RemovePeer(uint64)           {}
func (xTransport) UpdatePeer(uint64, []string) {}
func (xTransport) Close() error                { return nil }

// deliverAll delivers queued messages in order until none is left.
func (c *xCluster) deliverAll() {
	for len(c.queue) > 0 && c.err == nil {
		m := c.queue[0]
		c.queue = c.queue[1:]
		c.deliver(m)
	}
}

func (c *xCluster) deliver(m *raftpb.Message) {
	from, to := c.byID(m.GetFrom()), c.byID(m.GetTo())
	isSnap := m.GetType() == raftpb.MsgSnap
	report := func(st raft.SnapshotStatus) {
		if isSnap && from != nil && from.core != nil {
			from.core.ReportSnapshot(m.GetTo(), st)
			c.process(from)
		}
	}
	if to == nil || to.core == nil || c.cut[m.GetFrom()] || c.cut[m.GetTo()] {
		report(raft.SnapshotFailure)
		return
	}
	if err := guard(func() error { return to.core.Step(m) }); err != nil {
		if errors.Is(err, node.ErrSenderRemoved) && from != nil && from.core != nil {
			from.core.RemovedByPeer(to.m.ID)
			c.process(from)
		} else if strings.HasPrefix(err.Error(), "panic") {
			c.failf("%s stepping %s: %v", to.m.Name, m.GetType(), err)
		}
		report(raft.SnapshotFailure)
		return
	}
	c.process(to)
	report(raft.SnapshotFinish)
}

// tick moves time one tick and ticks the given members (all running ones
// if none).
func (c *xCluster) tick(ns ...*xNode) {
	c.clk.Advance(tickInterval)
	if len(ns) == 0 {
		ns = c.nodes
	}
	for _, n := range ns {
		if n.core != nil {
			if err := guard(func() error { n.core.Tick(); return nil }); err != nil {
				c.failf("%s ticking: %v", n.m.Name, err)
			}
			c.process(n)
		}
	}
}

func (c *xCluster) leader() *xNode {
	var lead *xNode
	for _, n := range c.nodes {
		if n.core != nil && n.core.IsLeader() && (lead == nil || n.core.Term() > lead.core.Term()) {
			lead = n
		}
	}
	return lead
}

// bootstrap starts the initial members and makes n1 lead.
func (c *xCluster) bootstrap() error {
	for _, n := range c.nodes[:c.voters()] {
		if err := n.start(); err != nil {
			return err
		}
	}
	for _, n := range c.nodes[:c.voters()] {
		c.process(n) // apply the bootstrap entries: raft campaigns only then
	}
	n1 := c.nodes[0]
	if err := n1.core.Campaign(); err != nil {
		return err
	}
	c.process(n1)
	c.deliverAll()
	if c.err != nil {
		return c.err
	}
	if !n1.core.IsLeader() {
		return errors.New("n1 did not win its election")
	}
	return nil
}

// put proposes key=val on the leader; the put counts as acknowledged once
// its waiter is told it succeeded.
func (c *xCluster) put(key string, size int) error {
	lead := c.leader()
	if lead == nil {
		return errors.New("no leader to put to")
	}
	val := strings.Repeat(key[len(key)-1:], size)
	_, err := lead.core.Propose(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key), Value: []byte(val)}}, func(res node.Result) {
		if res.Err == nil {
			c.acked[key] = val
		}
	})
	if err != nil {
		return err
	}
	c.process(lead)
	return nil
}

// confChange proposes a membership change of the member at idx on the
// leader.
func (c *xCluster) confChange(typ raftpb.ConfChangeType, idx int) error {
	lead := c.leader()
	if lead == nil {
		return errors.New("no leader to change the membership through")
	}
	m := c.members[idx]
	m.IsLearner = typ == raftpb.ConfChangeAddLearnerNode
	cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: proto.Uint64(m.ID)}}}
	what := fmt.Sprintf("%s %s", typ, m.Name)
	_, err := lead.core.ProposeConfChange(cc, m, func(res node.Result) {
		if res.Err == nil {
			c.ccAcked = append(c.ccAcked, what)
		}
	})
	if err != nil {
		return err
	}
	c.process(lead)
	return nil
}

// settleQuiet delivers until no message is left and checks that wantAcked
// puts were acknowledged.
func (c *xCluster) settleQuiet(wantAcked int) error {
	c.deliverAll()
	if c.err != nil {
		return c.err
	}
	if len(c.acked) != wantAcked {
		return fmt.Errorf("%d puts acknowledged, want %d", len(c.acked), wantAcked)
	}
	return nil
}

// live are the members that run and that the cluster did not remove.
func (c *xCluster) live() []*xNode {
	var out []*xNode
	lead := c.leader()
	for _, n := range c.nodes {
		if n.core != nil && !(lead != nil && lead.core.IsRemoved(n.m.ID)) {
			out = append(out, n)
		}
	}
	return out
}

// converged tells why the cluster has not converged yet (nil once it has).
func (c *xCluster) converged() error {
	lead := c.leader()
	if lead == nil {
		return errors.New("no leader")
	}
	if len(c.queue) > 0 {
		return errors.New("messages in flight")
	}
	want, _, _, err := lead.core.KV().HashKV(0)
	if err != nil {
		return fmt.Errorf("HashKV on %s: %v", lead.m.Name, err)
	}
	members := fmt.Sprint(lead.core.Members())
	for _, n := range c.live() {
		if n.core.Applied() != lead.core.Committed() {
			return fmt.Errorf("%s applied %d of the %d the leader %s committed", n.m.Name, n.core.Applied(), lead.core.Committed(), lead.m.Name)
		}
		h, _, _, err := n.core.KV().HashKV(0)
		if err != nil || h != want {
			return fmt.Errorf("HashKV %08x (%v) on %s, %08x on the leader %s", h, err, n.m.Name, want, lead.m.Name)
		}
		if ms := fmt.Sprint(n.core.Members()); ms != members {
			return fmt.Errorf("members %s on %s, %s on the leader %s", ms, n.m.Name, members, lead.m.Name)
		}
	}
	return nil
}

// settle ticks and delivers until the cluster converges.
func (c *xCluster) settle(maxTicks int) error {
	for i := 0; ; i++ {
		c.deliverAll()
		if c.err != nil {
			return c.err
		}
		why := c.converged()
		if why == nil {
			return nil
		}
		if i == maxTicks {
			return fmt.Errorf("the cluster did not converge in %d ticks: %v", maxTicks, why)
		}
		c.tick()
	}
}

// checkAcked checks that every acknowledged write and membership change
// is on every live member.
func (c *xCluster) checkAcked() error {
	for _, n := range c.live() {
		for key, val := range c.acked {
			res, err := n.core.KV().Range(&pb.RangeRequest{Key: []byte(key)})
			if err != nil {
				return fmt.Errorf("%s: reading %s: %v", n.m.Name, key, err)
			}
			if len(res.GetKvs()) != 1 || string(res.GetKvs()[0].GetValue()) != val {
				return fmt.Errorf("acknowledged write lost: %s does not hold the put of %s", n.m.Name, key)
			}
		}
		for _, cc := range c.ccAcked {
			typ, name, _ := strings.Cut(cc, " ")
			in := slices.ContainsFunc(n.core.Members(), func(m node.Member) bool { return m.Name == name })
			if in != (typ != raftpb.ConfChangeRemoveNode.String()) {
				return fmt.Errorf("acknowledged membership change lost: %s lists members %v after %s", n.m.Name, n.core.Members(), cc)
			}
		}
	}
	return nil
}

// xStep is one durable step, scripted: prepare brings a fresh cluster (n1
// leading) to the moment before it, step runs it; the power of the member
// victim is cut inside.
type xStep struct {
	name    string
	cfg     xConfig
	victim  int
	prepare func(c *xCluster) error
	step    func(c *xCluster) error
	// wantOps: each must begin one of the step's operations, which proves
	// the step does what its name says.
	wantOps []string
	// noBootstrap: prepare starts the cluster itself.
	noBootstrap bool
	// noRestartCuts: the restart is not cut (another step cuts the same
	// restart path: the leader's variant of a follower's step).
	noRestartCuts bool
	// finishesInstall: some crash points must leave a snapshot install
	// for the restart to finish (proof the restart's path is exercised).
	finishesInstall bool
}

// xPoint is one crash point: the victim's power cut at its k-th operation
// of the step (N+1: right after it), and, if restartCut > 0, again at that
// operation of its restart.
type xPoint struct {
	k, restartCut int
	tear          xTear
}

func (p xPoint) String() string {
	s := fmt.Sprintf("k=%d/%s", p.k, p.tear)
	if p.restartCut > 0 {
		s += fmt.Sprintf("/restart-cut=%d", p.restartCut)
	}
	return s
}

// xOutcome is what a run saw: the victim's operations during the step and
// during its (last) restart.
type xOutcome struct {
	ops, restartOps []string
	// cutInside: the power was cut during the step (not after it).
	cutInside bool
}

// runPoint runs st with the victim's power cut at p, and returns the
// first failure.
func runPoint(dir string, st xStep, p xPoint) (out xOutcome, err error) {
	c := newXCluster(dir, st.cfg, p.tear)
	defer func() {
		for _, n := range c.nodes {
			if n.core != nil {
				_ = n.core.Close()
			}
		}
	}()
	if !st.noBootstrap {
		if err := c.bootstrap(); err != nil {
			return out, fmt.Errorf("bootstrap: %w", err)
		}
	}
	if err := st.prepare(c); err != nil {
		return out, fmt.Errorf("prepare: %w", err)
	}
	if c.err != nil {
		return out, fmt.Errorf("prepare: %w", c.err)
	}
	v := c.nodes[st.victim]
	power := v.power
	power.arm(p.k)
	if err := st.step(c); err != nil {
		return out, fmt.Errorf("step: %w", err)
	}
	out.ops, out.cutInside = power.ops, power.fired
	if v.core != nil {
		c.crash(v) // the power cut right after the step
	}
	if c.err != nil {
		return out, c.err
	}
	// The restart, itself cut at restartCut if set: then restarted again.
	if p.restartCut > 0 {
		v.power.arm(p.restartCut)
	} else {
		v.power.arm(0)
	}
	restartPower := v.power
	err = c.startCut(v)
	out.restartOps = restartPower.ops
	if err == nil && restartPower.fired {
		err = v.start()
	}
	if err != nil {
		return out, fmt.Errorf("%s failed to restart: %w", v.m.Name, err)
	}
	v.power.armed = false
	c.process(v)
	if err := c.settle(300); err != nil {
		return out, err
	}
	return out, c.checkAcked()
}

// xSteps are the durable steps the tests cut through.
func xSteps() []xStep {
	small := xConfig{snapshotCount: 10_000, catchUp: 5_000, segmentSize: 32 << 10}
	putsThen := func(n int, size int) func(c *xCluster) error {
		return func(c *xCluster) error {
			for i := 0; i < n; i++ {
				if err := c.put(fmt.Sprintf("pre%d", i), size); err != nil {
					return err
				}
				if err := c.settleQuiet(i + 1); err != nil {
					return err
				}
			}
			return nil
		}
	}
	stepPut := func(size int) func(c *xCluster) error {
		return func(c *xCluster) error {
			if err := c.put("step", size); err != nil {
				return err
			}
			c.deliverAll()
			return nil
		}
	}
	stepCC := func(typ raftpb.ConfChangeType, idx int) func(c *xCluster) error {
		return func(c *xCluster) error {
			if err := c.confChange(typ, idx); err != nil {
				return err
			}
			c.deliverAll()
			return nil
		}
	}
	return []xStep{
		{
			// n2's very first start: its database and WAL created, the
			// cluster's first entries saved, while n1 and n3 elect n1.
			name: "bootstrap", cfg: small, victim: 1, noBootstrap: true,
			prepare: func(c *xCluster) error {
				for _, i := range []int{0, 2} {
					if err := c.nodes[i].start(); err != nil {
						return err
					}
				}
				return nil
			},
			step: func(c *xCluster) error {
				if err := c.startCut(c.nodes[1]); err != nil {
					return err
				}
				for _, n := range c.nodes[:3] {
					c.process(n)
				}
				if err := c.nodes[0].core.Campaign(); err != nil {
					return err
				}
				c.process(c.nodes[0])
				c.deliverAll()
				return c.put("step", 10)
			},
			wantOps: []string{"mkdir wal.tmp", "create 0000000000000000-0000000000000000.wal.tmp", "rename wal.tmp", "write 0000000000000000-0000000000000000.wal.tmp"},
		},
		{
			// A one-member cluster's first start: cut anywhere, the
			// member must come back, lead and serve.
			name: "bootstrap/single", cfg: xConfig{voters: 1, snapshotCount: 10_000, catchUp: 5_000, segmentSize: 32 << 10}, victim: 0, noBootstrap: true,
			prepare: func(c *xCluster) error { return nil },
			step: func(c *xCluster) error {
				if err := c.startCut(c.nodes[0]); err != nil || c.nodes[0].core == nil {
					return err
				}
				c.process(c.nodes[0])
				if c.nodes[0].core == nil {
					return nil
				}
				if err := c.nodes[0].core.Campaign(); err != nil {
					return err
				}
				c.process(c.nodes[0])
				if c.nodes[0].core == nil {
					return nil
				}
				return c.put("step", 10)
			},
			wantOps: []string{"mkdir wal.tmp", "rename wal.tmp", "write 0000000000000000-0000000000000000.wal.tmp"},
		},
		{
			// n4 was added as a learner; its first start (Config.Join)
			// creates its WAL, and the leader's heartbeat brings it the log.
			name: "join", cfg: small, victim: 3,
			prepare: func(c *xCluster) error {
				if err := c.confChange(raftpb.ConfChangeAddLearnerNode, 3); err != nil {
					return err
				}
				return c.settleQuiet(0)
			},
			step: func(c *xCluster) error {
				if err := c.startCut(c.nodes[3]); err != nil {
					return err
				}
				c.process(c.nodes[3])
				c.tick(c.nodes[0])
				c.deliverAll()
				return nil
			},
			wantOps: []string{"mkdir wal.tmp", "rename wal.tmp", "write 0000000000000000-0000000000000000.wal.tmp", "sync 0000000000000000-0000000000000000.wal.tmp"},
		},
		{
			name: "wal-save/follower", cfg: small, victim: 1,
			prepare: putsThen(2, 10), step: stepPut(10),
			wantOps: []string{"write 0000000000000000-0000000000000000.wal", "sync 0000000000000000-0000000000000000.wal"},
		},
		{
			name: "wal-save/leader", cfg: small, victim: 0, noRestartCuts: true,
			prepare: putsThen(2, 10), step: stepPut(10),
			wantOps: []string{"write 0000000000000000-0000000000000000.wal", "sync 0000000000000000-0000000000000000.wal"},
		},
		{
			// The step's entry does not fit in the 8 KiB segment: the save
			// syncs it, creates the next one (temporary name, preallocated,
			// header written and synced, renamed, directory synced), and
			// writes there.
			name: "wal-save/new-segment/follower", cfg: xConfig{snapshotCount: 10_000, catchUp: 5_000, segmentSize: 8 << 10}, victim: 1,
			prepare: putsThen(1, 3<<10), step: stepPut(6 << 10),
			wantOps: []string{"create 0000000000000001-0000000000000006.wal.tmp", "rename 0000000000000001-0000000000000006.wal.tmp", "syncdir wal"},
		},
		{
			name: "wal-save/new-segment/leader", cfg: xConfig{snapshotCount: 10_000, catchUp: 5_000, segmentSize: 8 << 10}, victim: 0, noRestartCuts: true,
			prepare: putsThen(1, 3<<10), step: stepPut(6 << 10),
			wantOps: []string{"create 0000000000000001-0000000000000006.wal.tmp", "rename 0000000000000001-0000000000000006.wal.tmp", "syncdir wal"},
		},
		{
			// The step's entry is the 6th applied: the member takes a raft
			// snapshot, saves its WAL marker and releases the segment the
			// snapshot covers (the entry itself cut a new segment).
			name: "wal-snapshot/snapshot-count/follower", cfg: xConfig{snapshotCount: 6, catchUp: 1, segmentSize: 8 << 10}, victim: 1,
			prepare: putsThen(1, 3<<10), step: stepPut(6 << 10),
			wantOps: []string{"rename 0000000000000001-0000000000000006.wal.tmp", "remove 0000000000000000-0000000000000000.wal"},
		},
		{
			name: "wal-snapshot/snapshot-count/leader", cfg: xConfig{snapshotCount: 6, catchUp: 1, segmentSize: 8 << 10}, victim: 0, noRestartCuts: true,
			prepare: putsThen(1, 3<<10), step: stepPut(6 << 10),
			wantOps: []string{"rename 0000000000000001-0000000000000006.wal.tmp", "remove 0000000000000000-0000000000000000.wal"},
		},
		{
			// n3 was cut off while the others went on and compacted their
			// logs: the leader's heartbeat finds it, and it must install a
			// snapshot (staged database and checksum written and synced,
			// directory synced, WAL marker, swap). Its restart after a cut
			// between the marker and the swap finishes the install, and is
			// cut at each of its operations too.
			name: "snapshot-install", cfg: xConfig{snapshotCount: 4, catchUp: 1, segmentSize: 32 << 10}, victim: 2,
			prepare: func(c *xCluster) error {
				c.cut[c.nodes[2].m.ID] = true
				if err := putsThen(6, 10)(c); err != nil {
					return err
				}
				delete(c.cut, c.nodes[2].m.ID)
				return nil
			},
			step: func(c *xCluster) error {
				c.tick(c.nodes[0])
				c.deliverAll()
				return nil
			},
			wantOps:         []string{"mkdir snap", "create 000000000000000a.snap.db.crc32c", "sync 000000000000000a.snap.db.crc32c", "create 000000000000000a.snap.db", "sync 000000000000000a.snap.db", "syncdir snap", "open 000000000000000a.snap.db"},
			finishesInstall: true,
		},
		{
			name: "conf-change/add-learner/follower", cfg: small, victim: 1,
			prepare: putsThen(1, 10), step: stepCC(raftpb.ConfChangeAddLearnerNode, 3),
			wantOps: []string{"write 0000000000000000-0000000000000000.wal", "sync 0000000000000000-0000000000000000.wal"},
		},
		{
			name: "conf-change/add-learner/leader", cfg: small, victim: 0, noRestartCuts: true,
			prepare: putsThen(1, 10), step: stepCC(raftpb.ConfChangeAddLearnerNode, 3),
			wantOps: []string{"write 0000000000000000-0000000000000000.wal", "sync 0000000000000000-0000000000000000.wal"},
		},
		{
			// n4 (never started) was added as a learner; the step promotes
			// it: four voters, three of them up before the cut.
			name: "conf-change/promote/follower", cfg: small, victim: 1,
			prepare: func(c *xCluster) error {
				if err := c.confChange(raftpb.ConfChangeAddLearnerNode, 3); err != nil {
					return err
				}
				return c.settleQuiet(0)
			},
			step:    stepCC(raftpb.ConfChangeAddNode, 3),
			wantOps: []string{"write 0000000000000000-0000000000000000.wal", "sync 0000000000000000-0000000000000000.wal"},
		},
		transferStep("leader-transfer/voter", small, 2),
		transferStep("leader-transfer/candidate", small, 1),
		forceStep("force-new-cluster", small, true),
		forceStep("force-new-cluster/flag-kept", small, false),
		{
			name: "conf-change/remove/follower", cfg: small, victim: 1,
			prepare: putsThen(1, 10), step: stepCC(raftpb.ConfChangeRemoveNode, 2),
			wantOps: []string{"write 0000000000000000-0000000000000000.wal", "sync 0000000000000000-0000000000000000.wal"},
		},
	}
}

// transferStep: n1 hands the leadership to n2, which campaigns at once:
// it saves its new term and its vote for itself, n3 saves its vote for n2
// before granting it (a hard state alone, synced), then n2 leads and
// serves a put. victim is n3 (the voter) or n2 (the candidate).
func transferStep(name string, cfg xConfig, victim int) xStep {
	return xStep{
		name: name, cfg: cfg, victim: victim,
		prepare: func(c *xCluster) error {
			if err := c.put("pre0", 10); err != nil {
				return err
			}
			return c.settleQuiet(1)
		},
		step: func(c *xCluster) error {
			c.nodes[0].core.TransferLeadership(c.nodes[1].m.ID)
			c.process(c.nodes[0])
			c.deliverAll()
			if c.nodes[1].core == nil || !c.nodes[1].core.IsLeader() {
				return nil // the candidate's power was cut
			}
			if err := c.put("step", 10); err != nil {
				return err
			}
			c.deliverAll()
			return nil
		},
		wantOps: []string{"write 0000000000000000-0000000000000000.wal", "sync 0000000000000000-0000000000000000.wal"},
	}
}

// forceStep: the whole cluster stopped; n1 restarts with
// --force-new-cluster: its log gets conf changes removing the others, saved
// before raft starts; it elects itself and serves. Its restart after a cut
// that came before it led forces again (the operator tries again); after,
// only if the operator keeps the flag (dropFlag false): then the restart
// must keep the writes the lone voter acknowledged above its synced commit
// index (node/forcenew.go).
func forceStep(name string, cfg xConfig, dropFlag bool) xStep {
	return xStep{
		name: name, cfg: cfg, victim: 0,
		prepare: func(c *xCluster) error {
			for i := 0; i < 2; i++ {
				if err := c.put(fmt.Sprintf("pre%d", i), 10); err != nil {
					return err
				}
				if err := c.settleQuiet(i + 1); err != nil {
					return err
				}
			}
			for _, n := range c.nodes[:3] {
				if err := n.core.Close(); err != nil {
					return err
				}
				n.core = nil
			}
			c.queue = nil
			return nil
		},
		step: func(c *xCluster) error {
			n1 := c.nodes[0]
			n1.forceNew = true
			if err := c.startCut(n1); err != nil || n1.core == nil {
				return err
			}
			c.process(n1)
			for i := 0; i < 40 && n1.core != nil && !n1.core.IsLeader(); i++ {
				c.tick(n1)
			}
			if n1.core == nil {
				return nil
			}
			if !n1.core.IsLeader() {
				return errors.New("n1 did not lead its new cluster in 40 ticks")
			}
			n1.forceNew = !dropFlag
			return c.put("step", 10)
		},
		wantOps: []string{"open-rw 0000000000000000-0000000000000000.wal", "write 0000000000000000-0000000000000000.wal", "sync 0000000000000000-0000000000000000.wal"},
	}
}

// xTempDir is a directory for one run's databases, in memory (/dev/shm)
// where the machine has it: a run opens bbolt files a dozen times, and
// their fsyncs on a real disk would be most of the tests' time.
func xTempDir(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "cairn-exhaustive-"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// exhaust runs every crash point of st and returns the failures found,
// after checking that the step's operations include its wantOps. With
// stopAtFirst it returns at the first failure.
func exhaust(t *testing.T, st xStep, stopAtFirst bool) (stats xStats, failures []string) {
	t.Helper()
	count, err := runPoint(xTempDir(t), st, xPoint{k: 0})
	if err != nil {
		return stats, []string{fmt.Sprintf("%s: the counting run (its power cut right after the step): %v", st.name, err)}
	}
	n := len(count.ops)
	for _, want := range st.wantOps {
		if !slices.ContainsFunc(count.ops, func(op string) bool { return strings.HasPrefix(op, want) }) {
			t.Fatalf("%s: the step's operations %v have no %q", st.name, count.ops, want)
		}
	}
	t.Logf("%s: %d operations: %s", st.name, n, strings.Join(count.ops, ", "))
	var points []xPoint
	for k := 1; k <= n+1; k++ {
		for _, tear := range xTears {
			points = append(points, xPoint{k: k, tear: tear})
		}
	}
	finished := 0 // restarts that finished an interrupted snapshot install
	for i := 0; i < len(points); i++ {
		p := points[i]
		out, err := runPoint(xTempDir(t), st, p)
		// The runs are deterministic up to the cut: the same operations
		// as the uncut run's, and the cut where it was asked for.
		if p.restartCut == 0 && (len(out.ops) < min(p.k, n) || !slices.Equal(out.ops[:min(p.k, n)], count.ops[:min(p.k, n)]) || out.cutInside != (p.k <= n)) {
			t.Fatalf("%s %s: the run's operations %v (cut inside: %v) are not the uncut run's %v up to the cut", st.name, p, out.ops, out.cutInside, count.ops)
		}
		if slices.ContainsFunc(out.restartOps, func(op string) bool { return strings.HasPrefix(op, "open ") && strings.HasSuffix(op, ".snap.db") }) {
			finished++
		}
		if repairedTail(out.restartOps) {
			stats.repairs++
		}
		if p.restartCut > 0 {
			stats.restartCuts++
		}
		if err != nil {
			op := "after the step"
			if p.k <= len(out.ops) {
				op = out.ops[p.k-1]
			}
			if p.restartCut > 0 && p.restartCut <= len(out.restartOps) {
				op += ", its restart at " + out.restartOps[p.restartCut-1]
			}
			failures = append(failures, fmt.Sprintf("%s %s (cut at %q): %v", st.name, p, op, err))
			if stopAtFirst {
				return stats, failures
			}
			continue
		}
		// The restart is cut at each of its operations too (without a
		// torn write; with one in the snapshot install), unless it is a
		// first start again (the crash came before the WAL existed),
		// which the bootstrap and join steps cut through already.
		firstStart := slices.Contains(out.restartOps, "mkdir wal.tmp")
		if p.restartCut == 0 && !firstStart && !st.noRestartCuts && (p.tear == xTears[0] || st.finishesInstall && p.tear == xTears[1]) {
			for j := 1; j <= len(out.restartOps); j++ {
				points = append(points, xPoint{k: p.k, restartCut: j, tear: p.tear})
			}
		}
	}
	stats.points = len(points)
	t.Logf("%s: %d crash points (%d of them in the restart), %d restarts repaired a torn WAL tail", st.name, len(points), stats.restartCuts, stats.repairs)
	if st.finishesInstall {
		t.Logf("%s: %d restarts finished an interrupted snapshot install", st.name, finished)
		if finished == 0 && len(failures) == 0 {
			t.Fatalf("%s: no crash point left a snapshot install for the restart to finish", st.name)
		}
	}
	return stats, failures
}

// repairedTail tells whether a restart's operations repaired a torn WAL
// tail: the last segment opened for writing, then truncated.
func repairedTail(ops []string) bool {
	for i, op := range ops {
		if name, ok := strings.CutPrefix(op, "open-rw "); ok && slices.Contains(ops[i:], "truncate "+name) {
			return true
		}
	}
	return false
}

// xStats counts what an exhaustive run did: its crash points, those cut
// in the restart, and the restarts that repaired a torn WAL tail.
type xStats struct{ points, restartCuts, repairs int }

// TestCrashInsideEveryDurableStep cuts a member's power at every disk
// operation of every durable step (see the top of this file).
func TestCrashInsideEveryDurableStep(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	var total xStats
	for _, st := range xSteps() {
		t.Run(st.name, func(t *testing.T) {
			stats, failures := exhaust(t, st, false)
			for _, f := range failures {
				t.Error(f)
			}
			total.points += stats.points
			total.restartCuts += stats.restartCuts
			total.repairs += stats.repairs
		})
	}
	t.Logf("%d crash points, %d of them in a restart; %d restarts repaired a torn WAL tail", total.points, total.restartCuts, total.repairs)
	if !t.Failed() && (total.restartCuts == 0 || total.repairs == 0) {
		t.Fatalf("no restart was cut (%d) or none repaired a torn WAL tail (%d): the tests lost their reach", total.restartCuts, total.repairs)
	}
}
