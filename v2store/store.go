// Package v2store is the tree of etcd's v2 API (--enable-v2): directories,
// keys with values and expiration times, the store index, the event history
// that waits are served from, and the waiting watchers. Member cores apply
// etcd's v2 requests to it in log order (node/v2.go); it reads no clock
// (expiry is a SYNC request carrying the proposer's time, as in etcd) and
// keeps its tree, one record per node, in the member's database through a
// Backend, so it is durable and travels in snapshots. Apply runs on the
// core's goroutine; Get, Watch and the stats may run on any goroutine.
package v2store

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Actions, as etcd names them in responses.
const (
	ActionGet              = "get"
	ActionCreate           = "create"
	ActionSet              = "set"
	ActionUpdate           = "update"
	ActionDelete           = "delete"
	ActionCompareAndSwap   = "compareAndSwap"
	ActionCompareAndDelete = "compareAndDelete"
	ActionExpire           = "expire"
)

// HistoryCapacity is how many events waits can look back over, as etcd's.
const HistoryCapacity = 1000

// Backend keeps the tree's records (the member's database).
type Backend interface {
	Put(key, value []byte)
	Delete(key []byte)
	ForEach(fn func(k, v []byte) error) error
}

type node struct {
	path     string
	value    string
	dir      bool
	created  uint64
	modified uint64
	expire   int64 // unix nanoseconds; 0: permanent
	parent   *node
	children map[string]*node
}

func (n *node) name() string { return path.Base(n.path) }

func (n *node) hidden() bool { return strings.HasPrefix(n.name(), "_") }

// record is a node's form in the database.
type record struct {
	Value    string `json:"v,omitempty"`
	Dir      bool   `json:"d,omitempty"`
	Created  uint64 `json:"c"`
	Modified uint64 `json:"m"`
	Expire   int64  `json:"e,omitempty"`
}

var indexKey = []byte("index")

// histFromKey keeps the index from which the history kept in the backend
// (one record per event, "h" and the index in 20 digits) is complete;
// written with the first event kept.
var histFromKey = []byte("hfrom")

func eventKey(i uint64) []byte { return []byte(fmt.Sprintf("h%020d", i)) }

func nodeKey(p string) []byte { return []byte("n" + p) }

// Store is the v2 tree. The zero value is not usable; see New.
type Store struct {
	mu       sync.RWMutex
	be       Backend
	root     *node
	index    uint64
	ttl      map[*node]struct{}
	hist     []*Event
	histFrom uint64 // the oldest index waits may ask for; 0: any
	// histSaved tells the backend holds histFromKey: the history it keeps
	// is complete from that index on (see record).
	histSaved bool
	watchers  map[string]map[*Watcher]struct{}
	stats     Stats
}

// New returns an empty store writing to be (nil: memory only).
func New(be Backend) *Store {
	s := &Store{be: be}
	s.reset()
	return s
}

func (s *Store) reset() {
	s.root = &node{path: "/", dir: true, children: map[string]*node{}}
	s.index = 0
	s.ttl = map[*node]struct{}{}
	s.hist = nil
	s.histFrom = 0
	s.histSaved = false
	for _, ws := range s.watchers {
		for w := range ws {
			w.close()
		}
	}
	s.watchers = map[string]map[*Watcher]struct{}{}
}

// Load replaces the tree with the backend's records (start, and after a
// snapshot installs a new database), event history included, as etcd 3.5
// kept its history in its snapshots and rebuilt it from its WAL: a wait
// for an index of the last 1000 events is answered after a restart or a
// snapshot install as before. Waiting watchers are closed, as etcd closes
// them on recovery.
func (s *Store) Load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
	if s.be == nil {
		return nil
	}
	histFrom := uint64(0)
	err := s.be.ForEach(func(k, v []byte) error {
		if string(k) == string(indexKey) {
			i, err := strconv.ParseUint(string(v), 10, 64)
			s.index = i
			return err
		}
		if string(k) == string(histFromKey) {
			i, err := strconv.ParseUint(string(v), 10, 64)
			histFrom, s.histSaved = i, true
			return err
		}
		if len(k) > 1 && k[0] == 'h' {
			ev, err := decodeEvent(v)
			if err != nil {
				return fmt.Errorf("v2store: event record %q: %w", k, err)
			}
			s.hist = append(s.hist, ev) // in index order: the keys are
			return nil
		}
		if len(k) < 2 || k[0] != 'n' {
			return nil
		}
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("v2store: record %q: %w", k, err)
		}
		p := string(k[1:])
		// Keys are in order, so a node's parent came before it.
		parent, err := s.lookup(path.Dir(p))
		if err != nil || !parent.dir {
			return fmt.Errorf("v2store: record %q has no parent directory", k)
		}
		n := &node{path: p, value: r.Value, dir: r.Dir, created: r.Created, modified: r.Modified, expire: r.Expire, parent: parent}
		if n.dir {
			n.children = map[string]*node{}
		}
		parent.children[n.name()] = n
		if n.expire != 0 {
			s.ttl[n] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case s.histSaved:
		// The history is complete from histFrom, or, once full, from
		// its first event.
		s.histFrom = histFrom
		if len(s.hist) > 0 && (histFrom != 0 || len(s.hist) >= HistoryCapacity) {
			s.histFrom = s.hist[0].Index()
		}
	case s.index > 0:
		// A database written before the history was kept (or without
		// any event since): nothing before now can be answered.
		s.hist = nil
		s.histFrom = s.index + 1
	}
	return nil
}

func (s *Store) lookup(p string) (*node, *Error) {
	cur := s.root
	if p == "/" {
		return cur, nil
	}
	for _, c := range strings.Split(p[1:], "/") {
		if !cur.dir {
			return nil, NewError(EcodeNotDir, cur.path, s.index)
		}
		next, ok := cur.children[c]
		if !ok {
			return nil, NewError(EcodeKeyNotFound, path.Join(cur.path, c), s.index)
		}
		cur = next
	}
	return cur, nil
}

func clean(p string) string { return path.Clean(path.Join("/", p)) }

func (s *Store) save(n *node) {
	if s.be == nil || n == s.root {
		return
	}
	b, _ := json.Marshal(record{Value: n.value, Dir: n.dir, Created: n.created, Modified: n.modified, Expire: n.expire})
	s.be.Put(nodeKey(n.path), b)
}

func (s *Store) saveIndex() {
	if s.be != nil {
		s.be.Put(indexKey, []byte(strconv.FormatUint(s.index, 10)))
	}
}

// Index is the store's index (etcd's X-Etcd-Index).
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// Apply applies one committed v2 request: its event, or an *Error that is
// the request's deterministic outcome. Core goroutine only.
func (s *Store) Apply(r *Request) (*Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev, err := s.apply(r)
	if err != nil {
		return nil, err
	}
	return ev, nil
}

func (s *Store) apply(r *Request) (*Event, *Error) {
	refresh := r.Refresh != nil && *r.Refresh
	switch r.Method {
	case "POST":
		return s.count(ActionCreate)(s.notified(s.create(r.Path, r.Dir, r.Val, true, false, r.Expiration, ActionCreate)))
	case "PUT":
		if r.PrevExist != nil {
			if *r.PrevExist {
				if r.PrevIndex == 0 && r.PrevValue == "" {
					return s.count(ActionUpdate)(s.update(r.Path, r.Val, r.Expiration, refresh))
				}
				return s.count(ActionCompareAndSwap)(s.compareAndSwap(r.Path, r.PrevValue, r.PrevIndex, r.Val, r.Expiration, refresh))
			}
			return s.count(ActionCreate)(s.notified(s.create(r.Path, r.Dir, r.Val, false, false, r.Expiration, ActionCreate)))
		}
		if r.PrevIndex > 0 || r.PrevValue != "" {
			return s.count(ActionCompareAndSwap)(s.compareAndSwap(r.Path, r.PrevValue, r.PrevIndex, r.Val, r.Expiration, refresh))
		}
		return s.count(ActionSet)(s.set(r.Path, r.Dir, r.Val, r.Expiration, refresh))
	case "DELETE":
		if r.PrevIndex > 0 || r.PrevValue != "" {
			return s.count(ActionCompareAndDelete)(s.compareAndDelete(r.Path, r.PrevValue, r.PrevIndex))
		}
		return s.count(ActionDelete)(s.delete(r.Path, r.Dir, r.Recursive))
	case "QGET":
		return s.get(r.Path, r.Recursive, r.Sorted)
	case "SYNC":
		s.expire(r.Time)
		return nil, nil
	}
	return nil, NewError(EcodeInvalidForm, "unknown method "+r.Method, s.index)
}

func (s *Store) notified(ev *Event, err *Error) (*Event, *Error) {
	if err == nil {
		s.notify(ev)
	}
	return ev, err
}

func (s *Store) count(action string) func(*Event, *Error) (*Event, *Error) {
	return func(ev *Event, err *Error) (*Event, *Error) {
		s.stats.inc(action, err == nil)
		return ev, err
	}
}

// Get reads a node, as a GET without quorum does (the member's applied
// state). Any goroutine.
func (s *Store) Get(p string, recursive, sorted bool) (*Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ev, err := s.get(p, recursive, sorted)
	if err != nil {
		return nil, err
	}
	return ev, nil
}

func (s *Store) get(p string, recursive, sorted bool) (*Event, *Error) {
	n, err := s.lookup(clean(p))
	s.stats.inc(ActionGet, err == nil)
	if err != nil {
		return nil, err
	}
	ev := &Event{Action: ActionGet, Node: extern(n, recursive, sorted, true), EtcdIndex: s.index}
	return ev, nil
}

// extern renders n. A directory lists its children (not hidden ones) when
// list or recursive is set; deeper levels only when recursive.
func extern(n *node, recursive, sorted, list bool) *NodeExtern {
	e := &NodeExtern{Key: n.path, Dir: n.dir, CreatedIndex: n.created, ModifiedIndex: n.modified, expire: n.expire}
	if n.expire != 0 {
		t := time.Unix(0, n.expire).UTC()
		e.Expiration = &t
	}
	if !n.dir {
		v := n.value
		e.Value = &v
		return e
	}
	if !list && !recursive {
		return e
	}
	e.Nodes = NodeExterns{}
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic order; etcd's is a map's
	for _, name := range names {
		c := n.children[name]
		if c.hidden() {
			continue
		}
		e.Nodes = append(e.Nodes, extern(c, recursive, sorted, false))
	}
	return e
}

func (s *Store) checkDir(parent *node, name string) (*node, *Error) {
	if c, ok := parent.children[name]; ok {
		if c.dir {
			return c, nil
		}
		return nil, NewError(EcodeNotDir, c.path, s.index)
	}
	c := &node{path: path.Join(parent.path, name), dir: true, created: s.index + 1, modified: s.index + 1, parent: parent, children: map[string]*node{}}
	parent.children[name] = c
	s.save(c)
	return c, nil
}

func (s *Store) create(p string, dir bool, value string, unique, replace bool, expire int64, action string) (*Event, *Error) {
	cur, next := s.index, s.index+1
	if unique {
		p += "/" + fmt.Sprintf("%020s", strconv.FormatUint(next, 10))
	}
	p = clean(p)
	if p == "/" {
		return nil, NewError(EcodeRootROnly, "/", cur)
	}
	if expire < 0 {
		expire = 0
	}
	dirName, name := path.Split(p)
	d := s.root
	for _, c := range strings.Split(strings.Trim(dirName, "/"), "/") {
		if c == "" {
			continue
		}
		var err *Error
		if d, err = s.checkDir(d, c); err != nil {
			err.Index = cur
			return nil, err
		}
	}
	ev := &Event{Action: action}
	if old, ok := d.children[name]; ok {
		if !replace {
			return nil, NewError(EcodeNodeExist, p, cur)
		}
		if old.dir {
			return nil, NewError(EcodeNotFile, p, cur)
		}
		ev.PrevNode = extern(old, false, false, false)
		s.remove(old, nil)
	}
	n := &node{path: p, dir: dir, value: value, created: next, modified: next, expire: expire, parent: d}
	if dir {
		n.value = ""
		n.children = map[string]*node{}
	}
	d.children[name] = n
	if expire != 0 {
		s.ttl[n] = struct{}{}
	}
	s.save(n)
	s.index = next
	s.saveIndex()
	ev.Node = extern(n, false, false, false)
	ev.EtcdIndex = next
	return ev, nil
}

func (s *Store) set(p string, dir bool, value string, expire int64, refresh bool) (*Event, *Error) {
	p = clean(p)
	n, gerr := s.lookup(p)
	if gerr != nil && gerr.ErrorCode != EcodeKeyNotFound {
		return nil, gerr
	}
	if refresh {
		if gerr != nil {
			return nil, gerr
		}
		value = n.value
	}
	ev, err := s.create(p, dir, value, false, true, expire, ActionSet)
	if err != nil {
		return nil, err
	}
	if refresh {
		ev.Refresh = true
		s.record(ev)
	} else {
		s.notify(ev)
	}
	return ev, nil
}

func compareCause(n *node, prevValue string, prevIndex uint64) (bool, string) {
	indexOK := prevIndex == 0 || n.modified == prevIndex
	valueOK := prevValue == "" || n.value == prevValue
	switch {
	case indexOK && valueOK:
		return true, ""
	case indexOK:
		return false, fmt.Sprintf("[%v != %v]", prevValue, n.value)
	case valueOK:
		return false, fmt.Sprintf("[%v != %v]", prevIndex, n.modified)
	}
	return false, fmt.Sprintf("[%v != %v] [%v != %v]", prevValue, n.value, prevIndex, n.modified)
}

func (s *Store) setTTL(n *node, expire int64) {
	if expire < 0 {
		expire = 0
	}
	n.expire = expire
	if expire == 0 {
		delete(s.ttl, n)
	} else {
		s.ttl[n] = struct{}{}
	}
}

func (s *Store) compareAndSwap(p, prevValue string, prevIndex uint64, value string, expire int64, refresh bool) (*Event, *Error) {
	p = clean(p)
	if p == "/" {
		return nil, NewError(EcodeRootROnly, "/", s.index)
	}
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, NewError(EcodeNotFile, p, s.index)
	}
	if ok, cause := compareCause(n, prevValue, prevIndex); !ok {
		return nil, NewError(EcodeTestFailed, cause, s.index)
	}
	if refresh {
		value = n.value
	}
	s.index++
	ev := &Event{Action: ActionCompareAndSwap, PrevNode: extern(n, false, false, false), EtcdIndex: s.index}
	n.value, n.modified = value, s.index
	s.setTTL(n, expire)
	s.save(n)
	s.saveIndex()
	ev.Node = extern(n, false, false, false)
	if refresh {
		ev.Refresh = true
		s.record(ev)
	} else {
		s.notify(ev)
	}
	return ev, nil
}

func (s *Store) update(p, value string, expire int64, refresh bool) (*Event, *Error) {
	p = clean(p)
	if p == "/" {
		return nil, NewError(EcodeRootROnly, "/", s.index)
	}
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.dir && value != "" {
		return nil, NewError(EcodeNotFile, p, s.index)
	}
	if refresh {
		value = n.value
	}
	s.index++
	ev := &Event{Action: ActionUpdate, PrevNode: extern(n, false, false, false), EtcdIndex: s.index}
	n.modified = s.index
	if !n.dir {
		n.value = value
	}
	s.setTTL(n, expire)
	s.save(n)
	s.saveIndex()
	ev.Node = extern(n, false, false, false)
	if refresh {
		ev.Refresh = true
		s.record(ev)
	} else {
		s.notify(ev)
	}
	return ev, nil
}

// remove unlinks n and its subtree, calling fn with each removed path.
func (s *Store) remove(n *node, fn func(string)) {
	if n.dir {
		names := make([]string, 0, len(n.children))
		for name := range n.children {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			s.remove(n.children[name], fn)
		}
	}
	if n.parent != nil && n.parent.children[n.name()] == n {
		delete(n.parent.children, n.name())
	}
	delete(s.ttl, n)
	if s.be != nil {
		s.be.Delete(nodeKey(n.path))
	}
	if fn != nil {
		fn(n.path)
	}
}

func (s *Store) delete(p string, dir, recursive bool) (*Event, *Error) {
	p = clean(p)
	if p == "/" {
		return nil, NewError(EcodeRootROnly, "/", s.index)
	}
	if recursive {
		dir = true
	}
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.dir {
		if !dir {
			return nil, NewError(EcodeNotFile, n.path, s.index)
		}
		if len(n.children) != 0 && !recursive {
			return nil, NewError(EcodeDirNotEmpty, n.path, s.index)
		}
	}
	next := s.index + 1
	ev := &Event{Action: ActionDelete, Node: &NodeExtern{Key: p, Dir: n.dir, CreatedIndex: n.created, ModifiedIndex: next}, PrevNode: extern(n, false, false, false), EtcdIndex: next}
	s.removeNotify(n, ev)
	s.index = next
	s.saveIndex()
	s.notify(ev)
	return ev, nil
}

func (s *Store) removeNotify(n *node, ev *Event) {
	var removed []string
	s.remove(n, func(p string) { removed = append(removed, p) })
	for _, p := range removed {
		s.notifyWatchers(ev, p, true)
	}
}

func (s *Store) compareAndDelete(p, prevValue string, prevIndex uint64) (*Event, *Error) {
	p = clean(p)
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, NewError(EcodeNotFile, p, s.index)
	}
	if ok, cause := compareCause(n, prevValue, prevIndex); !ok {
		return nil, NewError(EcodeTestFailed, cause, s.index)
	}
	s.index++
	ev := &Event{Action: ActionCompareAndDelete, Node: &NodeExtern{Key: p, CreatedIndex: n.created, ModifiedIndex: s.index}, PrevNode: extern(n, false, false, false), EtcdIndex: s.index}
	s.removeNotify(n, ev)
	s.saveIndex()
	s.notify(ev)
	return ev, nil
}

// expire removes every node whose expiration is not after cutoff (unix
// nanoseconds), earliest first, one event and one index each.
func (s *Store) expire(cutoff int64) {
	due := make([]*node, 0)
	for n := range s.ttl {
		if n.expire <= cutoff {
			due = append(due, n)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if due[i].expire != due[j].expire {
			return due[i].expire < due[j].expire
		}
		return due[i].path < due[j].path
	})
	for _, n := range due {
		if _, ok := s.ttl[n]; !ok {
			continue // went with an earlier directory
		}
		s.index++
		ev := &Event{Action: ActionExpire, Node: &NodeExtern{Key: n.path, Dir: n.dir, CreatedIndex: n.created, ModifiedIndex: s.index}, PrevNode: extern(n, false, false, false), EtcdIndex: s.index}
		s.removeNotify(n, ev)
		s.stats.expired()
		s.notify(ev)
	}
	if len(due) > 0 {
		s.saveIndex()
	}
}

// NextExpiry is the earliest expiration time in the tree (unix
// nanoseconds), or 0 when no node expires. Any goroutine.
func (s *Store) NextExpiry() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var first int64
	for n := range s.ttl {
		if first == 0 || n.expire < first {
			first = n.expire
		}
	}
	return first
}
