package mvcc

import (
	"bytes"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

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
	size int // eventsSize(evs)
	// compact is the compacted revision of an itemCompacted.
	compact int64
}

// WatchStream is a set of watchers whose responses come out of one queue,
// in order per watcher. It starts no goroutine: the consumer calls Next,
// and Next also catches up watchers that are behind, one bounded step at a
// time and only while the queue has room, so a consumer that stops reading
// costs at most the stream's bounds (responses and bytes). Watch, Cancel,
// RequestProgress* and Close may be called from any goroutine; Next from
// one goroutine at a time.
type WatchStream struct {
	s      *Store
	limit  int
	readyc chan struct{}

	pmu  sync.Mutex  // serialises Next
	last catchUpRead // pmu: the last catch-up read, for the next watcher

	mu       sync.Mutex
	closed   bool
	watchers map[WatchID]*watcher
	nextID   WatchID
	queue    []watchItem
	head     int
	bytes    int        // eventsSize of the queued items
	ready    []*watcher // behind, nothing queued: next in line for history
	flip     bool
}

// NewWatchStream opens a watch stream on s. bufferLen bounds the responses
// queued for a slow consumer (0 means DefaultWatchBufferLen), and the
// store's WatchLimits bound their bytes; past either, further events of its
// watchers are left in history and read back, in order and without loss,
// as the consumer catches up. Close the stream to release it.
func (s *Store) NewWatchStream(bufferLen int) *WatchStream {
	if bufferLen <= 0 {
		bufferLen = DefaultWatchBufferLen
	}
	g := s.watches
	g.mu.Lock()
	g.streams++
	g.mu.Unlock()
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

// room tells whether events of size more bytes may be queued. An empty
// queue always has room, so every stream makes progress. ws.mu is held.
func (ws *WatchStream) room(size int) bool {
	if ws.qlen() == 0 {
		return true
	}
	l := ws.s.watches.limits
	return ws.qlen() < ws.limit && ws.bytes+size <= l.StreamBytes &&
		int(ws.s.watches.pendingBytes.Load())+size <= l.TotalBytes
}

// Full tells whether the stream holds as many responses, or bytes, as its
// bounds allow: a consumer that is not reading. Callers that add watchers
// on a client's behalf wait while it is full, so a client that only
// creates and never reads cannot grow the queue without bound.
func (ws *WatchStream) Full() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.qlen() >= ws.limit || ws.bytes >= ws.s.watches.limits.StreamBytes
}

// push appends an item. ws.mu is held.
func (ws *WatchStream) push(it watchItem) {
	ws.queue = append(ws.queue, it)
	if it.w != nil {
		it.w.queued++
	}
	if it.size > 0 {
		ws.bytes += it.size
		ws.s.watches.pendingBytes.Add(int64(it.size))
		ws.s.watches.pendingEvents.Add(int64(len(it.evs)))
	}
	ws.kick()
}

// pop takes the first item. ws.mu is held.
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
	ws.unaccount(it)
	return it
}

// unaccount removes a dequeued item from the byte counts. ws.mu is held.
func (ws *WatchStream) unaccount(it watchItem) {
	if it.size > 0 {
		ws.bytes -= it.size
		ws.s.watches.pendingBytes.Add(-int64(it.size))
		ws.s.watches.pendingEvents.Add(-int64(len(it.evs)))
	}
}

func (ws *WatchStream) pushReady(w *watcher) {
	if !w.inReady && !w.removed {
		w.inReady = true
		ws.ready = append(ws.ready, w)
	}
}

// enqueue queues the events of rev for synced watcher w, or reports false
// when the stream has no room. watchState.mu is held.
func (ws *WatchStream) enqueue(w *watcher, rev int64, evs []*mvccpb.Event, size int) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return true
	}
	if !ws.room(size) {
		return false
	}
	ws.push(watchItem{w: w, kind: itemEvents, rev: rev, evs: evs, size: size})
	return true
}

// Watch creates a watcher of key (end nil or empty), of [key, end), or of
// every key >= key (end "\x00"), from startRev on: 0 means the next
// revision; a start revision below the compacted revision gets a Canceled
// response with CompactRevision. id AutoWatchID picks an ID; any other id
// is used as given, or fails with ErrWatcherDuplicateID when in use.
// filters drop PUT or DELETE events; prevKV adds each event's previous
// value. The watcher's first response is its Created response.
func (ws *WatchStream) Watch(id WatchID, key, end []byte, startRev int64, filters []pb.WatchCreateRequest_FilterType, prevKV bool) (WatchID, error) {
	if len(end) > 0 && !(len(end) == 1 && end[0] == 0) && bytes.Compare(key, end) >= 0 {
		return InvalidWatchID, ErrEmptyWatcherRange
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
		// Ready once the Created response is taken.
		w.minRev, w.catchUp = startRev, true
		g.behind++
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
	g := ws.s.watches
	g.removeSynced(w)
	if w.catchUp {
		w.catchUp = false
		g.notBehind()
	}
	delete(ws.watchers, w.id)
	w.removed = true
	g.count--
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

// Close cancels every watcher (without responses) and releases the stream
// and everything queued in it. Next returns false from then on.
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
	for _, it := range ws.queue[ws.head:] {
		ws.unaccount(it)
	}
	g.streams--
	ws.closed = true
	ws.last = catchUpRead{}
	ws.queue, ws.head, ws.ready = nil, 0, nil
	ws.kick()
}

// Next returns the stream's next response, or false when there is none for
// now (wait on Ready). Watchers that are behind are caught up from history
// here, one step each, while the queue has room, alternating with queued
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
		preferReady := ws.qlen() == 0 || ws.flip && ws.room(0)
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
				ws.s.watches.eventsSent.Add(uint64(len(resp.Events)))
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
