package mvcc

import (
	"bytes"
	"errors"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
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

	// watchBatchRevs bounds the revisions one catch-up step reads from
	// history for one watcher.
	watchBatchRevs = 1000
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
//   - Events: all the watcher's events of one revision, in order, after
//     filters; Revision is that revision. Empty batches are never sent.
//   - Progress (no events, not created, not canceled): the watcher has been
//     sent every event up to and including Revision.
//   - Canceled: the last response of a watcher. CompactRevision is set when
//     the cancel is due to compaction: the watcher's next revision was at or
//     below it, so its events are gone.
type WatchResponse struct {
	WatchID         WatchID
	Revision        int64
	Events          []*mvccpb.Event
	CompactRevision int64
	Created         bool
	Canceled        bool
}

// watchState is the store's side of watching: the synced watchers, fed by
// every write, and the last revision they were fed.
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
	restores uint64 // bumped (under Store.mu) when the database is replaced
	// scratch for notify
	touched []*watcher
}

func newWatchState(rev int64) *watchState {
	return &watchState{rev: rev, keys: make(map[string][]*watcher)}
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
	scratchRev       int64 // notify scratch; watchState.mu
	scratch          []*mvccpb.Event
	queued           int  // items in ws.queue; ws.mu
	catchUp          bool // needs history (unsynced or victim); ws.mu
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
		w.minRev = max(w.minRev, next)
		w.ws.mu.Lock()
		w.catchUp = true
		if w.queued == 0 {
			w.ws.pushReady(w)
		}
		w.ws.kick()
		w.ws.mu.Unlock()
	}
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

// notifyWatchers feeds the events of revision rev to the synced watchers.
// Called by the writer after every write that changed something, holding
// no Store lock. It never blocks on a consumer: a stream whose buffer is
// full turns the watcher into a victim that catches up from history.
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
	var victims []*watcher
	if len(evs) == 1 {
		key := evs[0].Kv.Key
		for _, w := range g.keys[string(key)] {
			if rev >= w.minRev && !w.ws.enqueue(w, rev, evs) {
				victims = append(victims, w)
			}
		}
		for _, w := range g.ranges {
			if rev >= w.minRev && w.matches(key) && !w.ws.enqueue(w, rev, evs) {
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
			mine := evs
			if len(w.scratch) != len(evs) {
				mine = append([]*mvccpb.Event(nil), w.scratch...)
			}
			w.scratch = w.scratch[:0]
			if !w.ws.enqueue(w, rev, mine) {
				victims = append(victims, w)
			}
			g.touched[i] = nil
		}
	}
	for _, w := range victims {
		g.removeSynced(w)
		w.minRev = rev
		w.ws.mu.Lock()
		w.catchUp = true
		if w.queued == 0 {
			w.ws.pushReady(w)
		}
		w.ws.kick()
		w.ws.mu.Unlock()
	}
}

// itemKind says what a queued item becomes.
type itemKind uint8

const (
	itemEvents itemKind = iota
	itemCreated
	itemProgress
	itemCanceled
	itemCompacted
)

type watchItem struct {
	w    *watcher // nil for a stream-wide progress notification
	kind itemKind
	rev  int64
	evs  []*mvccpb.Event
	// compact is the compacted revision of an itemCompacted.
	compact int64
}

// WatchStream is a set of watchers whose responses come out of one queue,
// in order per watcher. It starts no goroutine: the consumer calls Next,
// and Next also catches up watchers that are behind (reading history in
// bounded steps), so a consumer that stops reading costs at most the
// configured buffer. Watch, Cancel, RequestProgress* and Close may be
// called from any goroutine; Next from one goroutine at a time.
type WatchStream struct {
	s      *Store
	limit  int
	readyc chan struct{}

	pmu sync.Mutex // serialises Next

	mu       sync.Mutex
	closed   bool
	watchers map[WatchID]*watcher
	nextID   WatchID
	queue    []watchItem
	head     int
	ready    []*watcher // behind, nothing queued: next in line for history
	flip     bool
}

// NewWatchStream opens a watch stream on s. bufferLen bounds the responses
// queued for a slow consumer (0 means DefaultWatchBufferLen); once it is
// reached, further events of its watchers are left in history and read
// back, in order and without loss, as the consumer catches up. Close the
// stream to release it.
func (s *Store) NewWatchStream(bufferLen int) *WatchStream {
	if bufferLen <= 0 {
		bufferLen = DefaultWatchBufferLen
	}
	return &WatchStream{s: s, limit: bufferLen, readyc: make(chan struct{}, 1), watchers: make(map[WatchID]*watcher)}
}

// Ready returns a channel that receives a value whenever responses may be
// available. After each receive, call Next until it returns false.
func (ws *WatchStream) Ready() <-chan struct{} { return ws.readyc }

func (ws *WatchStream) kick() {
	select {
	case ws.readyc <- struct{}{}:
	default:
	}
}

func (ws *WatchStream) qlen() int { return len(ws.queue) - ws.head }

// Full tells whether the stream holds as many responses as its buffer
// allows: a consumer that is not reading. Callers that add watchers on
// a client's behalf wait while it is full, so a client that only creates
// and never reads cannot grow the queue without bound.
func (ws *WatchStream) Full() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.qlen() >= ws.limit
}

// push appends an item. ws.mu is held.
func (ws *WatchStream) push(it watchItem) {
	ws.queue = append(ws.queue, it)
	if it.w != nil {
		it.w.queued++
	}
	ws.kick()
}

func (ws *WatchStream) pop() watchItem {
	it := ws.queue[ws.head]
	ws.queue[ws.head] = watchItem{}
	ws.head++
	switch {
	case ws.head == len(ws.queue):
		ws.queue, ws.head = ws.queue[:0], 0
	case ws.head >= 1024 && 2*ws.head >= len(ws.queue):
		n := copy(ws.queue, ws.queue[ws.head:])
		clear(ws.queue[n:])
		ws.queue, ws.head = ws.queue[:n], 0
	}
	return it
}

func (ws *WatchStream) pushReady(w *watcher) {
	if !w.inReady && !w.removed {
		w.inReady = true
		ws.ready = append(ws.ready, w)
	}
}

// enqueue queues the events of rev for synced watcher w, or reports false
// when the buffer is full. watchState.mu is held.
func (ws *WatchStream) enqueue(w *watcher, rev int64, evs []*mvccpb.Event) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return true
	}
	if ws.qlen() >= ws.limit {
		return false
	}
	ws.push(watchItem{w: w, kind: itemEvents, rev: rev, evs: evs})
	return true
}

// Watch creates a watcher of key (end nil or empty), of [key, end), or of
// every key >= key (end "\x00"), from startRev on: 0 means the next
// revision; a start revision at or below the compacted revision gets a
// Canceled response with CompactRevision. id AutoWatchID picks an ID; any
// other id is used as given, or fails with ErrWatcherDuplicateID when in
// use. filters drop PUT or DELETE events; prevKV adds each event's previous
// value. The watcher's first response is its Created response.
func (ws *WatchStream) Watch(id WatchID, key, end []byte, startRev int64, filters []pb.WatchCreateRequest_FilterType, prevKV bool) (WatchID, error) {
	if len(end) > 0 && !(len(end) == 1 && end[0] == 0) && bytes.Compare(key, end) >= 0 {
		return InvalidWatchID, ErrEmptyWatcherRange
	}
	if id < 0 {
		return InvalidWatchID, ErrWatcherDuplicateID
	}
	g := ws.s.watches
	g.mu.Lock()
	defer g.mu.Unlock()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return InvalidWatchID, ErrWatchStreamClosed
	}
	if id == AutoWatchID {
		for ws.watchers[ws.nextID] != nil {
			ws.nextID++
		}
		id = ws.nextID
		ws.nextID++
	} else if ws.watchers[id] != nil {
		return InvalidWatchID, ErrWatcherDuplicateID
	}
	w := &watcher{ws: ws, id: id, key: bytes.Clone(key), prevKV: prevKV, single: len(end) == 0}
	if w.key == nil {
		w.key = []byte{}
	}
	if !w.single {
		w.end = bytes.Clone(end)
	}
	w.keyStr = string(w.key)
	for _, f := range filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			w.noPut = true
		case pb.WatchCreateRequest_NODELETE:
			w.noDelete = true
		}
	}
	ws.watchers[id] = w
	g.count++
	ws.push(watchItem{w: w, kind: itemCreated, rev: g.rev})
	if startRev <= 0 || startRev > g.rev {
		w.minRev = max(g.rev+1, startRev)
		g.addSynced(w)
	} else {
		w.minRev = startRev
		w.catchUp = true // ready once the Created response is taken
	}
	return id, nil
}

// Cancel removes watcher id; its last response is a Canceled one, and no
// event queued for it before is delivered. Unknown ids give
// ErrWatcherNotExist.
func (ws *WatchStream) Cancel(id WatchID) error {
	g := ws.s.watches
	g.mu.Lock()
	defer g.mu.Unlock()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.watchers[id]
	if w == nil || ws.closed {
		return ErrWatcherNotExist
	}
	ws.drop(w)
	ws.push(watchItem{w: w, kind: itemCanceled})
	return nil
}

// drop forgets w. Both locks are held.
func (ws *WatchStream) drop(w *watcher) {
	ws.s.watches.removeSynced(w)
	delete(ws.watchers, w.id)
	w.removed = true
	ws.s.watches.count--
}

// Watchers returns the number of watchers of all open streams.
func (s *Store) Watchers() int {
	s.watches.mu.Lock()
	defer s.watches.mu.Unlock()
	return s.watches.count
}

// RequestProgress queues a progress notification for watcher id if it is
// synced (has been given every event up to the current revision); else, or
// if the buffer is full, it does nothing.
func (ws *WatchStream) RequestProgress(id WatchID) {
	g := ws.s.watches
	g.mu.Lock()
	defer g.mu.Unlock()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.watchers[id]
	if w == nil || !w.synced || ws.qlen() >= ws.limit {
		return
	}
	ws.push(watchItem{w: w, kind: itemProgress, rev: g.rev})
}

// RequestProgressAll queues one progress notification with InvalidWatchID
// if every watcher of the stream is synced, and reports whether they were;
// a stream without watchers gets no notification.
func (ws *WatchStream) RequestProgressAll() bool {
	g := ws.s.watches
	g.mu.Lock()
	defer g.mu.Unlock()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, w := range ws.watchers {
		if !w.synced {
			return false
		}
	}
	if len(ws.watchers) > 0 && ws.qlen() < ws.limit {
		ws.push(watchItem{kind: itemProgress, rev: g.rev})
	}
	return true
}

// Close cancels every watcher (without responses) and releases the stream.
// Next returns false from then on.
func (ws *WatchStream) Close() {
	g := ws.s.watches
	g.mu.Lock()
	defer g.mu.Unlock()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return
	}
	for _, w := range ws.watchers {
		ws.drop(w)
	}
	ws.closed = true
	ws.queue, ws.head, ws.ready = nil, 0, nil
	ws.kick()
}

// Next returns the stream's next response, or false when there is none for
// now (wait on Ready). Watchers that are behind are caught up from history
// here, at most watchBatchRevs revisions per step, alternating with queued
// responses so that neither starves.
func (ws *WatchStream) Next() (WatchResponse, bool) {
	ws.pmu.Lock()
	defer ws.pmu.Unlock()
	for {
		ws.mu.Lock()
		if ws.closed {
			ws.mu.Unlock()
			return WatchResponse{}, false
		}
		var w *watcher
		preferReady := ws.flip || ws.qlen() == 0
		ws.flip = !ws.flip
		for preferReady && len(ws.ready) > 0 && w == nil {
			w = ws.ready[0]
			ws.ready[0] = nil
			ws.ready = ws.ready[1:]
			w.inReady = false
			if w.removed {
				w = nil
			}
		}
		if w == nil && ws.qlen() > 0 {
			it := ws.pop()
			removed := false
			if it.w != nil {
				it.w.queued--
				removed = it.w.removed
				if it.w.queued == 0 && it.w.catchUp {
					ws.pushReady(it.w)
				}
			}
			ws.mu.Unlock()
			if resp, ok := ws.build(it, removed); ok {
				return resp, true
			}
			continue
		}
		ws.mu.Unlock()
		if w == nil {
			return WatchResponse{}, false
		}
		ws.s.catchUp(w)
	}
}

// build turns an item into a response; false means it is not to be sent
// (every event filtered out, or its watcher was canceled).
func (ws *WatchStream) build(it watchItem, removed bool) (WatchResponse, bool) {
	switch it.kind {
	case itemCreated:
		return WatchResponse{WatchID: it.w.id, Revision: it.rev, Created: true}, true
	case itemCanceled:
		return WatchResponse{WatchID: it.w.id, Revision: it.rev, Canceled: true}, true
	case itemCompacted:
		return WatchResponse{WatchID: it.w.id, Revision: it.rev, CompactRevision: it.compact, Canceled: true}, true
	case itemProgress:
		if it.w == nil {
			return WatchResponse{WatchID: InvalidWatchID, Revision: it.rev}, true
		}
		if removed {
			return WatchResponse{}, false
		}
		return WatchResponse{WatchID: it.w.id, Revision: it.rev}, true
	}
	if removed {
		return WatchResponse{}, false
	}
	w := it.w
	evs := it.evs
	if w.noPut || w.noDelete || w.prevKV {
		out := make([]*mvccpb.Event, 0, len(evs))
		for _, ev := range evs {
			if ev.Type == mvccpb.Event_PUT && w.noPut || ev.Type == mvccpb.Event_DELETE && w.noDelete {
				continue
			}
			if w.prevKV && !(ev.Type == mvccpb.Event_PUT && ev.Kv.Version == 1) {
				ev = &mvccpb.Event{Type: ev.Type, Kv: ev.Kv, PrevKv: ws.s.kvAt(ev.Kv.Key, ev.Kv.ModRevision-1)}
			}
			out = append(out, ev)
		}
		evs = out
	}
	if len(evs) == 0 {
		return WatchResponse{}, false
	}
	return WatchResponse{WatchID: w.id, Revision: it.rev, Events: evs}, true
}
