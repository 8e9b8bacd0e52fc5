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

// history reads w's events with revisions in [minRev, min(cur, next+batch)]
// where next is the first revision >= minRev that touches w's range. It
// returns the events grouped by revision and the last revision covered.
// mu is read-locked.
func (s *Store) history(w *watcher, minRev, cur int64) (batches [][]*mvccpb.Event, hi int64, err error) {
	next := int64(math.MaxInt64)
	s.index.ascend(w.key, w.end, func(ki *keyIndex) bool {
		next = min(next, ki.nextRev(minRev))
		return true
	})
	if next > cur {
		return nil, cur, nil
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
	var batch []*mvccpb.Event
	for i, hr := range revs {
		var ev *mvccpb.Event
		if hr.tomb {
			ev = &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: hr.key, ModRevision: hr.rev.Main}}
		} else {
			kv, err := readKV(sr, hr.rev)
			if err != nil {
				return nil, 0, err
			}
			ev = &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv}
		}
		batch = append(batch, ev)
		if i == len(revs)-1 || revs[i+1].rev.Main != hr.rev.Main {
			batches = append(batches, batch)
			batch = nil
		}
	}
	return batches, hi, nil
}

// catchUp advances watcher w, which is behind, by one step: a compaction
// cancel if its next revision was compacted, else up to watchBatchRevs
// revisions of history queued for it; when it has reached the revision last
// fed to the synced watchers, it joins them. Called by Next.
func (s *Store) catchUp(w *watcher) {
	g := s.watches
	ws := w.ws
	g.mu.Lock()
	minRev := w.minRev
	g.mu.Unlock()

	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return // the watcher stays behind: nothing more will come
	}
	cur, compactRev, restores := s.rev, s.compactRev, g.restores
	compacted := compactRev > 0 && minRev <= compactRev
	var batches [][]*mvccpb.Event
	hi := minRev - 1
	var err error
	if !compacted && minRev <= cur {
		batches, hi, err = s.history(w, minRev, cur)
	}
	s.mu.RUnlock()
	if err != nil {
		s.lg.Error("watch: reading history failed; watcher stalled", zap.Int64("watch-id", int64(w.id)), zap.Int64("from", minRev), zap.Error(err))
		return
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if restores != g.epoch {
		// The database was replaced and no write has told the synced
		// group yet: resynchronise it here, from what we just read.
		g.epoch = restores
		g.unsyncAll(g.rev + 1)
		g.rev = cur
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w.removed || ws.closed {
		return
	}
	if compacted {
		ws.drop(w)
		ws.push(watchItem{w: w, kind: itemCompacted, rev: cur, compact: compactRev})
		return
	}
	for _, b := range batches {
		ws.push(watchItem{w: w, kind: itemEvents, rev: b[0].Kv.ModRevision, evs: b})
	}
	w.minRev = max(w.minRev, hi+1)
	if w.minRev > g.rev {
		w.catchUp = false
		g.addSynced(w)
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
