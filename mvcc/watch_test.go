package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// drain takes every response available now.
func drain(ws *WatchStream) []WatchResponse {
	var out []WatchResponse
	for {
		r, ok := ws.Next()
		if !ok {
			return out
		}
		out = append(out, r)
	}
}

// render prints responses compactly: "c0@5" created, "p0@5" progress,
// "x0" canceled, "k0@7" compacted at 7, "e0@6[PUT a=1 c2 v1 | DELETE b]"
// events (prev kv as "<prev=..."), one line each.
func render(rs []WatchResponse) string {
	var b strings.Builder
	for _, r := range rs {
		switch {
		case r.Created:
			fmt.Fprintf(&b, "c%d@%d\n", r.WatchID, r.Revision)
		case r.CompactRevision != 0:
			fmt.Fprintf(&b, "k%d@%d\n", r.WatchID, r.CompactRevision)
		case r.Canceled:
			fmt.Fprintf(&b, "x%d\n", r.WatchID)
		case len(r.Events) == 0:
			fmt.Fprintf(&b, "p%d@%d\n", r.WatchID, r.Revision)
		default:
			var evs []string
			for _, ev := range r.Events {
				evs = append(evs, renderEvent(ev))
			}
			fmt.Fprintf(&b, "e%d@%d[%s]\n", r.WatchID, r.Revision, strings.Join(evs, " | "))
		}
	}
	return b.String()
}

func renderEvent(ev *mvccpb.Event) string {
	s := ""
	if ev.Type == mvccpb.Event_DELETE {
		s = fmt.Sprintf("DELETE %s m%d", ev.Kv.Key, ev.Kv.ModRevision)
	} else {
		s = fmt.Sprintf("PUT %s=%s c%d m%d v%d", ev.Kv.Key, ev.Kv.Value, ev.Kv.CreateRevision, ev.Kv.ModRevision, ev.Kv.Version)
	}
	if ev.PrevKv != nil {
		s += fmt.Sprintf(" <prev=%s m%d", ev.PrevKv.Value, ev.PrevKv.ModRevision)
	}
	return s
}

func mustWatch(t *testing.T, ws *WatchStream, id WatchID, key, end string, start int64, prevKV bool, filters ...pb.WatchCreateRequest_FilterType) WatchID {
	t.Helper()
	var e []byte
	if end != "" {
		e = []byte(end)
	}
	got, err := ws.Watch(id, []byte(key), e, start, filters, prevKV)
	if err != nil {
		t.Fatalf("Watch(%d, %q, %q, %d): %v", id, key, end, start, err)
	}
	return got
}

func wantResponses(t *testing.T, what string, got []WatchResponse, want string) {
	t.Helper()
	if g := render(got); g != want {
		t.Fatalf("%s:\ngot:\n%swant:\n%s", what, g, want)
	}
}

func mustDelete(t *testing.T, s *Store, key, end string) {
	t.Helper()
	r := &pb.DeleteRangeRequest{Key: []byte(key)}
	if end != "" {
		r.RangeEnd = []byte(end)
	}
	if _, err := s.DeleteRange(r); err != nil {
		t.Fatalf("DeleteRange(%q, %q): %v", key, end, err)
	}
}

func TestWatchKeyPrefixAndRangeGetTheirEvents(t *testing.T) {
	s := openTest(t, testConfig(t))
	ws := s.NewWatchStream(0)
	defer ws.Close()
	mustWatch(t, ws, AutoWatchID, "foo", "", 0, false)      // 0
	mustWatch(t, ws, AutoWatchID, "foo", "fop", 0, false)   // 1: prefix foo
	mustWatch(t, ws, AutoWatchID, "b", "d", 0, false)       // 2: [b, d)
	mustWatch(t, ws, AutoWatchID, "c", "\x00", 0, false)    // 3: >= c
	mustWatch(t, ws, AutoWatchID, "\x00", "\x00", 0, false) // 4: everything
	wantResponses(t, "created", drain(ws), "c0@1\nc1@1\nc2@1\nc3@1\nc4@1\n")
	mustPut(t, s, "foo", "1")    // 2
	mustPut(t, s, "foo1", "2")   // 3
	mustPut(t, s, "bar", "3")    // 4
	mustPut(t, s, "d", "4")      // 5
	mustDelete(t, s, "foo", "")  // 6
	mustDelete(t, s, "nope", "") // nothing: no revision
	wantResponses(t, "events", drain(ws), ""+
		"e0@2[PUT foo=1 c2 m2 v1]\ne1@2[PUT foo=1 c2 m2 v1]\ne3@2[PUT foo=1 c2 m2 v1]\ne4@2[PUT foo=1 c2 m2 v1]\n"+
		"e1@3[PUT foo1=2 c3 m3 v1]\ne3@3[PUT foo1=2 c3 m3 v1]\ne4@3[PUT foo1=2 c3 m3 v1]\n"+
		"e2@4[PUT bar=3 c4 m4 v1]\ne4@4[PUT bar=3 c4 m4 v1]\n"+
		"e3@5[PUT d=4 c5 m5 v1]\ne4@5[PUT d=4 c5 m5 v1]\n"+
		"e0@6[DELETE foo m6]\ne1@6[DELETE foo m6]\ne3@6[DELETE foo m6]\ne4@6[DELETE foo m6]\n")
}

func TestWatchTxnEventsShareOneResponse(t *testing.T) {
	s := openTest(t, testConfig(t))
	mustPut(t, s, "a", "0") // 2
	ws := s.NewWatchStream(0)
	defer ws.Close()
	mustWatch(t, ws, AutoWatchID, "a", "c", 0, false)
	mustWatch(t, ws, AutoWatchID, "b", "", 0, false)
	_, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("b"), putOp("x"), delOp("a", "")}})
	if err != nil {
		t.Fatal(err)
	}
	wantResponses(t, "txn", drain(ws), "c0@2\nc1@2\ne1@3[PUT b=v c3 m3 v1]\ne0@3[PUT b=v c3 m3 v1 | DELETE a m3]\n")
}

func TestWatchFromOldRevisionReplaysHistoryThenFollows(t *testing.T) {
	s := openTest(t, testConfig(t))
	mustPut(t, s, "k", "1") // 2
	mustPut(t, s, "x", "1") // 3
	mustPut(t, s, "k", "2") // 4
	mustDelete(t, s, "k", "")
	if err := s.Commit(); err != nil { // history both committed and in the overlay
		t.Fatal(err)
	}
	mustPut(t, s, "k", "3") // 6
	ws := s.NewWatchStream(0)
	defer ws.Close()
	mustWatch(t, ws, 7, "k", "", 3, true)
	mustPut(t, s, "k", "4") // 7: arrives while the watcher is still behind
	// History comes in one response, as etcd batches it, up to the
	// current revision.
	want := "c7@6\n" +
		"e7@7[PUT k=2 c2 m4 v2 <prev=1 m2 | DELETE k m5 <prev=2 m4 | PUT k=3 c6 m6 v1 | PUT k=4 c6 m7 v2 <prev=3 m6]\n"
	wantResponses(t, "replay", drain(ws), want)
	mustPut(t, s, "k", "5")
	wantResponses(t, "follow", drain(ws), "e7@8[PUT k=5 c6 m8 v3 <prev=4 m7]\n")
}

func TestWatchFiltersDropEventsAndEmptyBatches(t *testing.T) {
	s := openTest(t, testConfig(t))
	ws := s.NewWatchStream(0)
	defer ws.Close()
	mustWatch(t, ws, AutoWatchID, "k", "", 0, false, pb.WatchCreateRequest_NOPUT)
	mustWatch(t, ws, AutoWatchID, "k", "", 0, false, pb.WatchCreateRequest_NODELETE)
	mustPut(t, s, "k", "1")
	mustDelete(t, s, "k", "")
	wantResponses(t, "filters", drain(ws), "c0@1\nc1@1\ne1@2[PUT k=1 c2 m2 v1]\ne0@3[DELETE k m3]\n")
}

func TestWatchIDsAndErrorsAreEtcds(t *testing.T) {
	s := openTest(t, testConfig(t))
	ws := s.NewWatchStream(0)
	defer ws.Close()
	if id := mustWatch(t, ws, 1, "a", "", 0, false); id != 1 {
		t.Fatalf("chosen id = %d, want 1", id)
	}
	for _, want := range []WatchID{0, 2, 3} {
		if id := mustWatch(t, ws, AutoWatchID, "a", "", 0, false); id != want {
			t.Fatalf("auto id = %d, want %d", id, want)
		}
	}
	if _, err := ws.Watch(2, []byte("a"), nil, 0, nil, false); !errors.Is(err, ErrWatcherDuplicateID) {
		t.Fatalf("duplicate id: %v, want ErrWatcherDuplicateID", err)
	}
	if _, err := ws.Watch(AutoWatchID, []byte("b"), []byte("a"), 0, nil, false); !errors.Is(err, ErrEmptyWatcherRange) {
		t.Fatalf("end < key: %v, want ErrEmptyWatcherRange", err)
	}
	if err := ws.Cancel(42); !errors.Is(err, ErrWatcherNotExist) {
		t.Fatalf("Cancel(42): %v, want ErrWatcherNotExist", err)
	}
	drain(ws)
	mustPut(t, s, "a", "1")
	if err := ws.Cancel(2); err != nil {
		t.Fatal(err)
	}
	// The event queued for 2 before the cancel is not delivered.
	wantResponses(t, "cancel", drain(ws), "e1@2[PUT a=1 c2 m2 v1]\ne0@2[PUT a=1 c2 m2 v1]\ne3@2[PUT a=1 c2 m2 v1]\nx2\n")
	if id := mustWatch(t, ws, 2, "a", "", 0, false); id != 2 {
		t.Fatalf("reusing a canceled id gave %d", id)
	}
}

func TestWatchBelowCompactedRevisionIsCanceledAtItIsServed(t *testing.T) {
	s := openTest(t, testConfig(t))
	for i := 0; i < 5; i++ {
		mustPut(t, s, "k", fmt.Sprint(i)) // 2..6
	}
	if err := s.Compact(4); err != nil {
		t.Fatal(err)
	}
	ws := s.NewWatchStream(0)
	defer ws.Close()
	mustWatch(t, ws, 1, "k", "", 3, false)
	mustWatch(t, ws, 2, "k", "", 4, false)
	mustWatch(t, ws, 3, "k", "", 5, false)
	wantResponses(t, "compacted", drain(ws), "c1@6\nc2@6\nc3@6\nk1@4\n"+
		"e2@6[PUT k=2 c2 m4 v3 | PUT k=3 c2 m5 v4 | PUT k=4 c2 m6 v5]\ne3@6[PUT k=3 c2 m5 v4 | PUT k=4 c2 m6 v5]\n")
	if _, err := ws.Watch(1, []byte("k"), nil, 0, nil, false); err != nil {
		t.Fatalf("compaction-canceled id not released: %v", err)
	}
}

func TestSlowConsumerNeverBlocksWriterAndGetsEveryEvent(t *testing.T) {
	s := openTest(t, testConfig(t))
	slow := s.NewWatchStream(4)
	defer slow.Close()
	fast := s.NewWatchStream(4)
	defer fast.Close()
	for i := 0; i < 3; i++ {
		mustWatch(t, slow, AutoWatchID, "k", "", 0, false)
	}
	mustWatch(t, slow, AutoWatchID, "", "\x00", 0, true)
	mustWatch(t, fast, AutoWatchID, "k", "", 0, false)
	var fastGot []WatchResponse
	const n = 2500 // more than 2 catch-up batches
	for i := 0; i < n; i++ {
		mustPut(t, s, "k", fmt.Sprint(i)) // never blocks: slow is not read
		if i%3 == 0 {
			fastGot = append(fastGot, drain(fast)...)
		}
	}
	fastGot = append(fastGot, drain(fast)...)
	got := drain(slow)
	for id := WatchID(0); id < 4; id++ {
		checkSequence(t, fmt.Sprintf("slow watcher %d", id), got, id, 2, n)
	}
	checkSequence(t, "fast watcher", fastGot, 0, 2, n)
	// Everyone is synced again: progress is reported at the current revision.
	if !slow.RequestProgressAll() {
		t.Fatal("RequestProgressAll: not all synced after draining")
	}
	wantResponses(t, "progress", drain(slow), fmt.Sprintf("p-1@%d\n", n+1))
}

// checkSequence checks that id got Created then exactly one PUT k per
// revision first..first+n-1, value i at revision first+i, in responses of
// at most watchBatchRevs revisions whose revision is their last event's.
func checkSequence(t *testing.T, what string, rs []WatchResponse, id WatchID, first int64, n int) {
	t.Helper()
	next := first
	created := false
	for _, r := range rs {
		if r.WatchID != id {
			continue
		}
		if r.Created {
			created = true
			continue
		}
		if !created || len(r.Events) == 0 || len(r.Events) > watchBatchRevs {
			t.Fatalf("%s: at revision %d got %d events (created %v)", what, next, len(r.Events), created)
		}
		for _, ev := range r.Events {
			if ev.Kv.ModRevision != next || string(ev.Kv.Value) != fmt.Sprint(next-first) {
				t.Fatalf("%s: at revision %d got %s", what, next, renderEvent(ev))
			}
			if id == 3 && next > first && (ev.PrevKv == nil || ev.PrevKv.ModRevision != next-1) {
				t.Fatalf("%s: prev kv of revision %d: %v", what, next, ev.PrevKv)
			}
			next++
		}
		if r.Revision != next-1 {
			t.Fatalf("%s: response revision %d, last event %d", what, r.Revision, next-1)
		}
	}
	if next != first+int64(n) {
		t.Fatalf("%s: got revisions %d..%d, want %d..%d", what, first, next-1, first, first+int64(n)-1)
	}
}

func TestProgressNotificationsOnlyWhenSynced(t *testing.T) {
	s := openTest(t, testConfig(t))
	mustPut(t, s, "a", "1") // 2
	mustPut(t, s, "a", "2") // 3
	ws := s.NewWatchStream(0)
	defer ws.Close()
	mustWatch(t, ws, 5, "a", "", 0, false)
	mustWatch(t, ws, 6, "a", "", 2, false) // behind until drained
	ws.RequestProgress(5)
	ws.RequestProgress(6) // not synced: nothing
	if ws.RequestProgressAll() {
		t.Fatal("RequestProgressAll reported all synced with watcher 6 behind")
	}
	wantResponses(t, "before catch-up", drain(ws), "c5@3\nc6@3\np5@3\ne6@3[PUT a=1 c2 m2 v1 | PUT a=2 c2 m3 v2]\n")
	mustPut(t, s, "b", "1") // 4: no event for them, but progress moves
	ws.RequestProgress(6)
	if !ws.RequestProgressAll() {
		t.Fatal("RequestProgressAll: want all synced")
	}
	wantResponses(t, "after", drain(ws), "p6@4\np-1@4\n")
	empty := s.NewWatchStream(0)
	defer empty.Close()
	if !empty.RequestProgressAll() || len(drain(empty)) != 0 {
		t.Fatal("a stream without watchers must report synced and send nothing")
	}
}

func TestClosedStreamReleasesWatchers(t *testing.T) {
	s := openTest(t, testConfig(t))
	ws := s.NewWatchStream(2)
	for i := 0; i < 10; i++ {
		mustWatch(t, ws, AutoWatchID, "k", "", 0, false)
	}
	mustWatch(t, ws, AutoWatchID, "a", "z", 0, false)
	ws.Close()
	mustPut(t, s, "k", "1")
	if s.Watchers() != 0 {
		t.Fatalf("Watchers() = %d after Close", s.Watchers())
	}
	if n := len(s.watches.keys) + len(s.watches.ranges); n != 0 {
		t.Fatalf("synced groups hold %d entries after Close", n)
	}
	if _, ok := ws.Next(); ok {
		t.Fatal("Next after Close returned a response")
	}
	if _, err := ws.Watch(AutoWatchID, []byte("k"), nil, 0, nil, false); !errors.Is(err, ErrWatchStreamClosed) {
		t.Fatalf("Watch after Close: %v", err)
	}
}

func TestWatchersResyncAfterReplaceDB(t *testing.T) {
	src := openTest(t, testConfig(t))
	for i := 0; i < 5; i++ {
		mustPut(t, src, "k", fmt.Sprint(i)) // 2..6
	}
	var snap bytes.Buffer
	if _, err := src.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, testConfig(t))
	mustPut(t, s, "k", "x") // 2
	ws := s.NewWatchStream(0)
	defer ws.Close()
	mustWatch(t, ws, AutoWatchID, "k", "", 0, false) // from 3
	drain(ws)
	if err := s.ReplaceDB(&snap); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "k", "5") // 7
	wantResponses(t, "after restore", drain(ws), ""+
		"e0@7[PUT k=1 c2 m3 v2 | PUT k=2 c2 m4 v3 | PUT k=3 c2 m5 v4 | PUT k=4 c2 m6 v5 | PUT k=5 c2 m7 v6]\n")
}

// etcd serves a watch from the compacted revision but loses a delete made
// at exactly that revision (compaction drops its tombstone). Cairn keeps
// the tombstones of the compacted revision until the next compaction, so
// the delete arrives.
func TestWatchFromCompactedRevisionGetsItsDelete(t *testing.T) {
	s := openTest(t, testConfig(t))
	mustPut(t, s, "k", "1")   // 2
	mustPut(t, s, "j", "1")   // 3
	mustDelete(t, s, "k", "") // 4
	mustPut(t, s, "j", "2")   // 5
	if err := s.Compact(4); err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		var err error
		if done, err = s.CompactStep(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	ws := s.NewWatchStream(0)
	defer ws.Close()
	mustWatch(t, ws, 1, "", "\x00", 4, false)
	wantResponses(t, "from the compacted revision", drain(ws), "c1@5\ne1@5[DELETE k m4 | PUT j=2 c3 m5 v2]\n")
	// The tombstone is not a key: reads at and after the compaction see k
	// deleted, and the next compaction removes it.
	if r := mustRange(t, s, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}); len(r.Kvs) != 1 || string(r.Kvs[0].Key) != "j" {
		t.Fatalf("range after compaction: %v", r.Kvs)
	}
	mustPut(t, s, "x", "1") // 6
	if err := s.Compact(6); err != nil {
		t.Fatal(err)
	}
	if ki := s.index.get([]byte("k")); ki != nil {
		t.Fatalf("tombstone of k still indexed after the next compaction: %v", ki.gens)
	}
}
