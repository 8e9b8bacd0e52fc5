package mvcc

import (
	"fmt"
	"path/filepath"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"pgregory.net/rapid"
)

// wmodel is the watch model: the full event history, written down
// independently of the store.
type wmodel struct {
	rev     int64
	live    map[string]*mvccpb.KeyValue
	events  []*mvccpb.Event // every event ever, in revision order
	compact int64
}

func (m *wmodel) put(key, val string) *mvccpb.Event {
	kv := &mvccpb.KeyValue{Key: []byte(key), Value: []byte(val), CreateRevision: m.rev + 1, ModRevision: m.rev + 1, Version: 1}
	if p := m.live[key]; p != nil {
		kv.CreateRevision, kv.Version = p.CreateRevision, p.Version+1
	}
	return &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv}
}

// commit applies the events of one write (at least one).
func (m *wmodel) commit(evs []*mvccpb.Event) {
	m.rev++
	for _, ev := range evs {
		if ev.Type == mvccpb.Event_PUT {
			m.live[string(ev.Kv.Key)] = ev.Kv
		} else {
			delete(m.live, string(ev.Kv.Key))
		}
		m.events = append(m.events, ev)
	}
}

// valueAt returns key's value as of rev.
func (m *wmodel) valueAt(key []byte, rev int64) *mvccpb.KeyValue {
	var cur *mvccpb.KeyValue
	for _, ev := range m.events {
		if ev.Kv.ModRevision > rev {
			break
		}
		if string(ev.Kv.Key) == string(key) {
			cur = nil
			if ev.Type == mvccpb.Event_PUT {
				cur = ev.Kv
			}
		}
	}
	return cur
}

type mwatcher struct {
	stream          int
	id              WatchID
	key, end        string
	start           int64 // effective first revision
	noPut, noDelete bool
	prevKV          bool
	got             []*mvccpb.Event
	lastRev         int64
	created         bool
	compactedAt     int64
	canceled        bool
}

func (w *mwatcher) wants(ev *mvccpb.Event) bool {
	if ev.Kv.ModRevision < w.start || ev.Type == mvccpb.Event_PUT && w.noPut || ev.Type == mvccpb.Event_DELETE && w.noDelete {
		return false
	}
	k := string(ev.Kv.Key)
	if w.end == "" {
		return k == w.key
	}
	return k >= w.key && (w.end == "\x00" || k < w.end)
}

var watchKeys = []string{"a", "b", "c", "d"}

// TestRapidWatchersSeeExactlyTheModelHistory: random writes, commits,
// compactions, watchers created at random revisions on streams with tiny
// buffers, and consumers reading at random; every watcher's events are
// exactly the model's history slice for it (in order, no gap, no
// duplicate), or a prefix of it ended by a compaction cancel that the
// compaction justifies.
func TestRapidWatchersSeeExactlyTheModelHistory(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir := t.TempDir()
		// Byte bounds from tiny (a few events) to the defaults, so that
		// catching up reads from the recent events, from the database, or
		// both, in steps of any size.
		limits := WatchLimits{
			StreamBytes: rapid.SampledFrom([]int{1, 100, 300, 0}).Draw(rt, "streamBytes"),
			TotalBytes:  rapid.SampledFrom([]int{1, 200, 0}).Draw(rt, "totalBytes"),
			CacheBytes:  rapid.SampledFrom([]int{1, 100, 400, 0}).Draw(rt, "cacheBytes"),
		}
		s, err := Open(Config{Path: filepath.Join(dir, fmt.Sprintf("db-%d", rapid.IntRange(0, 1<<30).Draw(rt, "dbname"))), NoSync: true, BatchLimit: rapid.IntRange(1, 20).Draw(rt, "batch"), Watch: limits})
		if err != nil {
			rt.Fatal(err)
		}
		defer s.Close()
		m := &wmodel{rev: 1, live: map[string]*mvccpb.KeyValue{}}
		nStreams := rapid.IntRange(1, 3).Draw(rt, "streams")
		streams := make([]*WatchStream, nStreams)
		for i := range streams {
			streams[i] = s.NewWatchStream(rapid.IntRange(1, 6).Draw(rt, fmt.Sprintf("buf%d", i)))
		}
		var watchers []*mwatcher
		byID := map[[2]int64]*mwatcher{}
		take := func(i int, r WatchResponse) {
			w := byID[[2]int64{int64(i), int64(r.WatchID)}]
			if w == nil || w.canceled {
				rt.Fatalf("stream %d: response for unknown or canceled watcher: %s", i, render([]WatchResponse{r}))
			}
			switch {
			case r.Created:
				if w.created {
					rt.Fatalf("watcher %d created twice", r.WatchID)
				}
				w.created = true
			case r.CompactRevision != 0:
				w.canceled, w.compactedAt = true, r.CompactRevision
			case len(r.Events) == 0:
				rt.Fatalf("unexpected progress %s", render([]WatchResponse{r}))
			default:
				if !w.created || r.Revision <= w.lastRev {
					rt.Fatalf("watcher %d: revision %d after %d (created %v)", r.WatchID, r.Revision, w.lastRev, w.created)
				}
				// A response covers the revisions after the previous one up
				// to its own: one write's, or a catch-up batch of many.
				for _, ev := range r.Events {
					if ev.Kv.ModRevision <= w.lastRev || ev.Kv.ModRevision > r.Revision {
						rt.Fatalf("event at %d in response for (%d, %d]", ev.Kv.ModRevision, w.lastRev, r.Revision)
					}
				}
				w.lastRev = r.Revision
				w.got = append(w.got, r.Events...)
			}
		}
		read := func(i, max int) {
			for n := 0; n < max; n++ {
				r, ok := streams[i].Next()
				if !ok {
					return
				}
				take(i, r)
			}
		}
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for step := 0; step < steps; step++ {
			switch rapid.IntRange(0, 10).Draw(rt, "op") {
			case 0, 1, 2: // put
				k := rapid.SampledFrom(watchKeys).Draw(rt, "key")
				v := fmt.Sprint(step)
				ev := m.put(k, v)
				if _, err := s.Put(&pb.PutRequest{Key: []byte(k), Value: []byte(v)}); err != nil {
					rt.Fatal(err)
				}
				m.commit([]*mvccpb.Event{ev})
			case 3: // delete a range
				k := rapid.SampledFrom(watchKeys).Draw(rt, "dkey")
				e := rapid.SampledFrom([]string{"", "c", "e"}).Draw(rt, "dend")
				var evs []*mvccpb.Event
				for _, key := range watchKeys {
					if m.live[key] != nil && (e == "" && key == k || e != "" && key >= k && key < e) {
						evs = append(evs, &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: m.rev + 1}})
					}
				}
				r := &pb.DeleteRangeRequest{Key: []byte(k)}
				if e != "" {
					r.RangeEnd = []byte(e)
				}
				if _, err := s.DeleteRange(r); err != nil {
					rt.Fatal(err)
				}
				if len(evs) > 0 {
					m.commit(evs)
				}
			case 4: // txn putting two keys
				ks := rapid.Permutation(watchKeys).Draw(rt, "tkeys")[:2]
				evs := []*mvccpb.Event{m.put(ks[0], "t"), m.put(ks[1], "t")}
				if _, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
					{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(ks[0]), Value: []byte("t")}}},
					{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(ks[1]), Value: []byte("t")}}},
				}}); err != nil {
					rt.Fatal(err)
				}
				m.commit(evs)
			case 5: // compact
				if m.rev > m.compact {
					c := rapid.Int64Range(m.compact+1, m.rev).Draw(rt, "compact")
					if err := s.Compact(c); err != nil {
						rt.Fatal(err)
					}
					m.compact = c
					if _, err := s.CompactStep(); err != nil {
						rt.Fatal(err)
					}
				}
			case 10: // issue #21's shape: many watchers of one key on one stream, from now
				i := rapid.IntRange(0, nStreams-1).Draw(rt, "hstream")
				k := rapid.SampledFrom(watchKeys).Draw(rt, "hkey")
				for n := rapid.IntRange(2, 30).Draw(rt, "hcount"); n > 0; n-- {
					w := &mwatcher{stream: i, key: k, start: m.rev + 1}
					id, err := streams[i].Watch(AutoWatchID, []byte(k), nil, 0, nil, false)
					if err != nil {
						rt.Fatal(err)
					}
					w.id = id
					watchers = append(watchers, w)
					byID[[2]int64{int64(i), int64(id)}] = w
				}
			case 6, 7: // watch
				i := rapid.IntRange(0, nStreams-1).Draw(rt, "wstream")
				w := &mwatcher{stream: i, key: rapid.SampledFrom(watchKeys).Draw(rt, "wkey"), prevKV: rapid.Bool().Draw(rt, "prevkv")}
				w.end = rapid.SampledFrom([]string{"", "", "\x00", "e"}).Draw(rt, "wend")
				var filters []pb.WatchCreateRequest_FilterType
				switch rapid.IntRange(0, 4).Draw(rt, "filter") {
				case 0:
					w.noPut = true
					filters = append(filters, pb.WatchCreateRequest_NOPUT)
				case 1:
					w.noDelete = true
					filters = append(filters, pb.WatchCreateRequest_NODELETE)
				}
				start := rapid.Int64Range(0, m.rev+2).Draw(rt, "start")
				w.start = start
				if start == 0 {
					w.start = m.rev + 1
				}
				var end []byte
				if w.end != "" {
					end = []byte(w.end)
				}
				id, err := streams[i].Watch(AutoWatchID, []byte(w.key), end, start, filters, w.prevKV)
				if err != nil {
					rt.Fatal(err)
				}
				w.id = id
				watchers = append(watchers, w)
				byID[[2]int64{int64(i), int64(id)}] = w
			case 8: // a consumer reads a little
				i := rapid.IntRange(0, nStreams-1).Draw(rt, "rstream")
				read(i, rapid.IntRange(1, 10).Draw(rt, "rcount"))
			case 9:
				if err := s.Commit(); err != nil {
					rt.Fatal(err)
				}
			}
		}
		for i := range streams {
			read(i, 1<<30)
		}
		for _, w := range watchers {
			var want []*mvccpb.Event
			for _, ev := range m.events {
				if w.wants(ev) {
					want = append(want, ev)
				}
			}
			what := fmt.Sprintf("watcher %d on stream %d (key %q end %q start %d noput %v nodel %v)", w.id, w.stream, w.key, w.end, w.start, w.noPut, w.noDelete)
			if !w.created {
				rt.Fatalf("%s: never created", what)
			}
			if len(w.got) > len(want) {
				rt.Fatalf("%s: got %d events, model has %d", what, len(w.got), len(want))
			}
			for j, ev := range w.got {
				if renderEvent(&mvccpb.Event{Type: ev.Type, Kv: ev.Kv}) != renderEvent(want[j]) {
					rt.Fatalf("%s: event %d = %s, want %s", what, j, renderEvent(ev), renderEvent(want[j]))
				}
				if w.prevKV {
					p := m.valueAt(ev.Kv.Key, ev.Kv.ModRevision-1)
					if ev.Type == mvccpb.Event_PUT && ev.Kv.Version == 1 {
						p = nil
					}
					if ev.PrevKv == nil && p != nil && ev.Kv.ModRevision-1 >= m.compact {
						rt.Fatalf("%s: event %s lacks prev kv %v", what, renderEvent(ev), p)
					}
					if ev.PrevKv != nil && (p == nil || string(p.Value) != string(ev.PrevKv.Value) || p.ModRevision != ev.PrevKv.ModRevision) {
						rt.Fatalf("%s: event %s has prev kv %v, want %v", what, renderEvent(ev), ev.PrevKv, p)
					}
				}
			}
			switch {
			case w.canceled:
				// Canceled because its next revision was compacted: the
				// compaction is above its start and above the revision after
				// the last one it was sent (a watch from the compacted
				// revision itself is served).
				if w.compactedAt > m.compact || w.compactedAt <= w.start || w.compactedAt <= w.lastRev+1 {
					rt.Fatalf("%s: canceled by compaction at %d (store compacted at %d, last event %d)", what, w.compactedAt, m.compact, w.lastRev)
				}
				if len(w.got) < len(want) && want[len(w.got)].Kv.ModRevision <= w.lastRev {
					rt.Fatalf("%s: gap before the compaction cancel", what)
				}
			case len(w.got) != len(want):
				rt.Fatalf("%s: got %d events, want %d; first missing %s", what, len(w.got), len(want), renderEvent(want[len(w.got)]))
			}
		}
		for i, ws := range streams {
			if !ws.RequestProgressAll() {
				rt.Fatalf("stream %d: not synced after draining", i)
			}
			for {
				r, ok := ws.Next()
				if !ok {
					break
				}
				if r.WatchID != InvalidWatchID || r.Revision != m.rev || len(r.Events) != 0 {
					rt.Fatalf("stream %d: after draining got %s, want progress at %d", i, render([]WatchResponse{r}), m.rev)
				}
			}
			ws.Close()
		}
	})
}
