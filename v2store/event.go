package v2store

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// NodeExtern is a node as etcd's v2 API shows it.
type NodeExtern struct {
	Key           string      `json:"key,omitempty"`
	Value         *string     `json:"value,omitempty"`
	Dir           bool        `json:"dir,omitempty"`
	Expiration    *time.Time  `json:"expiration,omitempty"`
	TTL           int64       `json:"ttl,omitempty"`
	Nodes         NodeExterns `json:"nodes,omitempty"`
	ModifiedIndex uint64      `json:"modifiedIndex,omitempty"`
	CreatedIndex  uint64      `json:"createdIndex,omitempty"`

	expire int64
}

// NodeExterns is a directory's listing.
type NodeExterns []*NodeExtern

// Event is the result of a v2 request, as etcd's v2 API shows it.
type Event struct {
	Action    string      `json:"action"`
	Node      *NodeExtern `json:"node,omitempty"`
	PrevNode  *NodeExtern `json:"prevNode,omitempty"`
	EtcdIndex uint64      `json:"-"`
	Refresh   bool        `json:"refresh,omitempty"`
}

// Index is the event's index (its node's modified index).
func (e *Event) Index() uint64 { return e.Node.ModifiedIndex }

// IsCreated tells whether the event made a new node (HTTP 201).
func (e *Event) IsCreated() bool {
	return e.Action == ActionCreate || (e.Action == ActionSet && e.PrevNode == nil)
}

// Render returns a copy of e for a response at time now: each expiring
// node's ttl is its remaining seconds rounded up, as etcd computes it, and
// the root's key is empty, as etcd shows it. As etcd's, the answer does
// not carry the event's refresh mark.
func (e *Event) Render(now time.Time) *Event {
	c := *e
	c.Refresh = false
	c.Node = e.Node.render(now)
	c.PrevNode = e.PrevNode.render(now)
	return &c
}

func (n *NodeExtern) render(now time.Time) *NodeExtern {
	if n == nil {
		return nil
	}
	c := *n
	if c.Key == "/" {
		c.Key = ""
	}
	if c.expire != 0 {
		left := time.Duration(c.expire - now.UnixNano())
		ttl := left / time.Second
		if left%time.Second > 0 {
			ttl++
		}
		c.TTL = int64(ttl)
	}
	if n.Nodes != nil {
		c.Nodes = make(NodeExterns, len(n.Nodes))
		for i, k := range n.Nodes {
			c.Nodes[i] = k.render(now)
		}
	}
	return &c
}

// record adds ev to the history without waking watchers (refreshes), in
// memory and in the backend, where the events that fall out of the window
// are deleted.
func (s *Store) record(ev *Event) {
	if s.be != nil {
		if !s.histSaved {
			s.be.Put(histFromKey, []byte(strconv.FormatUint(s.histFrom, 10)))
			s.histSaved = true
		}
		s.be.Put(eventKey(ev.Index()), encodeEvent(ev))
	}
	s.hist = append(s.hist, ev)
	if drop := len(s.hist) - HistoryCapacity; drop > 0 {
		if s.be != nil {
			for _, old := range s.hist[:drop] {
				s.be.Delete(eventKey(old.Index()))
			}
		}
		s.hist = append(s.hist[:0:0], s.hist[drop:]...)
	}
	if s.histFrom != 0 || len(s.hist) == HistoryCapacity {
		s.histFrom = s.hist[0].Index()
	}
}

// storedEvent is an event's record in the backend.
type storedEvent struct {
	Event     *Event `json:"e"`
	EtcdIndex uint64 `json:"i"`
}

func encodeEvent(ev *Event) []byte {
	b, _ := json.Marshal(storedEvent{Event: ev, EtcdIndex: ev.EtcdIndex})
	return b
}

func decodeEvent(b []byte) (*Event, error) {
	var se storedEvent
	if err := json.Unmarshal(b, &se); err != nil {
		return nil, err
	}
	if se.Event == nil || se.Event.Node == nil {
		return nil, fmt.Errorf("no event")
	}
	se.Event.EtcdIndex = se.EtcdIndex
	restoreExpire(se.Event.Node)
	restoreExpire(se.Event.PrevNode)
	return se.Event, nil
}

// restoreExpire sets the unexported expiration times of n's tree from
// their JSON form.
func restoreExpire(n *NodeExtern) {
	if n == nil {
		return
	}
	if n.Expiration != nil {
		n.expire = n.Expiration.UnixNano()
	}
	for _, c := range n.Nodes {
		restoreExpire(c)
	}
}

// notify records ev and wakes the watchers of its key and of every
// directory above it.
func (s *Store) notify(ev *Event) {
	s.record(ev)
	key := ev.Node.Key
	s.notifyWatchers(ev, "/", false)
	p := ""
	for _, c := range strings.Split(strings.Trim(key, "/"), "/") {
		if c == "" {
			continue
		}
		p += "/" + c
		s.notifyWatchers(ev, p, false)
	}
}

func isHidden(watchPath, keyPath string) bool {
	if len(watchPath) > len(keyPath) {
		return false
	}
	after := path.Clean("/" + keyPath[len(watchPath):])
	return strings.Contains(after, "/_")
}

func (s *Store) notifyWatchers(ev *Event, p string, deleted bool) {
	ws := s.watchers[p]
	for w := range ws {
		original := ev.Node.Key == p
		if !original && isHidden(p, ev.Node.Key) {
			continue
		}
		if (w.recursive || original || deleted) && ev.Index() >= w.since {
			if !w.send(ev) {
				delete(ws, w)
			}
		}
	}
	if len(ws) == 0 {
		delete(s.watchers, p)
	}
}

// scan finds the first event at or after index that a wait on key sees.
func (s *Store) scan(key string, recursive bool, index uint64) (*Event, *Error) {
	if index < s.histFrom {
		return nil, NewError(EcodeEventIndexCleared, fmt.Sprintf("the requested history has been cleared [%v/%v]", s.histFrom, index), s.index)
	}
	prefix := key
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	for _, e := range s.hist {
		if e.Index() < index || e.Refresh {
			continue
		}
		ok := e.Node.Key == key || (recursive && strings.HasPrefix(e.Node.Key, prefix))
		if (e.Action == ActionDelete || e.Action == ActionExpire) && e.PrevNode != nil && e.PrevNode.Dir {
			ok = ok || strings.HasPrefix(key, e.PrevNode.Key)
		}
		if ok {
			return e, nil
		}
	}
	return nil, nil
}

// Watcher is one wait: it gets one event, or is closed.
type Watcher struct {
	C          chan *Event
	StartIndex uint64 // the store's index when the wait began (X-Etcd-Index)
	recursive  bool
	stream     bool
	since      uint64
	s          *Store
	key        string
	done       bool
}

// send delivers ev and tells whether the watcher stays (a stream with
// room for more). A stream that fell 100 events behind is closed, as
// etcd's.
func (w *Watcher) send(ev *Event) bool {
	if w.done {
		return false
	}
	if !w.stream {
		w.done = true
		w.C <- ev
		return false
	}
	select {
	case w.C <- ev:
		return true
	default:
		w.close()
		return false
	}
}

func (w *Watcher) close() {
	if !w.done {
		w.done = true
		close(w.C)
	}
}

// Remove stops the wait. Any goroutine.
func (w *Watcher) Remove() {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if ws, ok := w.s.watchers[w.key]; ok {
		delete(ws, w)
		if len(ws) == 0 {
			delete(w.s.watchers, w.key)
		}
	}
}

// Watch waits for the first event on key (or, recursive, under it) at or
// after since (0: the next one). An event still in the history is
// delivered at once; one older than the history is etcd's 401. Any
// goroutine.
func (s *Store) Watch(key string, recursive bool, since uint64) (*Watcher, error) {
	return s.watch(key, recursive, false, since)
}

// WatchStream is Watch for etcd's stream=true: every later event, until
// Remove, or until the watcher falls 100 events behind (then C is closed).
func (s *Store) WatchStream(key string, recursive bool, since uint64) (*Watcher, error) {
	return s.watch(key, recursive, true, since)
}

func (s *Store) watch(key string, recursive, stream bool, since uint64) (*Watcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key = clean(key)
	if since == 0 {
		since = s.index + 1
	}
	w := &Watcher{C: make(chan *Event, 1), StartIndex: s.index, recursive: recursive, stream: stream, since: since, s: s, key: key}
	if stream {
		w.C = make(chan *Event, 100)
	}
	ev, err := s.scan(key, recursive, since)
	if err != nil {
		return nil, err
	}
	if ev != nil {
		// As etcd: a match in the history is the answer, and the watcher
		// (even a stream) is not registered for later events.
		w.send(ev)
		return w, nil
	}
	if s.watchers[key] == nil {
		s.watchers[key] = map[*Watcher]struct{}{}
	}
	s.watchers[key][w] = struct{}{}
	return w, nil
}

// Stats are etcd's /v2/stats/store counters.
type Stats struct {
	GetSuccess, GetFail                           atomic.Uint64
	SetSuccess, SetFail                           atomic.Uint64
	DeleteSuccess, DeleteFail                     atomic.Uint64
	UpdateSuccess, UpdateFail                     atomic.Uint64
	CreateSuccess, CreateFail                     atomic.Uint64
	CompareAndSwapSuccess, CompareAndSwapFail     atomic.Uint64
	CompareAndDeleteSuccess, CompareAndDeleteFail atomic.Uint64
	ExpireCount                                   atomic.Uint64
}

func (st *Stats) inc(action string, ok bool) {
	pick := func(a, b *atomic.Uint64) {
		if ok {
			a.Add(1)
		} else {
			b.Add(1)
		}
	}
	switch action {
	case ActionGet:
		pick(&st.GetSuccess, &st.GetFail)
	case ActionSet:
		pick(&st.SetSuccess, &st.SetFail)
	case ActionDelete:
		pick(&st.DeleteSuccess, &st.DeleteFail)
	case ActionUpdate:
		pick(&st.UpdateSuccess, &st.UpdateFail)
	case ActionCreate:
		pick(&st.CreateSuccess, &st.CreateFail)
	case ActionCompareAndSwap:
		pick(&st.CompareAndSwapSuccess, &st.CompareAndSwapFail)
	case ActionCompareAndDelete:
		pick(&st.CompareAndDeleteSuccess, &st.CompareAndDeleteFail)
	}
}

func (st *Stats) expired() { st.ExpireCount.Add(1) }

// StoreStats is etcd's /v2/stats/store body, its fields in etcd's order.
type StoreStats struct {
	GetSuccess              uint64 `json:"getsSuccess"`
	GetFail                 uint64 `json:"getsFail"`
	SetSuccess              uint64 `json:"setsSuccess"`
	SetFail                 uint64 `json:"setsFail"`
	DeleteSuccess           uint64 `json:"deleteSuccess"`
	DeleteFail              uint64 `json:"deleteFail"`
	UpdateSuccess           uint64 `json:"updateSuccess"`
	UpdateFail              uint64 `json:"updateFail"`
	CreateSuccess           uint64 `json:"createSuccess"`
	CreateFail              uint64 `json:"createFail"`
	CompareAndSwapSuccess   uint64 `json:"compareAndSwapSuccess"`
	CompareAndSwapFail      uint64 `json:"compareAndSwapFail"`
	CompareAndDeleteSuccess uint64 `json:"compareAndDeleteSuccess"`
	CompareAndDeleteFail    uint64 `json:"compareAndDeleteFail"`
	ExpireCount             uint64 `json:"expireCount"`
	Watchers                uint64 `json:"watchers"`
}

// Stats returns the counters of /v2/stats/store.
func (s *Store) Stats() StoreStats {
	m := s.StatsJSON()
	return StoreStats{
		GetSuccess: m["getsSuccess"], GetFail: m["getsFail"], SetSuccess: m["setsSuccess"], SetFail: m["setsFail"],
		DeleteSuccess: m["deleteSuccess"], DeleteFail: m["deleteFail"], UpdateSuccess: m["updateSuccess"], UpdateFail: m["updateFail"],
		CreateSuccess: m["createSuccess"], CreateFail: m["createFail"],
		CompareAndSwapSuccess: m["compareAndSwapSuccess"], CompareAndSwapFail: m["compareAndSwapFail"],
		CompareAndDeleteSuccess: m["compareAndDeleteSuccess"], CompareAndDeleteFail: m["compareAndDeleteFail"],
		ExpireCount: m["expireCount"], Watchers: m["watchers"],
	}
}

// StatsJSON is the counters of /v2/stats/store by etcd's names.
func (s *Store) StatsJSON() map[string]uint64 {
	st := &s.stats
	s.mu.RLock()
	n := 0
	for _, ws := range s.watchers {
		n += len(ws)
	}
	s.mu.RUnlock()
	return map[string]uint64{
		"getsSuccess": st.GetSuccess.Load(), "getsFail": st.GetFail.Load(),
		"setsSuccess": st.SetSuccess.Load(), "setsFail": st.SetFail.Load(),
		"deleteSuccess": st.DeleteSuccess.Load(), "deleteFail": st.DeleteFail.Load(),
		"updateSuccess": st.UpdateSuccess.Load(), "updateFail": st.UpdateFail.Load(),
		"createSuccess": st.CreateSuccess.Load(), "createFail": st.CreateFail.Load(),
		"compareAndSwapSuccess": st.CompareAndSwapSuccess.Load(), "compareAndSwapFail": st.CompareAndSwapFail.Load(),
		"compareAndDeleteSuccess": st.CompareAndDeleteSuccess.Load(), "compareAndDeleteFail": st.CompareAndDeleteFail.Load(),
		"expireCount": st.ExpireCount.Load(), "watchers": uint64(n),
	}
}
