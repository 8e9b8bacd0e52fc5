package v2store

import (
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memBackend is a database bucket in memory.
type memBackend map[string]string

func (m memBackend) Put(k, v []byte) { m[string(k)] = string(v) }
func (m memBackend) Delete(k []byte) { delete(m, string(k)) }
func (m memBackend) ForEach(fn func(k, v []byte) error) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k), []byte(m[k])); err != nil {
			return err
		}
	}
	return nil
}

func bp(b bool) *bool { return &b }

func apply(t *testing.T, s *Store, r *Request) *Event {
	t.Helper()
	// Every request goes through its wire form, as it does through raft.
	in := &Request{}
	*in = *r
	dec, err := Unmarshal(in.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.Apply(dec)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	return ev
}

func applyErr(t *testing.T, s *Store, r *Request, code int) *Error {
	t.Helper()
	_, err := s.Apply(r)
	var e *Error
	if !errors.As(err, &e) || e.ErrorCode != code {
		t.Fatalf("%s %s: got %v, want error code %d", r.Method, r.Path, err, code)
	}
	return e
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestSetGetDirs(t *testing.T) {
	s := New(memBackend{})
	ev := apply(t, s, &Request{Method: "PUT", Path: "/message", Val: "Hello world"})
	if got, want := js(ev), `{"action":"set","node":{"key":"/message","value":"Hello world","modifiedIndex":1,"createdIndex":1}}`; got != want {
		t.Fatalf("set:\n got %s\nwant %s", got, want)
	}
	if !ev.IsCreated() || ev.EtcdIndex != 1 {
		t.Fatalf("created %v index %d", ev.IsCreated(), ev.EtcdIndex)
	}
	ev = apply(t, s, &Request{Method: "PUT", Path: "/message", Val: "Hello etcd"})
	if got, want := js(ev), `{"action":"set","node":{"key":"/message","value":"Hello etcd","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/message","value":"Hello world","modifiedIndex":1,"createdIndex":1}}`; got != want {
		t.Fatalf("set again:\n got %s\nwant %s", got, want)
	}
	apply(t, s, &Request{Method: "PUT", Path: "/a/b/c", Val: "x"}) // makes /a and /a/b
	apply(t, s, &Request{Method: "PUT", Path: "/dir", Dir: true})
	apply(t, s, &Request{Method: "PUT", Path: "/a/_hidden", Val: "h"})
	g, err := s.Get("/", false, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := js(g.Render(time.Unix(0, 0))), `{"action":"get","node":{"dir":true,"nodes":[{"key":"/a","dir":true,"modifiedIndex":3,"createdIndex":3},{"key":"/dir","dir":true,"modifiedIndex":4,"createdIndex":4},{"key":"/message","value":"Hello etcd","modifiedIndex":2,"createdIndex":2}]}}`; got != want {
		t.Fatalf("list:\n got %s\nwant %s", got, want)
	}
	g, _ = s.Get("/a", true, true)
	if got, want := js(g), `{"action":"get","node":{"key":"/a","dir":true,"nodes":[{"key":"/a/b","dir":true,"nodes":[{"key":"/a/b/c","value":"x","modifiedIndex":3,"createdIndex":3}],"modifiedIndex":3,"createdIndex":3}],"modifiedIndex":3,"createdIndex":3}}`; got != want {
		t.Fatalf("recursive:\n got %s\nwant %s", got, want)
	}
	if g, _ := s.Get("/a/_hidden", false, false); *g.Node.Value != "h" {
		t.Fatal("a hidden key is readable by name")
	}
	applyErr(t, s, &Request{Method: "PUT", Path: "/message/x", Val: "v"}, EcodeNotDir)
	applyErr(t, s, &Request{Method: "PUT", Path: "/dir", Val: "v"}, EcodeNotFile)
	applyErr(t, s, &Request{Method: "PUT", Path: "/", Val: "v"}, EcodeRootROnly)
	applyErr(t, s, &Request{Method: "PUT", Path: "/dir", Dir: true, PrevExist: bp(false)}, EcodeNodeExist)
	applyErr(t, s, &Request{Method: "DELETE", Path: "/a"}, EcodeNotFile)
	applyErr(t, s, &Request{Method: "DELETE", Path: "/a", Dir: true}, EcodeDirNotEmpty)
	if _, err := s.Get("/nope", false, false); err.(*Error).ErrorCode != EcodeKeyNotFound || err.(*Error).Cause != "/nope" {
		t.Fatalf("missing key: %v", err)
	}
	ev = apply(t, s, &Request{Method: "DELETE", Path: "/a", Recursive: true})
	if got, want := js(ev), `{"action":"delete","node":{"key":"/a","dir":true,"modifiedIndex":6,"createdIndex":3},"prevNode":{"key":"/a","dir":true,"modifiedIndex":3,"createdIndex":3}}`; got != want {
		t.Fatalf("delete:\n got %s\nwant %s", got, want)
	}
	apply(t, s, &Request{Method: "DELETE", Path: "/dir", Dir: true})
	if s.Index() != 7 {
		t.Fatalf("index %d, want 7", s.Index())
	}
}

func TestCompareAndSwapDelete(t *testing.T) {
	s := New(nil)
	apply(t, s, &Request{Method: "PUT", Path: "/k", Val: "one"})
	e := applyErr(t, s, &Request{Method: "PUT", Path: "/k", Val: "two", PrevValue: "zero"}, EcodeTestFailed)
	if e.Cause != "[zero != one]" || e.Index != 1 || e.StatusCode() != 412 {
		t.Fatalf("%+v", e)
	}
	e = applyErr(t, s, &Request{Method: "PUT", Path: "/k", Val: "two", PrevIndex: 7}, EcodeTestFailed)
	if e.Cause != "[7 != 1]" {
		t.Fatalf("%+v", e)
	}
	ev := apply(t, s, &Request{Method: "PUT", Path: "/k", Val: "two", PrevValue: "one", PrevIndex: 1})
	if ev.Action != ActionCompareAndSwap || ev.Node.ModifiedIndex != 2 || ev.Node.CreatedIndex != 1 {
		t.Fatalf("%s", js(ev))
	}
	applyErr(t, s, &Request{Method: "PUT", Path: "/new", Val: "v", PrevExist: bp(true)}, EcodeKeyNotFound)
	ev = apply(t, s, &Request{Method: "PUT", Path: "/k", Val: "three", PrevExist: bp(true)})
	if ev.Action != ActionUpdate {
		t.Fatalf("%s", js(ev))
	}
	applyErr(t, s, &Request{Method: "DELETE", Path: "/k", PrevValue: "two"}, EcodeTestFailed)
	ev = apply(t, s, &Request{Method: "DELETE", Path: "/k", PrevIndex: 3})
	if got, want := js(ev), `{"action":"compareAndDelete","node":{"key":"/k","modifiedIndex":4,"createdIndex":1},"prevNode":{"key":"/k","value":"three","modifiedIndex":3,"createdIndex":1}}`; got != want {
		t.Fatalf("cad:\n got %s\nwant %s", got, want)
	}
}

func TestInOrderKeys(t *testing.T) {
	s := New(nil)
	a := apply(t, s, &Request{Method: "POST", Path: "/queue", Val: "job1"})
	b := apply(t, s, &Request{Method: "POST", Path: "/queue", Val: "job2"})
	if a.Node.Key != "/queue/00000000000000000001" || b.Node.Key != "/queue/00000000000000000002" || a.Action != ActionCreate {
		t.Fatalf("%s %s", js(a), js(b))
	}
}

func TestTTLExpiresBySync(t *testing.T) {
	s := New(memBackend{})
	base := int64(1_000_000_000_000)
	ev := apply(t, s, &Request{Method: "PUT", Path: "/foo", Val: "bar", Expiration: base + 5e9})
	r := ev.Render(time.Unix(0, base+100))
	if r.Node.TTL != 5 || r.Node.Expiration == nil || !r.Node.Expiration.Equal(time.Unix(0, base+5e9)) {
		t.Fatalf("%s", js(r))
	}
	apply(t, s, &Request{Method: "PUT", Path: "/d", Dir: true, Expiration: base + 3e9})
	apply(t, s, &Request{Method: "PUT", Path: "/d/x", Val: "1"})
	if s.NextExpiry() != base+3e9 {
		t.Fatalf("next expiry %d", s.NextExpiry())
	}
	w, err := s.Watch("/foo", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, &Request{Method: "SYNC", Time: base + 2e9}) // nothing due
	if _, err := s.Get("/d/x", false, false); err != nil {
		t.Fatal(err)
	}
	apply(t, s, &Request{Method: "SYNC", Time: base + 3e9})
	if _, err := s.Get("/d/x", false, false); err == nil {
		t.Fatal("the expired directory's key is still there")
	}
	// Refresh: a new TTL, the same value, no event for the watcher.
	ev = apply(t, s, &Request{Method: "PUT", Path: "/foo", Refresh: bp(true), Expiration: base + 9e9})
	if *ev.Node.Value != "bar" || !ev.Refresh {
		t.Fatalf("%s", js(ev))
	}
	apply(t, s, &Request{Method: "SYNC", Time: base + 6e9})
	select {
	case e := <-w.C:
		t.Fatalf("refreshed key expired: %s", js(e))
	default:
	}
	apply(t, s, &Request{Method: "SYNC", Time: base + 9e9})
	e := <-w.C
	if e.Action != ActionExpire || e.PrevNode.Key != "/foo" || s.NextExpiry() != 0 {
		t.Fatalf("%s", js(e))
	}
	if got := s.StatsJSON()["expireCount"]; got != 2 {
		t.Fatalf("expireCount %d", got)
	}
}

func TestWatchHistoryWindow(t *testing.T) {
	s := New(nil)
	for i := 0; i < HistoryCapacity+10; i++ {
		apply(t, s, &Request{Method: "PUT", Path: "/k", Val: "v"})
	}
	e, err := s.Watch("/k", false, 5)
	if err == nil {
		t.Fatalf("index 5 is outside the window: %v", e)
	}
	ve := err.(*Error)
	if ve.ErrorCode != EcodeEventIndexCleared || ve.Cause != "the requested history has been cleared [11/5]" || ve.Index != 1010 || ve.StatusCode() != 400 {
		t.Fatalf("%+v", ve)
	}
	w, err := s.Watch("/k", false, 11)
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-w.C; ev.Node.ModifiedIndex != 11 {
		t.Fatalf("%s", js(ev))
	}
	// Recursive, on a directory, woken by a write under it; a hidden key
	// does not wake a watcher of the directory.
	rw, _ := s.Watch("/dir", true, 0)
	nw, _ := s.Watch("/dir", false, 0)
	apply(t, s, &Request{Method: "PUT", Path: "/dir/_h", Val: "x"})
	apply(t, s, &Request{Method: "PUT", Path: "/dir/sub/k", Val: "x"})
	if ev := <-rw.C; ev.Node.Key != "/dir/sub/k" {
		t.Fatalf("%s", js(ev))
	}
	select {
	case ev := <-nw.C:
		t.Fatalf("non-recursive watcher woke: %s", js(ev))
	default:
	}
	apply(t, s, &Request{Method: "DELETE", Path: "/dir", Recursive: true})
	if ev := <-nw.C; ev.Action != ActionDelete {
		t.Fatalf("%s", js(ev))
	}
}

func TestPersistAndLoad(t *testing.T) {
	be := memBackend{}
	s := New(be)
	apply(t, s, &Request{Method: "PUT", Path: "/a/b", Val: "1", Expiration: 5e9})
	apply(t, s, &Request{Method: "POST", Path: "/q", Val: "x"})
	apply(t, s, &Request{Method: "PUT", Path: "/gone", Val: "x"})
	apply(t, s, &Request{Method: "DELETE", Path: "/gone"})
	want, _ := s.Get("/", true, true)
	l := New(be)
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	got, _ := l.Get("/", true, true)
	if js(got) != js(want) || l.Index() != s.Index() || l.NextExpiry() != 5e9 {
		t.Fatalf("loaded:\n%s\nwant\n%s", js(got), js(want))
	}
	// The history survives the load, as etcd 3.5's survived a restart
	// (rebuilt from its WAL) and a snapshot install (kept in its .snap).
	w, err := l.Watch("/", true, 2)
	if err != nil {
		t.Fatalf("history before the load: %v", err)
	}
	if ev := <-w.C; ev.Action != ActionCreate || ev.Node.Key != "/q/00000000000000000002" || ev.EtcdIndex != 2 {
		t.Fatalf("the event at index 2 after the load: %s (etcd index %d)", js(ev), ev.EtcdIndex)
	}
	w, err = l.Watch("/a/b", false, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Its expiration came back too: the answer renders its TTL.
	if ev := <-w.C; ev.Node.Expiration == nil || js(ev.Render(time.Unix(3, 0))) != `{"action":"set","node":{"key":"/a/b","value":"1","expiration":"1970-01-01T00:00:05Z","ttl":2,"modifiedIndex":1,"createdIndex":1}}` {
		t.Fatalf("the expiring key's event after the load: %s", js(ev.Render(time.Unix(3, 0))))
	}
	if _, err := l.Watch("/a", false, l.Index()+1); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryWindowIsKept: the backend keeps the last HistoryCapacity
// events, no more; after a load, an index older than them is etcd's 401
// and the oldest kept one is answered.
func TestHistoryWindowIsKept(t *testing.T) {
	be := memBackend{}
	s := New(be)
	const n = HistoryCapacity + 50
	for i := 1; i <= n; i++ {
		apply(t, s, &Request{Method: "PUT", Path: "/k", Val: strconv.Itoa(i)})
	}
	events := 0
	for k := range be {
		if strings.HasPrefix(k, "h0") {
			events++
		}
	}
	if events != HistoryCapacity {
		t.Fatalf("%d events kept in the backend, want %d", events, HistoryCapacity)
	}
	l := New(be)
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Store{s, l} {
		if _, err := st.Watch("/k", false, 50); err == nil || !strings.Contains(err.Error(), "cleared") {
			t.Fatalf("a wait for index 50 of %d: %v; want 401", n, err)
		}
		w, err := st.Watch("/k", false, 51)
		if err != nil {
			t.Fatal(err)
		}
		if ev := <-w.C; *ev.Node.Value != "51" {
			t.Fatalf("the oldest kept event: %s", js(ev))
		}
	}
	// The window goes on sliding after the load, in the backend too.
	apply(t, l, &Request{Method: "PUT", Path: "/k", Val: "next"})
	if _, ok := be[string(eventKey(51))]; ok {
		t.Fatal("the event that left the window is still kept")
	}
	if _, err := l.Watch("/k", false, 51); err == nil {
		t.Fatal("index 51 left the window but is still answered")
	}
}

// TestHistoryFromAnOlderDatabase: a database written before events were
// kept (a tree and an index, no history) answers waits for older indexes
// with 401, and keeps the history from its next event on.
func TestHistoryFromAnOlderDatabase(t *testing.T) {
	be := memBackend{}
	s := New(be)
	for i := 0; i < 5; i++ {
		apply(t, s, &Request{Method: "PUT", Path: "/k", Val: strconv.Itoa(i)})
	}
	for k := range be {
		if k[0] == 'h' {
			delete(be, k) // as an older Cairn wrote it
		}
	}
	l := New(be)
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Watch("/k", false, 3); err == nil {
		t.Fatal("a wait into the history the database does not have was answered")
	}
	apply(t, l, &Request{Method: "PUT", Path: "/k", Val: "6"})
	apply(t, l, &Request{Method: "PUT", Path: "/other", Val: "7"})
	for _, st := range []*Store{l, func() *Store { r := New(be); _ = r.Load(); return r }()} {
		if _, err := st.Watch("/k", false, 5); err == nil {
			t.Fatal("index 5, before the kept history, was answered")
		}
		w, err := st.Watch("/", true, 6)
		if err != nil {
			t.Fatal(err)
		}
		if ev := <-w.C; *ev.Node.Value != "6" {
			t.Fatalf("event 6: %s", js(ev))
		}
	}
}

func TestWatchStream(t *testing.T) {
	s := New(nil)
	w, err := s.WatchStream("/d", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, &Request{Method: "PUT", Path: "/d/a", Val: "1"})
	apply(t, s, &Request{Method: "PUT", Path: "/other", Val: "1"})
	apply(t, s, &Request{Method: "PUT", Path: "/d/b", Val: "2"})
	if a, b := <-w.C, <-w.C; a.Node.Key != "/d/a" || b.Node.Key != "/d/b" {
		t.Fatalf("%s %s", js(a), js(b))
	}
	// A stream that falls 100 events behind is closed.
	for i := 0; i < 101; i++ {
		apply(t, s, &Request{Method: "PUT", Path: "/d/a", Val: "x"})
	}
	n := 0
	for range w.C {
		n++
	}
	if n != 100 {
		t.Fatalf("%d events before the close, want 100", n)
	}
	w.Remove()
	if s.StatsJSON()["watchers"] != 0 {
		t.Fatalf("watchers %d", s.StatsJSON()["watchers"])
	}
}
