package mvcc

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// WatchID identifies a watcher within its WatchStream.
type WatchID int64

const (
	// AutoWatchID asks Watch to choose the watcher's ID: the lowest unused
	// ID counting up from 0, as etcd does.
	AutoWatchID WatchID = 0
	// InvalidWatchID is returned by a failed Watch, and is the ID of a
	// progress notification that covers every watcher of a stream
	// (RequestProgressAll).
	InvalidWatchID WatchID = -1

	// DefaultWatchBufferLen is the default bound on the responses a
	// WatchStream holds for a consumer that does not keep up.
	DefaultWatchBufferLen = 4096

	// DefaultWatchStreamBytes bounds the events queued in one WatchStream,
	// counted at their encoded size as if none were shared; past it, the
	// stream's watchers fall behind and are caught up from history as the
	// consumer reads.
	DefaultWatchStreamBytes = 4 << 20
	// DefaultWatchTotalBytes bounds the same over every stream of a store.
	DefaultWatchTotalBytes = 256 << 20
	// DefaultWatchCacheBytes bounds the recent events kept in memory while
	// some watcher is behind, so that catching up reads them there, shared
	// by every watcher, instead of from the database.
	DefaultWatchCacheBytes = 32 << 20

	// watchBatchRevs bounds the revisions with events that one catch-up
	// step gives one watcher, as etcd's watchBatchMaxRevs does.
	watchBatchRevs = 1000
	// watchBatchBytes also bounds a catch-up step, at a revision boundary.
	// etcd has no such bound, so its catch-up responses can pass gRPC's
	// default 4 MiB receive limit and break clients that keep it.
	watchBatchBytes = 1 << 20
)

// Watch errors; the messages are etcd's.
var (
	ErrWatcherDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	ErrEmptyWatcherRange  = errors.New("mvcc: watcher range is empty")
	ErrWatcherNotExist    = errors.New("mvcc: watcher does not exist")
	ErrWatchStreamClosed  = errors.New("mvcc: watch stream is closed")
)

// WatchResponse is one message of a WatchStream for one watcher (or, with
// InvalidWatchID, for the whole stream).
//
//   - Created: the first response of every watcher; Revision is the
//     revision the watch starts after (the watcher gets every event with a
//     revision above it, or from its start revision if that is higher).
//   - Events: the watcher's events after filters, in order. A watcher that
//     keeps up gets the events of one write; one catching up from history
//     gets those of every revision up to now in one response (at most
//     watchBatchRevs revisions with events and about watchBatchBytes), as
//     etcd batches them.
//     Revision is the revision through which the watcher has now been
//     sent every event: the write's, or the last one the catch-up step
//     covered (the current revision once it has caught up). Empty batches
//     are never sent.
//   - Progress (no events, not created, not canceled): the watcher has been
//     sent every event up to and including Revision.
//   - Canceled: the last response of a watcher. CompactRevision is set when
//     the cancel is due to compaction: the watcher's next revision was
//     below it, so its events are gone.
type WatchResponse struct {
	WatchID         WatchID
	Revision        int64
	Events          []*mvccpb.Event
	CompactRevision int64
	Created         bool
	Canceled        bool
}

// WatchStats describes the watchers of a store, for metrics.
type WatchStats struct {
	Streams, Watchers int
	// Behind is the number of watchers catching up from history: created
	// at a past revision, or left behind by a consumer that did not keep
	// up (etcd's slow watchers).
	Behind int
	// PendingEvents and PendingBytes are the events queued in all streams
	// and their size, counted as if none were shared.
	PendingEvents, PendingBytes int64
	// CacheBytes is the size of the recent events kept for watchers that
	// are behind.
	CacheBytes int
	// EventsSent is the number of events WatchStream.Next handed out to be
	// sent, since the store was opened (etcd's
	// etcd_debugging_mvcc_events_total).
	EventsSent uint64
}

// watchState is the store's side of watching: the synced watchers, fed by
// every write, the last revision they were fed, and the recent events that
// watchers catching up read.
//
// Lock order: watchState.mu, then WatchStream.mu, then Store.mu. The writer
// calls notify holding no Store lock.
type watchState struct {
	mu     sync.Mutex
	rev    int64                 // last revision notified
	epoch  uint64                // restores seen by the synced group
	keys   map[string][]*watcher // synced single-key watchers
	ranges []*watcher            // synced range watchers

	count    int    // watchers of all streams
	streams  int    // open streams
	behind   int    // watchers catching up
	restores uint64 // bumped (under Store.mu) when the database is replaced

	// recent holds the events of the last revisions up to rev, contiguous,
	// while some watcher is behind, and nothing otherwise. It is append-only:
	// catch-up keeps a copy of the slice and reads it without the lock, so
	// entries are never overwritten (trimming reslices, forget drops the
	// array).
	recent      []revEvents
	recentBytes int

	limits WatchLimits
	// Events queued in all streams and their bytes; changed under a
	// WatchStream.mu, read anywhere.
	pendingEvents, pendingBytes atomic.Int64
	// eventsSent counts the events Next handed out, over the store's life.
	eventsSent atomic.Uint64
	// scratch for notify
	touched []*watcher
}

// WatchLimits are the memory bounds of watching; zero fields take the
// Default* values.
type WatchLimits struct {
	StreamBytes int // DefaultWatchStreamBytes
	TotalBytes  int // DefaultWatchTotalBytes
	CacheBytes  int // DefaultWatchCacheBytes
}

func (l WatchLimits) withDefaults() WatchLimits {
	if l.StreamBytes <= 0 {
		l.StreamBytes = DefaultWatchStreamBytes
	}
	if l.TotalBytes <= 0 {
		l.TotalBytes = DefaultWatchTotalBytes
	}
	if l.CacheBytes <= 0 {
		l.CacheBytes = DefaultWatchCacheBytes
	}
	return l
}

// revEvents is the events of one revision and their size.
type revEvents struct {
	rev  int64
	evs  []*mvccpb.Event
	size int
}

func newWatchState(rev int64, l WatchLimits) *watchState {
	return &watchState{rev: rev, keys: make(map[string][]*watcher), limits: l.withDefaults()}
}

// eventSize approximates an event's encoded size without encoding it: the
// key and value plus room for the revisions, version and lease. It is the
// unit of the watch memory bounds.
func eventSize(ev *mvccpb.Event) int {
	return len(ev.Kv.Key) + len(ev.Kv.Value) + 48
}

func eventsSize(evs []*mvccpb.Event) int {
	n := 0
	for _, ev := range evs {
		n += eventSize(ev)
	}
	return n
}

// watcher is one watch. Immutable fields first.
type watcher struct {
	ws               *WatchStream
	id               WatchID
	key, end         []byte // end nil: the single key; "\x00": every key >= key
	noPut, noDelete  bool
	prevKV           bool
	single           bool
	keyStr           string
	synced           bool  // watchState.mu
	slot             int   // index in its synced group slice; watchState.mu
	minRev           int64 // next revision it needs, unless synced (then max(minRev, rev+1)); watchState.mu
	catchUp          bool  // needs history (unsynced or victim); watchState.mu and ws.mu
	scratchRev       int64 // notify scratch; watchState.mu
	scratch          []*mvccpb.Event
	queued           int  // items in ws.queue; ws.mu
	inReady, removed bool // ws.mu
}

func (w *watcher) matches(key []byte) bool {
	if w.single {
		return bytes.Equal(key, w.key)
	}
	if bytes.Compare(key, w.key) < 0 {
		return false
	}
	return len(w.end) == 1 && w.end[0] == 0 || bytes.Compare(key, w.end) < 0
}

func (g *watchState) addSynced(w *watcher) {
	w.synced = true
	if w.single {
		s := g.keys[w.keyStr]
		w.slot = len(s)
		g.keys[w.keyStr] = append(s, w)
		return
	}
	w.slot = len(g.ranges)
	g.ranges = append(g.ranges, w)
}

func (g *watchState) removeSynced(w *watcher) {
	if !w.synced {
		return
	}
	w.synced = false
	remove := func(s []*watcher) []*watcher {
		last := len(s) - 1
		s[w.slot] = s[last]
		s[w.slot].slot = w.slot
		s[last] = nil
		return s[:last]
	}
	if w.single {
		s := remove(g.keys[w.keyStr])
		if len(s) == 0 {
			delete(g.keys, w.keyStr)
		} else {
			g.keys[w.keyStr] = s
		}
		return
	}
	g.ranges = remove(g.ranges)
}

// fallBehind makes w, which is not synced, catch up from next on. g.mu and
// w.ws.mu are held.
func (g *watchState) fallBehind(w *watcher, next int64) {
	w.minRev = next
	if !w.catchUp {
		w.catchUp = true
		g.behind++
	}
	if w.queued == 0 {
		w.ws.pushReady(w)
	}
	w.ws.kick()
}

// catchUpDone marks w, which caught up, as synced. g.mu and w.ws.mu are held.
func (g *watchState) catchUpDone(w *watcher) {
	w.catchUp = false
	g.addSynced(w)
	g.notBehind()
}

// notBehind counts one watcher fewer behind; the recent events go with the
// last one.
func (g *watchState) notBehind() {
	if g.behind--; g.behind == 0 {
		g.forget()
	}
}

// remember appends the events of rev, the revision after the last one
// remembered, to recent, and trims recent to its byte bound.
func (g *watchState) remember(rev int64, evs []*mvccpb.Event, size int) {
	g.recent = append(g.recent, revEvents{rev: rev, evs: evs, size: size})
	g.recentBytes += size
	for g.recentBytes > g.limits.CacheBytes && len(g.recent) > 1 {
		g.recentBytes -= g.recent[0].size
		g.recent = g.recent[1:]
	}
}

// forget drops the recent events: nobody is behind, or they no longer
// continue the store's history.
func (g *watchState) forget() {
	g.recent, g.recentBytes = nil, 0
}

// unsyncAll moves every synced watcher to catch-up from next on: the store
// was replaced (or revisions were skipped), so what they were fed is no
// longer a prefix of the store's history.
func (g *watchState) unsyncAll(next int64) {
	var all []*watcher
	for _, s := range g.keys {
		all = append(all, s...)
	}
	all = append(all, g.ranges...)
	for _, w := range all {
		g.removeSynced(w)
		w.ws.mu.Lock()
		g.fallBehind(w, max(w.minRev, next))
		w.ws.mu.Unlock()
	}
	g.forget()
}

// noteRestore records that the database was replaced. Store.mu is held.
func (s *Store) noteRestore() {
	if s.watches != nil {
		s.watches.restores++
	}
}

func (s *Store) restores() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.watches.restores
}

// restoreState returns the restores so far and the current revision.
func (s *Store) restoreState() (uint64, int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.watches.restores, s.rev
}

// notifyWatchers feeds the events of revision rev to the synced watchers.
// Called by the writer after every write that changed something, holding
// no Store lock. It never blocks on a consumer: a stream that is full
// turns the watcher into one that catches up from history. The events are
// shared by every watcher and must not be changed after.
func (s *Store) notifyWatchers(rev int64, evs []*mvccpb.Event) {
	restores := s.restores()
	g := s.watches
	g.mu.Lock()
	defer g.mu.Unlock()
	if restores != g.epoch || rev != g.rev+1 {
		g.epoch = restores
		g.unsyncAll(g.rev + 1)
	}
	g.rev = rev
	size := eventsSize(evs)
	var victims []*watcher
	if len(evs) == 1 {
		key := evs[0].Kv.Key
		for _, w := range g.keys[string(key)] {
			if rev >= w.minRev && !w.ws.enqueue(w, rev, evs, size) {
				victims = append(victims, w)
			}
		}
		for _, w := range g.ranges {
			if rev >= w.minRev && w.matches(key) && !w.ws.enqueue(w, rev, evs, size) {
				victims = append(victims, w)
			}
		}
	} else {
		g.touched = g.touched[:0]
		add := func(w *watcher, ev *mvccpb.Event) {
			if rev < w.minRev {
				return
			}
			if w.scratchRev != rev {
				w.scratchRev = rev
				w.scratch = w.scratch[:0]
				g.touched = append(g.touched, w)
			}
			w.scratch = append(w.scratch, ev)
		}
		for _, ev := range evs {
			for _, w := range g.keys[string(ev.Kv.Key)] {
				add(w, ev)
			}
			for _, w := range g.ranges {
				if w.matches(ev.Kv.Key) {
					add(w, ev)
				}
			}
		}
		for i, w := range g.touched {
			mine, n := evs, size
			if len(w.scratch) != len(evs) {
				mine = append([]*mvccpb.Event(nil), w.scratch...)
				n = eventsSize(mine)
			}
			w.scratch = w.scratch[:0]
			if !w.ws.enqueue(w, rev, mine, n) {
				victims = append(victims, w)
			}
			g.touched[i] = nil
		}
	}
	for _, w := range victims {
		g.removeSynced(w)
		w.ws.mu.Lock()
		g.fallBehind(w, rev)
		w.ws.mu.Unlock()
	}
	if g.behind > 0 {
		g.remember(rev, evs, size)
	} else if g.recent != nil {
		g.forget()
	}
}

// Watchers returns the number of watchers of all open streams.
func (s *Store) Watchers() int {
	s.watches.mu.Lock()
	defer s.watches.mu.Unlock()
	return s.watches.count
}

// WatchStats returns the store's watch gauges.
func (s *Store) WatchStats() WatchStats {
	g := s.watches
	g.mu.Lock()
	defer g.mu.Unlock()
	return WatchStats{
		Streams: g.streams, Watchers: g.count, Behind: g.behind,
		PendingEvents: g.pendingEvents.Load(), PendingBytes: g.pendingBytes.Load(),
		CacheBytes: g.recentBytes, EventsSent: g.eventsSent.Load(),
	}
}
