package sim

import (
	"slices"
	"sort"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/node"
)

// Compaction and the compact hash check, in half the seeds. The leader
// compacts now and then, never past what every member's watcher has
// received (a compaction past a watcher would cancel it); and the leader
// runs the production check's decision (node.FindCorrupt) over every
// member's HashKV at the latest compacted revision, which the production
// shell collects over the peer listener, raising CORRUPT alarms through
// raft. Without a planted corruption no alarm may ever be raised; with
// BugFlipValues the alarm must name the flipped member.

func (c *Cluster) compactEvery(d time.Duration) {
	c.schedule(d, "", func() {
		c.compact()
		c.compactEvery(d)
	})
}

func (c *Cluster) compact() {
	lead := c.leader()
	if lead == nil {
		return
	}
	rev := lead.core.KV().Rev()
	for _, n := range c.nodes {
		if n.core != nil && n.watch != nil {
			rev = min(rev, n.watchRev)
		}
	}
	if rev <= lead.core.KV().CompactRev() {
		return
	}
	c.tracef("compact at %d via %s", rev, lead.name())
	c.compacted = true
	if _, err := lead.core.Propose(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}}, nil); err == nil {
		lead.process()
	}
}

func (c *Cluster) checkHashesEvery(d time.Duration) {
	c.schedule(d, "", func() {
		c.checkHashes()
		c.checkHashesEvery(d)
	})
}

// checkHashes is the leader's compact hash check (server/hashcheck.go).
func (c *Cluster) checkHashes() {
	lead := c.leader()
	if lead == nil {
		return
	}
	rev := lead.core.KV().CompactRev()
	if rev == 0 || rev <= c.hashChecked {
		return
	}
	var hashes []node.CompactHash
	for _, n := range c.nodes {
		if n.core == nil {
			continue // a crashed member does not answer
		}
		h, hashRev, compactRev, err := n.core.KV().HashKV(rev)
		if err != nil {
			continue
		}
		hashes = append(hashes, node.CompactHash{Member: n.id, Revision: hashRev, CompactRevision: compactRev, Hash: h})
	}
	corrupt, decided := node.FindCorrupt(len(lead.core.Members()), rev, hashes)
	if !decided {
		return
	}
	c.hashChecked = rev
	c.report.HashChecks++
	for _, id := range corrupt {
		c.tracef("hash check at %d via %s: %s diverges", rev, lead.name(), c.nodes[c.indexOf(id)].name())
		if _, err := lead.core.Propose(&pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: pb.AlarmType_CORRUPT}}, nil); err == nil {
			lead.process()
		}
	}
}

// checkAlarms reports the CORRUPT alarms the cluster raised and flags
// false ones.
func (c *Cluster) checkAlarms() {
	seen := map[string]bool{}
	for _, n := range c.nodes {
		if n.core == nil {
			continue
		}
		for _, a := range n.core.Alarms() {
			if a.GetAlarm() != pb.AlarmType_CORRUPT {
				continue
			}
			name := "unknown member"
			if i := c.indexOf(a.GetMemberID()); i >= 0 {
				name = c.nodes[i].name()
			}
			seen[name] = true
		}
	}
	for name := range seen {
		c.report.CorruptAlarms = append(c.report.CorruptAlarms, name)
		if c.opts.Bug == BugFlipValues && len(c.report.Tainted) > 0 {
			continue // the corruption spread: the majority may be corrupt
		}
		if c.opts.Bug != BugFlipValues || name != c.nodes[flippedMember].name() {
			c.violation("the cluster raised a CORRUPT alarm for %s, whose data is sound", name)
		}
	}
	sort.Strings(c.report.CorruptAlarms)
}

// snapshotInstalled notes that to installed a snapshot from from: with
// BugFlipValues, the flipped member's corruption travels in its snapshots.
func (c *Cluster) snapshotInstalled(from, to *simNode) {
	c.tracef("%s installed a snapshot from %s", to.name(), from.name())
	c.report.Snapshots++
	if to == c.lagging {
		c.report.LagSnapshot = true
	}
	if c.opts.Bug != BugFlipValues || slices.Contains(c.report.Tainted, to.name()) || to.idx == flippedMember {
		return
	}
	if from.idx == flippedMember || slices.Contains(c.report.Tainted, from.name()) {
		c.report.Tainted = append(c.report.Tainted, to.name())
		slices.Sort(c.report.Tainted)
	}
}
