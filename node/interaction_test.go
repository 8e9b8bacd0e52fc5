package node

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/cockroachdb/datadriven"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/transport"
	"github.com/cairnkv/cairn/v2store"
	"github.com/cairnkv/cairn/vfs"
)

// TestInteraction runs the scripts in testdata/interaction: a
// deterministic, scriptable harness around node.Core in the style of
// go.etcd.io/raft's interaction tests. Every member is a real Core over a
// vfs.MemFS WAL, a bbolt file in a temp dir, one shared clock.Fake and an
// in-memory transport that queues what the cores send until the script
// delivers it. raft's randomness (election timeouts) comes from crypto/rand,
// made deterministic per script with cryptotest.SetGlobalRandom.
//
// Regenerate the expected output with
//
//	go test ./node -run TestInteraction -rewrite
//
// and read the diff before committing it.
//
// Members are named n1, n2, ...; commands name them so. Commands:
//
//	seed N
//	    Reseeds the randomness (default 1), before add-nodes.
//	add-nodes N [election=10] [snapshot-count=N] [catch-up=N]
//	          [batch-interval=DUR] [batch-limit=N]       (alias: bootstrap)
//	    Bootstraps a new cluster of N voters n1..nN (once per script; the
//	    options apply to every member, later joiners included).
//	campaign NODE
//	transfer-leadership NODE to=NODE
//	tick [NODE...] [n=K]
//	    K times: advance the clock one tick interval (100ms), then Tick each
//	    named member (default: every running member). Nothing is processed.
//	advance-clock DUR
//	    Moves the shared clock without ticking raft.
//	process [NODE...]
//	    Runs Core.Process on each named member (default: all running) while it
//	    has something ready (at most 10 times), and shows the outcome: the
//	    hard state and role if they changed, the log entries saved, a
//	    snapshot installed (from a leader's MsgSnap) or taken (every
//	    snapshot-count entries), the messages sent, the entries applied
//	    (Config.OnApply), entries replayed at or below the consistent index
//	    without being applied, what waiters, reads and keep-alives were told,
//	    and the error if the core stopped.
//	deliver [from=NODE] [to=NODE] [type=MsgType] [n=K]
//	    Steps queued messages matching the filter into their recipients, in
//	    the order they were sent. A message to a member that is down, or
//	    across a cut link, is dropped. A MsgSnap's outcome is reported back
//	    to its sender (ReportSnapshot), as the transport does; it carries the
//	    leader's database, installed when the recipient next processes.
//	drop [from=NODE] [to=NODE] [type=MsgType] [n=K]
//	    Discards matching queued messages.
//	dup [from=NODE] [to=NODE] [type=MsgType] [n=K]
//	    Duplicates matching queued messages (the copy follows its original).
//	msgs
//	    Lists the queued messages.
//	stabilize [NODE...]
//	    Processes and delivers until nothing is ready and no message is
//	    queued (messages to or from other members wait).
//	propose NODE put KEY VALUE [lease=ID]
//	propose NODE delete KEY [end=KEY]
//	propose NODE txn            (input: "cmp value|version|mod|create KEY =|!=|<|> VAL",
//	                             "then put K V", "then delete K", "else ...")
//	propose NODE grant id=ID ttl=SECONDS
//	propose NODE revoke id=ID
//	propose NODE compact rev=REV
//	    Core.Propose; the result reaches the waiter in a later process.
//	keepalive NODE id=ID
//	    Core.LeaseRenew.
//	read-index NODE [key=KEY]
//	    Core.ReadIndex; once answered, KEY is read from the member's store.
//	add-member NODE NEW [learner]    promote-member NODE NEW    remove-member NODE OLD
//	    Core.ProposeConfChange on NODE. add-member makes NEW known to the
//	    harness; `start NEW` then starts it with Config.Join.
//	start NODE   restart NODE
//	    Starts a member that is not running (a joiner's first start, or a
//	    restart from its WAL and database).
//	crash NODE
//	    A power cut (Core.Crash): waiters and reads fail with ErrStopped, the
//	    database's open batch is lost (mvcc Abandon) and the WAL keeps only
//	    the bytes it synced (vfs.MemFS.Crash, no torn write). Messages already
//	    queued to or from the member stay queued.
//	partition NODE...   heal
//	    Cuts every link between the named members and the other members
//	    known now (partitions add up); heal restores every link. A message over a cut link is dropped when it is sent
//	    or, if it was queued before the cut, when it is delivered.
//	status [NODE...]
//	    Each member's raft role, term, leader, commit, applied index, the
//	    database's consistent index, snapshot and log bounds, revision,
//	    members, keys and leases.
//	raft-log NODE
//	progress NODE
//	    The member's raft log entries; the leader's view of its followers.
//
// Request, read and keep-alive labels (p1, r1, k1) count from 1 in each
// script; raft messages and entries name members, not their IDs.
func TestInteraction(t *testing.T) {
	datadriven.Walk(t, filepath.Join("testdata", "interaction"), func(t *testing.T, path string) {
		cryptotest.SetGlobalRandom(t, 1)
		env := newIHEnv(t)
		defer env.close()
		datadriven.RunTest(t, path, env.handle)
	})
}

const (
	ihToken = "interaction"
	ihTick  = 100 * time.Millisecond
)

type ihConfig struct {
	election      int
	snapshotCount uint64
	catchUp       uint64
	batchInterval time.Duration
	batchLimit    int
}

// ihEnv is one script's cluster.
type ihEnv struct {
	t       *testing.T
	clk     *clock.Fake
	cfg     ihConfig
	nodes   []*ihNode
	byID    map[uint64]*ihNode
	initial []Member
	queue   []*raftpb.Message
	cut     map[[2]uint64]bool

	// labels of request IDs (p1...), and counters of reads and keep-alives.
	reqs         map[uint64]string
	nreq         int
	nread, nkeep int

	events []ihEvent
	// results holds what waiters were told until the entry's apply is
	// shown (the core answers the waiter before OnApply sees the entry).
	results []ihEvent
}

type ihEvent struct {
	node string // the member it happened on
	text string
}

type ihNode struct {
	env  *ihEnv
	name string
	id   uint64
	m    Member
	join bool // added at run time: its first start joins
	core *Core
	fs   *vfs.MemFS
	dir  string
	// applies counts OnApply calls during one process.
	applies int
}

func newIHEnv(t *testing.T) *ihEnv {
	return &ihEnv{
		t:    t,
		clk:  clock.NewFake(time.Unix(1_700_000_000, 0)),
		byID: map[uint64]*ihNode{},
		cut:  map[[2]uint64]bool{},
		reqs: map[uint64]string{},
	}
}

func (e *ihEnv) close() {
	for _, n := range e.nodes {
		if n.core != nil {
			_ = n.core.Close()
			n.core = nil
		}
	}
}

// ihTransport queues what a core sends; deliver hands it over.
type ihTransport struct{ n *ihNode }

// SendSnapshot queues m with its database read into its data.
func (tr ihTransport) SendSnapshot(m *raftpb.Message, db SnapshotBody) {
	var buf bytes.Buffer
	_, err := db.WriteTo(&buf)
	_ = db.Close()
	if err != nil {
		panic(fmt.Sprintf("reading a snapshot database: %v", err))
	}
	m.Snapshot.Data = buf.Bytes()
	tr.Send([]*raftpb.Message{m})
}

func (tr ihTransport) Send(msgs []*raftpb.Message) {
	e := tr.n.env
	for _, m := range msgs {
		cp := proto.Clone(m).(*raftpb.Message)
		// A MsgSnap is queued anyway: deliver drops it and reports the
		// failure to its sender, which cannot be done from inside Send.
		if e.cut[[2]uint64{cp.GetFrom(), cp.GetTo()}] && cp.GetType() != raftpb.MsgSnap {
			e.emit(tr.n, "send: %s (dropped: partitioned)", e.describeMsg(cp))
			continue
		}
		e.queue = append(e.queue, cp)
		e.emit(tr.n, "send: %s", e.describeMsg(cp))
	}
}
func (ihTransport) AddPeer(uint64, []string)    {}
func (ihTransport) RemovePeer(uint64)           {}
func (ihTransport) UpdatePeer(uint64, []string) {}
func (ihTransport) Close() error                { return nil }

func (e *ihEnv) emit(n *ihNode, format string, args ...any) {
	e.events = append(e.events, ihEvent{node: n.name, text: fmt.Sprintf(format, args...)})
}

// flush renders and clears the events. Those of member self are indented
// under its heading; others carry their member's name.
func (e *ihEnv) flush(b *strings.Builder, self string) {
	e.events = append(e.events, e.results...)
	e.results = nil
	for _, ev := range e.events {
		if ev.node == self {
			fmt.Fprintf(b, "  %s\n", ev.text)
		} else {
			fmt.Fprintf(b, "%s: %s\n", ev.node, ev.text)
		}
	}
	e.events = nil
}

func (e *ihEnv) newNode(name string, join bool) *ihNode {
	urls := []string{"http://" + name}
	n := &ihNode{env: e, name: name, id: MemberID(urls, ihToken), join: join, fs: vfs.NewMem(), dir: filepath.Join(e.t.TempDir(), name)}
	n.m = Member{ID: n.id, Name: name, PeerURLs: urls}
	e.nodes = append(e.nodes, n)
	e.byID[n.id] = n
	return n
}

func (e *ihEnv) name(id uint64) string {
	if id == 0 {
		return "none"
	}
	if n, ok := e.byID[id]; ok {
		return n.name
	}
	return fmt.Sprintf("%x", id)
}

func (e *ihEnv) node(t *testing.T, d *datadriven.TestData, name string) *ihNode {
	for _, n := range e.nodes {
		if n.name == name {
			return n
		}
	}
	d.Fatalf(t, "no member %q", name)
	return nil
}

func (e *ihEnv) clusterID() uint64 {
	for _, n := range e.nodes {
		if n.core != nil {
			return n.core.ClusterID()
		}
	}
	ids := make([]uint64, 0, len(e.initial))
	for _, m := range e.initial {
		ids = append(ids, m.ID)
	}
	return ClusterID(ids, ihToken)
}

func (n *ihNode) start() error {
	e := n.env
	cfg := Config{
		Name:                   n.name,
		ID:                     n.id,
		ClusterToken:           ihToken,
		InitialMembers:         e.initial,
		DataDir:                n.dir,
		WALFS:                  n.fs,
		WALSegmentSize:         256 << 10,
		Transport:              ihTransport{n},
		Clock:                  e.clk,
		ElectionTicks:          e.cfg.election,
		HeartbeatTicks:         1,
		TickInterval:           ihTick,
		SnapshotCount:          e.cfg.snapshotCount,
		SnapshotCatchUpEntries: e.cfg.catchUp,
		BackendBatchInterval:   e.cfg.batchInterval,
		BackendBatchLimit:      e.cfg.batchLimit,
		BackendNoSync:          true,
		OnApply:                n.onApply,
	}
	if n.join {
		cfg.Join = true
		cfg.ClusterID = e.clusterID()
	}
	c, err := NewCore(cfg)
	if err != nil {
		return err
	}
	n.core = c
	return nil
}

func (n *ihNode) onApply(ent *raftpb.Entry) {
	n.applies++
	n.env.emit(n, "apply: %s", n.env.describeEntry(ent))
	n.env.events = append(n.env.events, n.env.results...)
	n.env.results = nil
}

// positional returns the command's arguments that have no value.
func positional(d *datadriven.TestData) []string {
	var out []string
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 {
			out = append(out, a.Key)
		}
	}
	return out
}

func argOr(t *testing.T, d *datadriven.TestData, key string, def string) string {
	if !d.HasArg(key) {
		return def
	}
	var s string
	d.ScanArgs(t, key, &s)
	return s
}

func intArg(t *testing.T, d *datadriven.TestData, key string, def int64) int64 {
	s := argOr(t, d, key, "")
	if s == "" {
		return def
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d.Fatalf(t, "%s: %v", key, err)
	}
	return v
}

// nodesArg returns the members named positionally, or every member.
func (e *ihEnv) nodesArg(t *testing.T, d *datadriven.TestData, args []string) []*ihNode {
	if len(args) == 0 {
		return e.nodes
	}
	out := make([]*ihNode, 0, len(args))
	for _, a := range args {
		out = append(out, e.node(t, d, a))
	}
	return out
}

func (e *ihEnv) handle(t *testing.T, d *datadriven.TestData) string {
	var b strings.Builder
	args := positional(d)
	switch d.Cmd {
	case "seed":
		// Before add-nodes: reseeds raft's randomness (election timeouts).
		if len(args) != 1 {
			d.Fatalf(t, "seed N")
		}
		seed, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil {
			d.Fatalf(t, "%v", err)
		}
		cryptotest.SetGlobalRandom(t, seed)
	case "add-nodes", "bootstrap":
		e.addNodes(t, d, args, &b)
	case "campaign":
		n := e.running(t, d, args)
		if err := n.core.Campaign(); err != nil {
			fmt.Fprintf(&b, "%s: campaign: %v\n", n.name, err)
		}
	case "transfer-leadership":
		n := e.running(t, d, args)
		n.core.TransferLeadership(e.node(t, d, argOr(t, d, "to", "")).id)
	case "tick":
		e.tick(t, d, args)
	case "advance-clock":
		if len(args) != 1 {
			d.Fatalf(t, "advance-clock DURATION")
		}
		dur, err := time.ParseDuration(args[0])
		if err != nil {
			d.Fatalf(t, "%v", err)
		}
		e.clk.Advance(dur)
	case "process":
		for _, n := range e.nodesArg(t, d, args) {
			e.process(n, &b)
		}
	case "deliver", "drop", "dup":
		e.filterMsgs(t, d, &b)
	case "msgs":
		for _, m := range e.queue {
			fmt.Fprintf(&b, "%s\n", e.describeMsg(m))
		}
	case "stabilize":
		e.stabilize(t, d, args, &b)
	case "propose":
		e.propose(t, d, args)
	case "keepalive":
		e.keepalive(t, d, args)
	case "read-index":
		e.readIndex(t, d, args)
	case "add-member", "promote-member", "remove-member":
		e.confChange(t, d, args)
	case "start", "restart":
		if len(args) != 1 {
			d.Fatalf(t, "%s NODE", d.Cmd)
		}
		n := e.node(t, d, args[0])
		if n.core != nil {
			d.Fatalf(t, "%s is running", n.name)
		}
		if err := n.start(); err != nil {
			fmt.Fprintf(&b, "%s: start: %v\n", n.name, err)
		}
	case "crash":
		n := e.running(t, d, args)
		n.core.Crash()
		n.core = nil
		n.fs = n.fs.Crash(nil, false)
	case "partition":
		group := map[uint64]bool{}
		for _, n := range e.nodesArg(t, d, args) {
			group[n.id] = true
		}
		for _, a := range e.nodes {
			for _, z := range e.nodes {
				if group[a.id] != group[z.id] {
					e.cut[[2]uint64{a.id, z.id}] = true
				}
			}
		}
	case "heal":
		clear(e.cut)
	case "status":
		for _, n := range e.nodesArg(t, d, args) {
			e.status(n, &b)
		}
	case "v2-get":
		// v2-get NODE PATH: the member's v2 tree under PATH, recursive.
		n := e.running(t, d, args)
		if len(args) != 2 {
			d.Fatalf(t, "v2-get NODE PATH")
		}
		ev, err := n.core.V2().Get(args[1], true, true)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", n.name, err)
			break
		}
		js, _ := json.Marshal(ev.Node)
		fmt.Fprintf(&b, "%s: index=%d %s\n", n.name, ev.EtcdIndex, js)
	case "raft-log":
		e.raftLog(e.running(t, d, args), &b)
	case "progress":
		e.progress(e.running(t, d, args), &b)
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	e.flush(&b, "")
	if b.Len() == 0 {
		return "ok\n"
	}
	return b.String()
}

// running returns the member named by the first positional argument, which
// must be running.
func (e *ihEnv) running(t *testing.T, d *datadriven.TestData, args []string) *ihNode {
	if len(args) == 0 {
		d.Fatalf(t, "%s needs a member", d.Cmd)
	}
	n := e.node(t, d, args[0])
	if n.core == nil {
		d.Fatalf(t, "%s is down", n.name)
	}
	return n
}

func (e *ihEnv) addNodes(t *testing.T, d *datadriven.TestData, args []string, b *strings.Builder) {
	if len(e.nodes) > 0 {
		d.Fatalf(t, "%s runs once per script", d.Cmd)
	}
	if len(args) != 1 {
		d.Fatalf(t, "%s N", d.Cmd)
	}
	count, err := strconv.Atoi(args[0])
	if err != nil {
		d.Fatalf(t, "%v", err)
	}
	e.cfg = ihConfig{
		election:      int(intArg(t, d, "election", 10)),
		snapshotCount: uint64(intArg(t, d, "snapshot-count", 0)),
		catchUp:       uint64(intArg(t, d, "catch-up", 0)),
		batchLimit:    int(intArg(t, d, "batch-limit", 0)),
	}
	if s := argOr(t, d, "batch-interval", ""); s != "" {
		if e.cfg.batchInterval, err = time.ParseDuration(s); err != nil {
			d.Fatalf(t, "%v", err)
		}
	}
	for i := 1; i <= count; i++ {
		n := e.newNode(fmt.Sprintf("n%d", i), false)
		e.initial = append(e.initial, n.m)
	}
	for _, n := range e.nodes {
		if err := n.start(); err != nil {
			d.Fatalf(t, "starting %s: %v", n.name, err)
		}
		fmt.Fprintf(b, "%s: bootstrapped; voters %s\n", n.name, e.names(n.core.Status().Config.Voters.IDs()))
	}
}

func (e *ihEnv) names(ids map[uint64]struct{}) string {
	var ns []string
	for id := range ids {
		ns = append(ns, e.name(id))
	}
	sort.Strings(ns)
	return "[" + strings.Join(ns, " ") + "]"
}

func (e *ihEnv) tick(t *testing.T, d *datadriven.TestData, args []string) {
	nodes := e.nodesArg(t, d, args)
	for i := int64(0); i < intArg(t, d, "n", 1); i++ {
		e.clk.Advance(ihTick)
		for _, n := range nodes {
			if n.core != nil {
				n.core.Tick()
			}
		}
	}
}

// ihObs is what process compares before and after.
type ihObs struct {
	hs        *raftpb.HardState
	lead      uint64
	role      raft.StateType
	log       map[uint64]uint64 // index -> term
	snapIndex uint64
	installed uint64
	first     uint64
	applied   uint64
	ci        uint64 // the database's consistent index
}

func observe(c *Core) ihObs {
	hs, _, _ := c.storage.InitialState()
	o := ihObs{hs: proto.Clone(hs).(*raftpb.HardState), lead: c.lead, role: c.role, log: map[uint64]uint64{}, snapIndex: c.snapIndex, installed: c.snapshotsInstalled, applied: c.applied}
	o.first, _ = c.storage.FirstIndex()
	o.ci, _ = c.KV().ConsistentIndex()
	for _, ent := range storedEntries(c) {
		o.log[ent.GetIndex()] = ent.GetTerm()
	}
	return o
}

func storedEntries(c *Core) []*raftpb.Entry {
	first, _ := c.storage.FirstIndex()
	last, _ := c.storage.LastIndex()
	if last < first {
		return nil
	}
	ents, err := c.storage.Entries(first, last+1, math.MaxUint64)
	if err != nil {
		return nil
	}
	return ents
}

func (e *ihEnv) describeHardState(hs *raftpb.HardState) string {
	return fmt.Sprintf("Term:%d Vote:%s Commit:%d", hs.GetTerm(), e.name(hs.GetVote()), hs.GetCommit())
}

// process runs n's Process while it has something ready and renders the
// outcome under a heading.
func (e *ihEnv) process(n *ihNode, b *strings.Builder) bool {
	if n.core == nil || !n.core.HasReady() {
		return false
	}
	// Events from earlier (another member's) go first.
	e.flush(b, "")
	c := n.core
	before := observe(c)
	n.applies = 0
	var err error
	for i := 0; i < 10 && c.HasReady() && err == nil; i++ {
		err = c.Process()
	}
	after := observe(c)
	fmt.Fprintf(b, "> %s process\n", n.name)
	if !proto.Equal(before.hs, after.hs) {
		fmt.Fprintf(b, "  hardstate: %s\n", e.describeHardState(after.hs))
	}
	if before.role != after.role || before.lead != after.lead {
		fmt.Fprintf(b, "  role: %s, leader %s\n", after.role, e.name(after.lead))
	}
	if after.installed > before.installed {
		snap, _ := c.storage.Snapshot()
		fmt.Fprintf(b, "  installed snapshot: %s\n", e.describeSnapMeta(snap.GetMetadata()))
	} else if after.snapIndex > before.snapIndex {
		fmt.Fprintf(b, "  took snapshot: index %d; log now starts at %d\n", after.snapIndex, after.first)
	}
	for _, ent := range storedEntries(c) {
		if term, ok := before.log[ent.GetIndex()]; !ok || term != ent.GetTerm() {
			fmt.Fprintf(b, "  save: %s\n", e.describeEntry(ent))
		}
	}
	if skipped := after.applied - before.applied - uint64(n.applies); after.installed == before.installed && skipped > 0 {
		fmt.Fprintf(b, "  replayed without applying: %d entries, at or below the consistent index %d\n", skipped, before.ci)
	}
	e.flush(b, n.name)
	if err != nil {
		fmt.Fprintf(b, "  stopped: %v\n", err)
	}
	return true
}

type ihFilter struct {
	from, to uint64
	typ      string
}

func (e *ihEnv) parseFilter(t *testing.T, d *datadriven.TestData) ihFilter {
	var f ihFilter
	if s := argOr(t, d, "from", ""); s != "" {
		f.from = e.node(t, d, s).id
	}
	if s := argOr(t, d, "to", ""); s != "" {
		f.to = e.node(t, d, s).id
	}
	f.typ = argOr(t, d, "type", "")
	if f.typ != "" {
		if _, ok := raftpb.MessageType_value[f.typ]; !ok {
			d.Fatalf(t, "unknown message type %q", f.typ)
		}
	}
	return f
}

func (f ihFilter) match(m *raftpb.Message) bool {
	return (f.from == 0 || m.GetFrom() == f.from) && (f.to == 0 || m.GetTo() == f.to) &&
		(f.typ == "" || m.GetType().String() == f.typ)
}

func (e *ihEnv) filterMsgs(t *testing.T, d *datadriven.TestData, b *strings.Builder) {
	f := e.parseFilter(t, d)
	limit := int(intArg(t, d, "n", math.MaxInt))
	var matched, rest []*raftpb.Message
	for _, m := range e.queue {
		if len(matched) < limit && f.match(m) {
			matched = append(matched, m)
			if d.Cmd == "dup" {
				rest = append(rest, m, proto.Clone(m).(*raftpb.Message))
			}
			continue
		}
		rest = append(rest, m)
	}
	e.queue = rest
	switch d.Cmd {
	case "deliver":
		e.deliver(matched, b)
	case "drop":
		for _, m := range matched {
			fmt.Fprintf(b, "dropped: %s\n", e.describeMsg(m))
		}
	case "dup":
		for _, m := range matched {
			fmt.Fprintf(b, "duplicated: %s\n", e.describeMsg(m))
		}
	}
}

// deliver steps msgs into their recipients, in order.
func (e *ihEnv) deliver(msgs []*raftpb.Message, b *strings.Builder) {
	for _, m := range msgs {
		from, to := e.byID[m.GetFrom()], e.byID[m.GetTo()]
		desc := e.describeMsg(m)
		var err error
		switch {
		case to == nil || to.core == nil:
			fmt.Fprintf(b, "%s (dropped: recipient down)\n", desc)
			err = ErrStopped
		case e.cut[[2]uint64{m.GetFrom(), m.GetTo()}]:
			fmt.Fprintf(b, "%s (dropped: partitioned)\n", desc)
			err = ErrStopped
		default:
			fmt.Fprintf(b, "%s\n", desc)
			if m.GetType() == raftpb.MsgSnap {
				// As the production shell does: the database is staged on
				// the recipient's disk, the message names it.
				if _, err := StageSnapshot(to.dir, m.GetSnapshot().GetMetadata().GetIndex(), bytes.NewReader(m.GetSnapshot().GetData())); err != nil {
					panic(err)
				}
				m = proto.Clone(m).(*raftpb.Message)
				m.Snapshot.Data = StagedSnapshotData
			}
			if err = to.core.Step(m); err != nil {
				fmt.Fprintf(b, "  step: %v\n", err)
			}
		}
		if m.GetType() == raftpb.MsgSnap && from != nil && from.core != nil {
			st := raft.SnapshotFinish
			if err != nil {
				st = raft.SnapshotFailure
			}
			from.core.ReportSnapshot(m.GetTo(), st)
		}
		e.flush(b, "")
	}
}

func (e *ihEnv) stabilize(t *testing.T, d *datadriven.TestData, args []string, b *strings.Builder) {
	nodes := e.nodesArg(t, d, args)
	in := map[uint64]bool{}
	for _, n := range nodes {
		in[n.id] = true
	}
	for round := 0; ; round++ {
		if round == 100 {
			var q []string
			for _, m := range e.queue[:min(len(e.queue), 10)] {
				q = append(q, e.describeMsg(m))
			}
			d.Fatalf(t, "stabilize: not stable after 100 rounds; queued now:\n%s", strings.Join(q, "\n"))
		}
		busy := false
		for _, n := range nodes {
			if e.process(n, b) {
				busy = true
			}
		}
		var now, rest []*raftpb.Message
		for _, m := range e.queue {
			if in[m.GetFrom()] && in[m.GetTo()] {
				now = append(now, m)
			} else {
				rest = append(rest, m)
			}
		}
		e.queue = rest
		if len(now) > 0 {
			busy = true
			fmt.Fprintf(b, "> deliver\n")
			var sub strings.Builder
			e.deliver(now, &sub)
			for _, line := range strings.SplitAfter(sub.String(), "\n") {
				if line != "" {
					b.WriteString("  " + line)
				}
			}
		}
		if !busy {
			return
		}
	}
}

// waiter returns a Propose callback that reports the result under label.
func (e *ihEnv) waiter(n *ihNode, label *string) func(Result) {
	return func(r Result) {
		e.results = append(e.results, ihEvent{node: n.name, text: fmt.Sprintf("result %s: %s", *label, describeResult(r))})
	}
}

func describeResult(r Result) string {
	if r.Err != nil {
		return "error: " + r.Err.Error()
	}
	if ev := r.V2; ev != nil {
		return fmt.Sprintf("v2 %s %s index=%d", ev.Action, ev.Node.Key, ev.EtcdIndex)
	}
	switch resp := r.Resp.(type) {
	case nil:
		return fmt.Sprintf("ok (index %d)", r.Index)
	case *pb.PutResponse:
		return fmt.Sprintf("put rev=%d", resp.GetHeader().GetRevision())
	case *pb.DeleteRangeResponse:
		return fmt.Sprintf("deleted %d rev=%d", resp.GetDeleted(), resp.GetHeader().GetRevision())
	case *pb.TxnResponse:
		return fmt.Sprintf("txn succeeded=%t rev=%d", resp.GetSucceeded(), resp.GetHeader().GetRevision())
	case *pb.LeaseGrantResponse:
		return fmt.Sprintf("lease %d granted ttl=%d", resp.GetID(), resp.GetTTL())
	case *pb.LeaseRevokeResponse:
		return fmt.Sprintf("lease revoked rev=%d", resp.GetHeader().GetRevision())
	case *pb.CompactionResponse:
		return fmt.Sprintf("compacted rev=%d", resp.GetHeader().GetRevision())
	default:
		return fmt.Sprintf("%T", resp)
	}
}

func (e *ihEnv) label(id uint64) string {
	e.nreq++
	l := fmt.Sprintf("p%d", e.nreq)
	e.reqs[id] = l
	return l
}

func (e *ihEnv) propose(t *testing.T, d *datadriven.TestData, args []string) {
	n := e.running(t, d, args)
	if len(args) < 2 {
		d.Fatalf(t, "propose NODE put|delete|txn|grant|revoke|compact ...")
	}
	r := &pb.InternalRaftRequest{}
	switch op := args[1]; op {
	case "put":
		if len(args) != 4 {
			d.Fatalf(t, "propose NODE put KEY VALUE [lease=ID]")
		}
		r.Put = &pb.PutRequest{Key: []byte(args[2]), Value: []byte(args[3]), Lease: intArg(t, d, "lease", 0)}
	case "delete":
		r.DeleteRange = &pb.DeleteRangeRequest{Key: []byte(args[2])}
		if end := argOr(t, d, "end", ""); end != "" {
			r.DeleteRange.RangeEnd = []byte(end)
		}
	case "txn":
		r.Txn = parseTxn(t, d)
	case "grant":
		r.LeaseGrant = &pb.LeaseGrantRequest{ID: intArg(t, d, "id", 0), TTL: intArg(t, d, "ttl", 10)}
	case "revoke":
		r.LeaseRevoke = &pb.LeaseRevokeRequest{ID: intArg(t, d, "id", 0)}
	case "compact":
		r.Compaction = &pb.CompactionRequest{Revision: intArg(t, d, "rev", 0)}
	case "v2":
		if len(args) != 4 {
			d.Fatalf(t, "propose NODE v2 METHOD PATH [value=V] [dir=true] [recursive=true] [prev-value=V] [prev-index=I] [exp=UNIXNANOS] [time=UNIXNANOS]")
		}
		v2store.Attach(r, &v2store.Request{Method: args[2], Path: args[3], Val: argOr(t, d, "value", ""),
			Dir: argOr(t, d, "dir", "") == "true", Recursive: argOr(t, d, "recursive", "") == "true",
			PrevValue: argOr(t, d, "prev-value", ""), PrevIndex: uint64(intArg(t, d, "prev-index", 0)),
			Expiration: intArg(t, d, "exp", 0), Time: intArg(t, d, "time", 0)})
	default:
		d.Fatalf(t, "unknown proposal %q", op)
	}
	var label string
	id, err := n.core.Propose(r, e.waiter(n, &label))
	if err != nil {
		e.emit(n, "propose: %v", err)
		return
	}
	label = e.label(id)
	e.emit(n, "proposed %s: %s", label, e.describeRequest(r))
}

// parseTxn reads a txn from the command's input, one line per part:
//
//	cmp value|version|mod|create KEY =|!=|<|> VAL
//	then|else put KEY VALUE
//	then|else delete KEY
func parseTxn(t *testing.T, d *datadriven.TestData) *pb.TxnRequest {
	txn := &pb.TxnRequest{}
	for _, line := range strings.Split(d.Input, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "cmp":
			if len(f) != 5 {
				d.Fatalf(t, "txn: %q: cmp TARGET KEY OP VALUE", line)
			}
			c := &pb.Compare{Key: []byte(f[2])}
			switch f[3] {
			case "=":
				c.Result = pb.Compare_EQUAL
			case "!=":
				c.Result = pb.Compare_NOT_EQUAL
			case "<":
				c.Result = pb.Compare_LESS
			case ">":
				c.Result = pb.Compare_GREATER
			default:
				d.Fatalf(t, "txn: %q: unknown operator", line)
			}
			num := func() int64 {
				v, err := strconv.ParseInt(f[4], 10, 64)
				if err != nil {
					d.Fatalf(t, "txn: %q: %v", line, err)
				}
				return v
			}
			switch f[1] {
			case "value":
				c.Target, c.TargetUnion = pb.Compare_VALUE, &pb.Compare_Value{Value: []byte(f[4])}
			case "version":
				c.Target, c.TargetUnion = pb.Compare_VERSION, &pb.Compare_Version{Version: num()}
			case "mod":
				c.Target, c.TargetUnion = pb.Compare_MOD, &pb.Compare_ModRevision{ModRevision: num()}
			case "create":
				c.Target, c.TargetUnion = pb.Compare_CREATE, &pb.Compare_CreateRevision{CreateRevision: num()}
			default:
				d.Fatalf(t, "txn: %q: unknown target", line)
			}
			txn.Compare = append(txn.Compare, c)
		case "then", "else":
			var op *pb.RequestOp
			switch {
			case len(f) == 4 && f[1] == "put":
				op = &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(f[2]), Value: []byte(f[3])}}}
			case len(f) == 3 && f[1] == "delete":
				op = &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(f[2])}}}
			default:
				d.Fatalf(t, "txn: %q: put KEY VALUE or delete KEY", line)
			}
			if f[0] == "then" {
				txn.Success = append(txn.Success, op)
			} else {
				txn.Failure = append(txn.Failure, op)
			}
		default:
			d.Fatalf(t, "txn: %q: cmp, then or else", line)
		}
	}
	return txn
}

func (e *ihEnv) keepalive(t *testing.T, d *datadriven.TestData, args []string) {
	n := e.running(t, d, args)
	e.nkeep++
	label := fmt.Sprintf("k%d", e.nkeep)
	id := intArg(t, d, "id", 0)
	e.emit(n, "keepalive %s: lease %d asked", label, id)
	n.core.LeaseRenew(id, func(ttl int64, err error) {
		if err != nil {
			e.emit(n, "keepalive %s: error: %v", label, err)
			return
		}
		e.emit(n, "keepalive %s: lease %d renewed, ttl=%d", label, id, ttl)
	})
}

func (e *ihEnv) readIndex(t *testing.T, d *datadriven.TestData, args []string) {
	n := e.running(t, d, args)
	e.nread++
	label := fmt.Sprintf("r%d", e.nread)
	key := argOr(t, d, "key", "")
	e.emit(n, "read %s: queued", label)
	c := n.core
	n.core.ReadIndex(func(err error) {
		if err != nil {
			e.emit(n, "read %s: error: %v", label, err)
			return
		}
		msg := fmt.Sprintf("read %s: done at applied %d", label, c.Applied())
		if key != "" {
			msg += ": " + describeKey(c, key)
		}
		e.emit(n, "%s", msg)
	})
}

func describeKey(c *Core, key string) string {
	resp, err := c.KV().Range(&pb.RangeRequest{Key: []byte(key)})
	if err != nil {
		return fmt.Sprintf("%s: %v", key, err)
	}
	if len(resp.GetKvs()) == 0 {
		return fmt.Sprintf("%s not found (rev %d)", key, resp.GetHeader().GetRevision())
	}
	kv := resp.GetKvs()[0]
	return fmt.Sprintf("%s=%s (mod %d, rev %d)", kv.GetKey(), kv.GetValue(), kv.GetModRevision(), resp.GetHeader().GetRevision())
}

func (e *ihEnv) confChange(t *testing.T, d *datadriven.TestData, args []string) {
	n := e.running(t, d, args)
	if len(args) < 2 {
		d.Fatalf(t, "%s NODE MEMBER", d.Cmd)
	}
	var target *ihNode
	for _, x := range e.nodes {
		if x.name == args[1] {
			target = x
		}
	}
	typ := raftpb.ConfChangeAddNode
	switch d.Cmd {
	case "add-member":
		if target == nil {
			target = e.newNode(args[1], true)
		}
		if len(args) > 2 && args[2] == "learner" {
			typ = raftpb.ConfChangeAddLearnerNode
		}
	case "promote-member":
	case "remove-member":
		typ = raftpb.ConfChangeRemoveNode
	}
	if target == nil {
		d.Fatalf(t, "no member %q", args[1])
	}
	cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: proto.Uint64(target.id)}}}
	var label string
	id, err := n.core.ProposeConfChange(cc, target.m, e.waiter(n, &label))
	if err != nil {
		e.emit(n, "propose conf change: %v", err)
		return
	}
	label = e.label(id)
	e.emit(n, "proposed %s: %s %s", label, typ, target.name)
}

func (e *ihEnv) status(n *ihNode, b *strings.Builder) {
	if n.core == nil {
		fmt.Fprintf(b, "%s: down\n", n.name)
		return
	}
	c := n.core
	first, _ := c.storage.FirstIndex()
	last, _ := c.storage.LastIndex()
	ci, _ := c.KV().ConsistentIndex()
	fmt.Fprintf(b, "%s: %s term=%d leader=%s commit=%d applied=%d consistent-index=%d snapshot=%d log=[%d,%d] rev=%d\n",
		n.name, c.rn.BasicStatus().RaftState, c.Term(), e.name(c.Leader()), c.Committed(), c.Applied(), ci, c.snapIndex, first, last, c.KV().Rev())
	if err := c.Err(); err != nil {
		fmt.Fprintf(b, "  stopped: %v\n", err)
	}
	var ms []string
	for _, m := range c.Members() {
		s := e.name(m.ID)
		if m.IsLearner {
			s += "(learner)"
		}
		ms = append(ms, s)
	}
	sort.Strings(ms)
	fmt.Fprintf(b, "  members: %s\n", strings.Join(ms, " "))
	resp, err := c.KV().Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil {
		fmt.Fprintf(b, "  keys: %v\n", err)
	} else {
		for _, kv := range resp.GetKvs() {
			fmt.Fprintf(b, "  key %s=%s mod=%d ver=%d", kv.GetKey(), kv.GetValue(), kv.GetModRevision(), kv.GetVersion())
			if kv.GetLease() != 0 {
				fmt.Fprintf(b, " lease=%d", kv.GetLease())
			}
			b.WriteString("\n")
		}
	}
	for _, l := range c.Leases() {
		granted, remaining, keys, err := c.LeaseTimeToLive(l.ID)
		if err != nil {
			fmt.Fprintf(b, "  lease %d: %v\n", l.ID, err)
			continue
		}
		ks := make([]string, 0, len(keys))
		for _, k := range keys {
			ks = append(ks, string(k))
		}
		fmt.Fprintf(b, "  lease %d ttl=%d remaining=%d keys=[%s]\n", l.ID, granted, remaining, strings.Join(ks, " "))
	}
}

func (e *ihEnv) raftLog(n *ihNode, b *strings.Builder) {
	snap, _ := n.core.storage.Snapshot()
	if snap.GetMetadata().GetIndex() > 0 {
		fmt.Fprintf(b, "snapshot: %s\n", e.describeSnapMeta(snap.GetMetadata()))
	}
	ents := storedEntries(n.core)
	if len(ents) == 0 {
		b.WriteString("no entries\n")
	}
	for _, ent := range ents {
		fmt.Fprintf(b, "%s\n", e.describeEntry(ent))
	}
}

func (e *ihEnv) progress(n *ihNode, b *strings.Builder) {
	st := n.core.Status()
	if st.Progress == nil {
		fmt.Fprintf(b, "%s is not the leader\n", n.name)
		return
	}
	ids := make([]uint64, 0, len(st.Progress))
	for id := range st.Progress {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, z uint64) int { return strings.Compare(e.name(a), e.name(z)) })
	for _, id := range ids {
		pr := st.Progress[id]
		kind := "voter"
		if pr.IsLearner {
			kind = "learner"
		}
		fmt.Fprintf(b, "%s: %s %s match=%d next=%d", e.name(id), kind, pr.State, pr.Match, pr.Next)
		if pr.PendingSnapshot > 0 {
			fmt.Fprintf(b, " pending-snapshot=%d", pr.PendingSnapshot)
		}
		b.WriteString("\n")
	}
}

// describeMsg renders a raft message on one line, with member names.
func (e *ihEnv) describeMsg(m *raftpb.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s->%s %s Term:%d", e.name(m.GetFrom()), e.name(m.GetTo()), m.GetType(), m.GetTerm())
	if m.GetLogTerm() != 0 || m.GetIndex() != 0 {
		fmt.Fprintf(&b, " Log:%d/%d", m.GetLogTerm(), m.GetIndex())
	}
	if m.GetReject() {
		fmt.Fprintf(&b, " Rejected (Hint: %d)", m.GetRejectHint())
	}
	if m.GetCommit() != 0 {
		fmt.Fprintf(&b, " Commit:%d", m.GetCommit())
	}
	if len(m.GetContext()) > 0 {
		fmt.Fprintf(&b, " Context:%x", m.GetContext())
	}
	switch m.GetType() {
	case raftpb.MsgReadIndex, raftpb.MsgReadIndexResp:
		// The entry carries the read's context, not a request.
		for _, ent := range m.GetEntries() {
			fmt.Fprintf(&b, " ReadCtx:%s", describeCtx(ent.GetData()))
		}
	default:
		if len(m.GetEntries()) > 0 {
			parts := make([]string, 0, len(m.GetEntries()))
			for _, ent := range m.GetEntries() {
				parts = append(parts, e.describeEntry(ent))
			}
			fmt.Fprintf(&b, " Entries:[%s]", strings.Join(parts, ", "))
		}
	}
	if s := m.GetSnapshot(); s != nil && s.GetMetadata().GetIndex() > 0 {
		fmt.Fprintf(&b, " Snapshot:{%s", e.describeSnapMeta(s.GetMetadata()))
		if len(s.GetData()) > 0 {
			b.WriteString(" +database")
		}
		b.WriteString("}")
	}
	return b.String()
}

// describeCtx renders a ReadIndex context (8 bytes, big-endian) as its number.
func describeCtx(ctx []byte) string {
	if len(ctx) == 8 {
		return strconv.FormatUint(binary.BigEndian.Uint64(ctx), 10)
	}
	return fmt.Sprintf("%q", ctx)
}

func (e *ihEnv) describeSnapMeta(md *raftpb.SnapshotMetadata) string {
	cs := md.GetConfState()
	s := fmt.Sprintf("Index:%d Term:%d Voters:%s", md.GetIndex(), md.GetTerm(), e.idList(cs.GetVoters()))
	if len(cs.GetLearners()) > 0 {
		s += " Learners:" + e.idList(cs.GetLearners())
	}
	return s
}

func (e *ihEnv) idList(ids []uint64) string {
	ns := make([]string, 0, len(ids))
	for _, id := range ids {
		ns = append(ns, e.name(id))
	}
	sort.Strings(ns)
	return "[" + strings.Join(ns, " ") + "]"
}

// describeEntry renders index/term and what the entry carries.
func (e *ihEnv) describeEntry(ent *raftpb.Entry) string {
	prefix := fmt.Sprintf("%d/%d ", ent.GetIndex(), ent.GetTerm())
	switch ent.GetType() {
	case raftpb.EntryConfChange:
		cc := &raftpb.ConfChange{}
		if err := proto.Unmarshal(ent.GetData(), cc); err != nil {
			return prefix + "undecodable conf change"
		}
		return prefix + e.describeConfChange(cc.AsV2())
	case raftpb.EntryConfChangeV2:
		cc := &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(ent.GetData(), cc); err != nil {
			return prefix + "undecodable conf change"
		}
		return prefix + e.describeConfChange(cc)
	}
	if len(ent.GetData()) == 0 {
		return prefix + "empty"
	}
	r, err := decodeRequest(ent.GetData())
	if err != nil {
		return prefix + "undecodable"
	}
	return prefix + e.describeRequest(r)
}

func (e *ihEnv) describeConfChange(cc *raftpb.ConfChangeV2) string {
	parts := make([]string, 0, len(cc.GetChanges()))
	for _, ch := range cc.GetChanges() {
		parts = append(parts, fmt.Sprintf("%s %s", ch.GetType(), e.name(ch.GetNodeId())))
	}
	s := strings.Join(parts, ", ")
	var ctx confChangeContext
	if len(cc.GetContext()) > 0 && json.Unmarshal(cc.GetContext(), &ctx) == nil && ctx.RequestID != 0 {
		if l, ok := e.reqs[ctx.RequestID]; ok {
			s += " (" + l + ")"
		}
	}
	return s
}

// describeRequest renders a request and, if this script proposed it, its label.
func (e *ihEnv) describeRequest(r *pb.InternalRaftRequest) string {
	var s string
	switch {
	case r.GetPut() != nil:
		s = "put " + describePut(r.GetPut())
	case r.GetDeleteRange() != nil:
		s = "delete " + describeRange(r.GetDeleteRange().GetKey(), r.GetDeleteRange().GetRangeEnd())
	case r.GetTxn() != nil:
		s = describeTxn(r.GetTxn())
	case r.GetRange() != nil:
		s = "range " + describeRange(r.GetRange().GetKey(), r.GetRange().GetRangeEnd())
	case r.GetCompaction() != nil:
		s = fmt.Sprintf("compact rev=%d", r.GetCompaction().GetRevision())
	case r.GetLeaseGrant() != nil:
		s = fmt.Sprintf("lease-grant id=%d ttl=%d", r.GetLeaseGrant().GetID(), r.GetLeaseGrant().GetTTL())
	case r.GetLeaseRevoke() != nil:
		s = fmt.Sprintf("lease-revoke id=%d", r.GetLeaseRevoke().GetID())
	case r.GetLeaseCheckpoint() != nil:
		var cps []string
		for _, cp := range r.GetLeaseCheckpoint().GetCheckpoints() {
			cps = append(cps, fmt.Sprintf("%d:%d", cp.GetID(), cp.GetRemaining_TTL()))
		}
		s = "lease-checkpoint " + strings.Join(cps, " ")
	case r.GetAlarm() != nil:
		s = fmt.Sprintf("alarm %s %s", r.GetAlarm().GetAction(), r.GetAlarm().GetAlarm())
	case r.GetClusterMemberAttrSet() != nil:
		s = "member-attributes " + e.name(r.GetClusterMemberAttrSet().GetMember_ID())
	default:
		s = "unknown request"
		if v2, ok, _ := v2store.FromInternal(r); ok {
			s = fmt.Sprintf("v2 %s %s", v2.Method, v2.Path)
		}
	}
	if l, ok := e.reqs[r.GetID()]; ok {
		s += " (" + l + ")"
	}
	return s
}

func describePut(p *pb.PutRequest) string {
	s := fmt.Sprintf("%s=%s", p.GetKey(), p.GetValue())
	if p.GetLease() != 0 {
		s += fmt.Sprintf(" lease=%d", p.GetLease())
	}
	return s
}

func describeRange(key, end []byte) string {
	if len(end) == 0 {
		return string(key)
	}
	return fmt.Sprintf("[%s, %s)", key, end)
}

func describeTxn(t *pb.TxnRequest) string {
	var cmps []string
	for _, c := range t.GetCompare() {
		var target, val string
		switch c.GetTarget() {
		case pb.Compare_VALUE:
			target, val = "value", string(c.GetValue())
		case pb.Compare_VERSION:
			target, val = "version", strconv.FormatInt(c.GetVersion(), 10)
		case pb.Compare_MOD:
			target, val = "mod", strconv.FormatInt(c.GetModRevision(), 10)
		case pb.Compare_CREATE:
			target, val = "create", strconv.FormatInt(c.GetCreateRevision(), 10)
		default:
			target, val = c.GetTarget().String(), "?"
		}
		op := map[pb.Compare_CompareResult]string{pb.Compare_EQUAL: "=", pb.Compare_NOT_EQUAL: "!=", pb.Compare_LESS: "<", pb.Compare_GREATER: ">"}[c.GetResult()]
		cmps = append(cmps, fmt.Sprintf("%s(%s)%s%s", target, c.GetKey(), op, val))
	}
	ops := func(ops []*pb.RequestOp) string {
		var out []string
		for _, op := range ops {
			switch {
			case op.GetRequestPut() != nil:
				out = append(out, "put "+describePut(op.GetRequestPut()))
			case op.GetRequestDeleteRange() != nil:
				out = append(out, "delete "+describeRange(op.GetRequestDeleteRange().GetKey(), op.GetRequestDeleteRange().GetRangeEnd()))
			case op.GetRequestRange() != nil:
				out = append(out, "range "+describeRange(op.GetRequestRange().GetKey(), op.GetRequestRange().GetRangeEnd()))
			default:
				out = append(out, "txn")
			}
		}
		return strings.Join(out, "; ")
	}
	return fmt.Sprintf("txn if(%s) then(%s) else(%s)", strings.Join(cmps, " && "), ops(t.GetSuccess()), ops(t.GetFailure()))
}

var _ transport.Transport = ihTransport{}
