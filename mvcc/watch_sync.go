package mvcc

import (
	"math"
	"sort"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"
)

// histRev is one revision of the history a catch-up step reads.
type histRev struct {
	key  []byte
	rev  Revision
	tomb bool
}

// nextRev returns the smallest main revision >= lo of ki, or MaxInt64.
func (ki *keyIndex) nextRev(lo int64) int64 {
	for _, g := range ki.gens {
		j := sort.Search(len(g), func(k int) bool { return g[k].Main >= lo })
		if j < len(g) {
			return g[j].Main
		}
	}
	return math.MaxInt64
}

// revsBetween appends ki's revisions with lo <= Main <= hi to out.
func (ki *keyIndex) revsBetween(lo, hi int64, out []histRev) []histRev {
	for gi, g := range ki.gens {
		j := sort.Search(len(g), func(k int) bool { return g[k].Main >= lo })
		for ; j < len(g) && g[j].Main <= hi; j++ {
			out = append(out, histRev{key: ki.key, rev: g[j], tomb: gi < len(ki.gens)-1 && j == len(g)-1})
		}
	}
	return out
}

// history reads w's events with revisions in [minRev, min(cur,
// next+watchBatchRevs-1)], where next is the first revision >= minRev that
// touches w's range, stopping early at a revision boundary once maxBytes
// of events are read. It returns the events in revision order and the last
// revision covered. mu is read-locked.
func (s *Store) history(w *watcher, minRev, cur int64, maxBytes int) (evs []*mvccpb.Event, size int, hi int64, err error) {
	next := int64(math.MaxInt64)
	s.index.ascend(w.key, w.end, func(ki *keyIndex) bool {
		next = min(next, ki.nextRev(minRev))
		return true
	})
	if next > cur {
		return nil, 0, cur, nil
	}
	hi = min(cur, next+watchBatchRevs-1)
	var revs []histRev
	s.index.ascend(w.key, w.end, func(ki *keyIndex) bool {
		revs = ki.revsBetween(next, hi, revs)
		return true
	})
	sort.Slice(revs, func(i, j int) bool { return revs[j].rev.GreaterThan(revs[i].rev) })
	sr := &snapReader{s: s}
	defer sr.close()
	for i, hr := range revs {
		var ev *mvccpb.Event
		if hr.tomb {
			ev = &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: hr.key, ModRevision: hr.rev.Main}}
		} else {
			kv, err := readKV(sr, hr.rev)
			if err != nil {
				return nil, 0, 0, err
			}
			ev = &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv}
		}
		evs = append(evs, ev)
		size += eventSize(ev)
		if size >= maxBytes && i < len(revs)-1 && revs[i+1].rev.Main != hr.rev.Main {
			return evs, size, hr.rev.Main, nil
		}
	}
	return evs, size, hi, nil
}

// fromRecent reads w's events from recent (which holds minRev) the way
// history reads them from the database, but sharing the events: at most
// watchBatchRevs revisions with events, stopping at a revision boundary
// once maxBytes are read. It returns the events and the last revision
// covered.
func (w *watcher) fromRecent(recent []revEvents, minRev int64, maxBytes int) (evs []*mvccpb.Event, size int, hi int64) {
	hi = minRev - 1
	revs := 0
	recent = recent[minRev-recent[0].rev:]
	evs = make([]*mvccpb.Event, 0, min(len(recent), watchBatchRevs))
	for _, re := range recent {
		n := len(evs)
		for _, ev := range re.evs {
			if w.matches(ev.Kv.Key) {
				evs = append(evs, ev)
				size += eventSize(ev)
			}
		}
		hi = re.rev
		if len(evs) > n {
			if revs++; revs >= watchBatchRevs || size >= maxBytes {
				break
			}
		}
	}
	return evs, size, hi
}

// catchUpKey identifies what one catch-up read returned: the events of a
// range from a revision up to the current revision (or the last recent
// one), in one database epoch. Events are immutable, so equal keys give
// equal reads.
type catchUpKey struct {
	key, end string
	from, to int64
	epoch    uint64
	recent   bool
}

// catchUpRead is the last catch-up read of a stream, shared by the next
// watcher that asks for the same.
type catchUpRead struct {
	key  catchUpKey
	evs  []*mvccpb.Event
	size int
	hi   int64
}

// catchUp advances watcher w, which is behind, by one step: a compaction
// cancel if its next revision was compacted, else one response with its
// events from there on (see WatchResponse), read from the recent events
// when they reach back far enough (shared with every other watcher) and
// from the database otherwise; when it has reached the revision last fed
// to the synced watchers, it joins them. Called by Next.
func (s *Store) catchUp(w *watcher) {
	g := s.watches
	ws := w.ws
	maxBytes := min(g.limits.StreamBytes, watchBatchBytes)
	g.mu.Lock()
	minRev, epoch, recent := w.minRev, g.epoch, g.recent
	g.mu.Unlock()
	inRecent := len(recent) > 0 && recent[0].rev <= minRev && minRev <= recent[len(recent)-1].rev

	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return // the watcher stays behind: nothing more will come
	}
	cur, compactRev, restores := s.rev, s.compactRev, g.restores
	// etcd serves a watch from the compacted revision itself; compaction
	// keeps that revision's tombstones (see keyIndex.compact) so its
	// deletes are delivered too.
	compacted := minRev < compactRev
	// Watchers of a stream that fell behind together (one hot key) ask for
	// the same range from the same revision: they share one read.
	key := catchUpKey{key: w.keyStr, end: string(w.end), from: minRev, to: cur, epoch: restores}
	if inRecent {
		key.to, key.recent = recent[len(recent)-1].rev, true
	}
	cached := ws.last.key == key && !compacted
	var evs []*mvccpb.Event
	var size int
	hi := minRev - 1
	var err error
	if !cached && !compacted && !inRecent && minRev <= cur {
		evs, size, hi, err = s.history(w, minRev, cur, maxBytes)
	}
	s.mu.RUnlock()
	if err != nil {
		s.lg.Error("watch: reading history failed; watcher stalled", zap.Int64("watch-id", int64(w.id)), zap.Int64("from", minRev), zap.Error(err))
		return
	}
	switch {
	case cached:
		evs, size, hi = ws.last.evs, ws.last.size, ws.last.hi
	case !compacted && inRecent:
		evs, size, hi = w.fromRecent(recent, minRev, maxBytes)
	}
	if !compacted {
		ws.last = catchUpRead{key: key, evs: evs, size: size, hi: hi}
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if now, rev := s.restoreState(); now != g.epoch {
		// The database was replaced and no write has told the synced
		// group yet: resynchronise it here.
		g.epoch = now
		g.unsyncAll(g.rev + 1)
		g.rev = rev
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w.removed || ws.closed {
		return
	}
	if restores != g.epoch || epoch != g.epoch {
		// What was read may not continue w's history: read again.
		if w.queued == 0 {
			ws.pushReady(w)
		}
		ws.kick()
		return
	}
	if compacted {
		ws.drop(w)
		ws.push(watchItem{w: w, kind: itemCompacted, compact: compactRev})
		return
	}
	if len(evs) > 0 {
		ws.push(watchItem{w: w, kind: itemEvents, rev: hi, evs: evs, size: size})
	}
	w.minRev = max(w.minRev, hi+1)
	if w.minRev > g.rev {
		g.catchUpDone(w)
		return
	}
	if w.queued == 0 {
		ws.pushReady(w)
	}
	ws.kick()
}

// kvAt returns key's value as of rev, or nil if it had none or rev is
// compacted.
func (s *Store) kvAt(key []byte, rev int64) *mvccpb.KeyValue {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || rev <= 0 || rev < s.compactRev {
		return nil
	}
	ki := s.index.get(key)
	if ki == nil {
		return nil
	}
	r, ok := ki.at(rev)
	if !ok {
		return nil
	}
	sr := &snapReader{s: s}
	defer sr.close()
	kv, err := readKV(sr, r)
	if err != nil {
		return nil
	}
	return kv
}
