package sim

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/vfs"
)

// simNode is one member: the production node.Core over simulated
// transport, file system and clock.
type simNode struct {
	c    *Cluster
	idx  int
	id   uint64
	core *node.Core // nil while crashed
	// watchFrom is the revision the member's current watcher started from.
	watchFrom int64
	fs        *vfs.MemFS
	dir       string
	clock     *clock.Fake
	// rate and offset skew this member's clock: its time runs at rate times
	// virtual time, offset ahead.
	rate   float64
	offset time.Duration
	// incarnation counts restarts, so events meant for a crashed
	// incarnation (timers, reports) are dropped.
	incarnation      int
	processScheduled bool
	// watch is this incarnation's watcher over every key; events is what
	// it delivered.
	watch  *mvcc.WatchStream
	events []watchedEvent
	// watchRev is the revision of the last events response: the next
	// carries only events above it, up to its own revision.
	watchRev int64
	// Membership (members.go): added tells the cluster has the member (the
	// initial ones, and fresh ones once their add applied); join starts it
	// with Config.Join, with joinMembers and clusterID; learner until
	// promoted; gone once it stopped because the cluster removed it.
	added, join, learner, gone bool
	joinMembers                []node.Member
	clusterID                  uint64
	// cut is this incarnation's power (cut.go).
	cut *cutState
}

// transport adapts the cluster network to transport.Transport for one member.
type simTransport struct{ n *simNode }

func (t simTransport) Send(msgs []*raftpb.Message) { t.n.c.send(t.n, msgs) }

// SendSnapshot sends m with its database read into its data, at once: the
// simulator's snapshots are small, and reading them here keeps the run
// deterministic.
func (t simTransport) SendSnapshot(m *raftpb.Message, db node.SnapshotBody) {
	var buf bytes.Buffer
	_, err := db.WriteTo(&buf)
	_ = db.Close()
	if err != nil {
		t.n.c.violation("%s: reading a snapshot database: %v", t.n.name(), err)
		return
	}
	m.Snapshot.Data = buf.Bytes()
	t.n.c.send(t.n, []*raftpb.Message{m})
}
func (simTransport) AddPeer(uint64, []string)    {}
func (simTransport) RemovePeer(uint64)           {}
func (simTransport) UpdatePeer(uint64, []string) {}
func (simTransport) Close() error                { return nil }

// onApply checks state machine safety: every member applies the same entry
// at each index.
func (n *simNode) onApply(e *raftpb.Entry) {
	h := fnv.New64a()
	h.Write(e.GetData())
	sum := h.Sum64() ^ uint64(e.GetType())
	c := n.c
	if prev, ok := c.applied[e.GetIndex()]; ok && prev.sum != sum {
		c.violation("%s applied entry %d (term %d) differing from the one %s applied there (term %d)", n.name(), e.GetIndex(), e.GetTerm(), prev.by, prev.term)
	} else if !ok {
		c.applied[e.GetIndex()] = appliedEntry{sum: sum, term: e.GetTerm(), by: n.name()}
	}
	c.tracef("apply %s idx=%d term=%d %s", n.name(), e.GetIndex(), e.GetTerm(), describeEntry(e))
	n.checkAuth(e)
}

func (n *simNode) name() string { return n.c.members[n.idx].Name }

func (n *simNode) syncClock() {
	n.clock.Set(time.Unix(1_700_000_000, 0).Add(n.offset + time.Duration(float64(n.c.now)*n.rate)))
}

func (n *simNode) start() error {
	n.syncClock()
	initial := n.c.members[:n.c.opts.Nodes]
	var clusterID uint64
	if n.join {
		initial, clusterID = n.joinMembers, n.clusterID
	}
	n.cut = &cutState{}
	core, err := node.NewCore(node.Config{
		Name:                   n.name(),
		ID:                     n.id,
		ClusterID:              clusterID,
		Join:                   n.join,
		ClusterToken:           "sim",
		InitialMembers:         initial,
		DataDir:                n.dir,
		WALFS:                  cutFS{FS: n.walFS(), s: n.cut},
		SnapFS:                 cutFS{FS: n.fs, s: n.cut},
		WALSegmentSize:         256 << 10,
		Transport:              simTransport{n},
		Clock:                  n.clock,
		Logger:                 n.c.opts.Logger.Named(n.name()),
		ElectionTicks:          n.c.knobs.electionTicks,
		HeartbeatTicks:         n.c.knobs.heartbeatTicks,
		SnapshotCount:          n.c.knobs.snapshotCount,
		SnapshotCatchUpEntries: n.c.knobs.catchUp,
		MaxRequestBytes:        n.c.knobs.maxRequestBytes,
		BackendBatchInterval:   n.c.knobs.batchInterval,
		BackendBatchLimit:      n.c.knobs.batchLimit,
		BackendNoSync:          true,
		WatchLimits:            n.c.watchLimits,
		Bugs:                   bugsFor(n.c.opts.Bug, n.idx),
		OnApply:                n.onApply,
	})
	if err != nil {
		return fmt.Errorf("sim: starting %s: %w", n.name(), err)
	}
	n.core = core
	n.incarnation++
	n.startWatch()
	return nil
}

// scheduleTick keeps this member's raft clock ticking at its skewed rate,
// across crashes (a crashed member's ticks do nothing).
func (n *simNode) scheduleTick() {
	d := time.Duration(float64(tickInterval) / n.rate)
	n.c.schedule(d, "", func() {
		if n.core != nil {
			n.syncClock()
			n.core.Tick()
			n.process()
		}
		n.scheduleTick()
	})
}

// step delivers a message; it reports whether the member took it. A
// message from a removed member is refused, and the sender told so, as the
// HTTP transport's 410 Gone does.
func (n *simNode) step(from *simNode, inc int, m *raftpb.Message) bool {
	if n.core == nil {
		return false
	}
	n.syncClock()
	if err := n.core.Step(m); err != nil {
		if errors.Is(err, node.ErrSenderRemoved) {
			n.c.schedule(n.c.delay(), "", func() { from.report(inc, func(core *node.Core) { core.RemovedByPeer(n.id) }) })
		}
		return false
	}
	n.process()
	return true
}

// report runs f on the member if it is still the incarnation inc.
func (n *simNode) report(inc int, f func(*node.Core)) {
	if n.core == nil || n.incarnation != inc {
		return
	}
	n.syncClock()
	f(n.core)
	n.process()
}

// process handles the member's Ready. With a slow disk, the handling (and
// so its fsync, sends and applies) is deferred in virtual time.
func (n *simNode) process() {
	if n.core == nil || !n.core.HasReady() {
		return
	}
	if n.c.plan.slowDisk && !n.c.opts.NoFaults && !n.c.healing {
		if n.processScheduled {
			return
		}
		n.processScheduled = true
		inc := n.incarnation
		n.c.schedule(time.Duration(n.c.rng.Int64N(int64(5*time.Millisecond))), "", func() {
			n.processScheduled = false
			if n.core != nil && n.incarnation == inc {
				n.processNow()
			}
		})
		return
	}
	n.processNow()
}

// processNow handles the member's Ready at once.
func (n *simNode) processNow() {
	if n.core == nil || !n.core.HasReady() {
		return
	}
	n.syncClock()
	err := n.core.Process()
	if n.cutFired() {
		return // a power cut, not a failure
	}
	if err != nil {
		n.stopped(err)
		n.stopWatch()
		n.core.Crash()
		n.core = nil
	}
}

// crash stops the member as a power cut: the WAL keeps only synced bytes
// (the last write may tear), the database loses its open batch.
func (n *simNode) crash() {
	if n.core == nil {
		return
	}
	n.stopWatch()
	n.core.Crash()
	n.core = nil
	n.fs = n.fs.Crash(n.c.rng, true)
	n.processScheduled = false
	n.c.report.Faults["crash"]++
	n.c.tracef("crash %s", n.name())
}

func (n *simNode) restart() {
	if n.core != nil || n.gone || n.incarnation == 0 {
		return // running, removed, or a fresh member not yet added
	}
	if err := n.start(); err != nil {
		if errors.Is(err, node.ErrRemoved) && n.c.removedFromCluster(n) {
			n.c.tracef("%s refuses to restart: %v", n.name(), err)
			n.gone = true
			return
		}
		n.c.violation("%s failed to restart: %v", n.name(), err)
		return
	}
	n.c.tracef("restart %s", n.name())
	n.process()
}
