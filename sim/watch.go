package sim

import (
	"fmt"
	"time"

	"github.com/cairnkv/cairn/mvcc"
)

// Every member runs one watcher over the whole key space from revision 1,
// as a controller would. At the end every member's stream must be the same
// sequence: revisions strictly increasing with no gap (every revision
// changes something, so every revision has events) and the same events at
// each revision on every member. A restarted member's watcher starts again
// from revision 1, or from its compacted revision when the run compacts,
// and replays history; streams are compared from the latest start.

type watchedEvent struct {
	rev   int64
	typ   string
	key   string
	value string
}

func (n *simNode) startWatch() {
	n.watch = n.core.KV().NewWatchStream(256)
	n.watchFrom = max(1, n.core.KV().CompactRev())
	n.events, n.watchRev = nil, 0
	if _, err := n.watch.Watch(mvcc.AutoWatchID, []byte{0}, []byte{0}, n.watchFrom, nil, false); err != nil {
		n.c.violation("%s: starting a watch: %v", n.name(), err)
	}
}

func (n *simNode) stopWatch() {
	if n.watch != nil {
		n.watch.Close()
		n.watch = nil
	}
}

// drainWatch takes every response the member's watch stream has ready.
func (n *simNode) drainWatch() {
	if n.watch == nil {
		return
	}
	for {
		r, ok := n.watch.Next()
		if !ok {
			return
		}
		if r.Canceled {
			if n.c.compacted && r.CompactRevision > 0 {
				// A snapshot from the leader brought a newer compaction
				// than the watcher had reached: watch again from there,
				// as a client does.
				n.c.tracef("%s: watch canceled at compact revision %d: watching again", n.name(), r.CompactRevision)
				n.stopWatch()
				n.startWatch()
				return
			}
			n.c.violation("%s: watch canceled (compact revision %d)", n.name(), r.CompactRevision)
		}
		if len(r.Events) == 0 {
			continue
		}
		for _, ev := range r.Events {
			n.events = append(n.events, watchedEvent{rev: ev.GetKv().GetModRevision(), typ: ev.GetType().String(), key: string(ev.GetKv().GetKey()), value: string(ev.GetKv().GetValue())})
			if rev := ev.GetKv().GetModRevision(); rev <= n.watchRev || rev > r.Revision {
				n.c.violation("%s: watch response at revision %d (previous %d) carries an event of revision %d", n.name(), r.Revision, n.watchRev, rev)
			}
		}
		n.watchRev = r.Revision
	}
}

func (c *Cluster) drainWatchesEvery(d time.Duration) {
	c.schedule(d, "", func() {
		for _, n := range c.nodes {
			n.drainWatch()
		}
		c.drainWatchesEvery(d)
	})
}

// checkWatches compares every member's watch stream.
func (c *Cluster) checkWatches() {
	var ref []watchedEvent
	var refName string
	from := int64(1) // the latest start: streams are compared from there
	for _, n := range c.nodes {
		if n.core != nil && n.watch != nil {
			from = max(from, n.watchFrom)
		}
	}
	for _, n := range c.nodes {
		if n.core == nil || n.watch == nil {
			continue
		}
		n.drainWatch()
		evs := n.events
		prev := n.watchFrom
		for i, ev := range evs {
			if ev.rev != prev && ev.rev != prev+1 {
				c.violation("%s: watch stream jumps from revision %d to %d (event %d)", n.name(), prev, ev.rev, i)
				break
			}
			prev = ev.rev
		}
		if last := n.core.KV().Rev(); prev != last {
			c.violation("%s: watch stream ends at revision %d but the store is at %d", n.name(), prev, last)
		}
		for len(evs) > 0 && evs[0].rev < from {
			evs = evs[1:]
		}
		if ref == nil {
			ref, refName = evs, n.name()
			continue
		}
		if len(evs) != len(ref) {
			c.violation("watch streams differ: %s saw %d events, %s saw %d", refName, len(ref), n.name(), len(evs))
			continue
		}
		for i := range evs {
			if evs[i] != ref[i] {
				c.violation("watch streams differ at event %d: %s saw %s, %s saw %s", i, refName, fmtEvent(ref[i]), n.name(), fmtEvent(evs[i]))
				break
			}
		}
	}
}

func fmtEvent(e watchedEvent) string {
	return fmt.Sprintf("%s %s=%q@%d", e.typ, e.key, e.value, e.rev)
}
