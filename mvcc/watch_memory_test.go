package mvcc

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// heapMiB is the live heap after a full collection.
func heapMiB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// TestFanOutMemoryIsBoundedWhateverTheConsumers is issue #21's shape in
// miniature: 1,000 watchers of one hot key on a stream nobody reads, 1,000
// on a stream read a little now and then, and one watcher that keeps up,
// through 3,000 writes of 64 KiB (188 MiB of history, 375 GiB if every
// watcher held its own copy). The live heap stays under a fixed bound all
// along, the queued bytes stay within the stream and total bounds, the
// watcher that keeps up gets every event as it happens, and once read, the
// others get every event too, in order, once.
func TestFanOutMemoryIsBoundedWhateverTheConsumers(t *testing.T) {
	cfg := testConfig(t)
	cfg.BatchLimit = 64 // the open batch's values live in the heap until commit
	s := openTest(t, cfg)
	const (
		watchers = 1000
		writes   = 3000
		valSize  = 64 << 10
		// The recent-events window (32 MiB) plus two streams' bounds (4 MiB
		// of queue and a 1 MiB catch-up step each), the open batch (4 MiB)
		// and room for the test's own bookkeeping.
		heapBoundMiB = 96
	)
	base := heapMiB()
	stuck := s.NewWatchStream(0)
	defer stuck.Close()
	slow := s.NewWatchStream(0)
	defer slow.Close()
	fast := s.NewWatchStream(0)
	defer fast.Close()
	for i := 0; i < watchers; i++ {
		mustWatch(t, stuck, AutoWatchID, "hot", "", 0, false)
		mustWatch(t, slow, AutoWatchID, "hot", "", 0, false)
	}
	mustWatch(t, fast, AutoWatchID, "hot", "", 0, false)
	got := map[*WatchStream]map[WatchID]int64{stuck: {}, slow: {}, fast: {}} // last revision seen
	take := func(ws *WatchStream, n int) {
		for ; n > 0; n-- {
			r, ok := ws.Next()
			if !ok {
				return
			}
			if r.Created {
				continue
			}
			last := got[ws][r.WatchID]
			for _, ev := range r.Events {
				if last != 0 && ev.Kv.ModRevision != last+1 || ev.Type != mvccpb.PUT {
					t.Fatalf("watcher %d: event at %d after %d", r.WatchID, ev.Kv.ModRevision, last)
				}
				last = ev.Kv.ModRevision
			}
			got[ws][r.WatchID] = last
		}
	}
	val := strings.Repeat("v", valSize)
	peak := 0.0
	for i := 0; i < writes; i++ {
		rev := mustPut(t, s, "hot", val).Header.Revision
		if err := s.MaybeCommit(); err != nil { // as the apply loop does
			t.Fatal(err)
		}
		take(fast, 1<<30)
		if got[fast][0] != rev {
			t.Fatalf("the watcher that keeps up is at %d after the write of %d", got[fast][0], rev)
		}
		if i%7 == 0 {
			take(slow, 3)
		}
		st := s.WatchStats()
		l := WatchLimits{}.withDefaults()
		if st.PendingBytes > int64(l.TotalBytes) || st.PendingBytes > int64(3*(l.StreamBytes+watchBatchBytes+valSize)) {
			t.Fatalf("after %d writes %d bytes queued: over the bounds", i+1, st.PendingBytes)
		}
		if i%250 == 0 {
			peak = max(peak, heapMiB()-base)
		}
	}
	if peak > heapBoundMiB {
		t.Fatalf("live heap grew by %.0f MiB, over the %d MiB bound", peak, heapBoundMiB)
	}
	if st := s.WatchStats(); st.Behind < watchers {
		t.Fatalf("%d watchers behind; the stuck stream's %d must be", st.Behind, watchers)
	}
	// Now both read: everything arrives.
	for _, ws := range []*WatchStream{stuck, slow} {
		take(ws, 1<<30)
		for id := WatchID(0); id < watchers; id++ {
			if last := got[ws][id]; last != int64(writes+1) {
				t.Fatalf("watcher %d ended at revision %d, want %d", id, last, writes+1)
			}
		}
	}
	t.Logf("heap grew by at most %.1f MiB over %d MiB of history", peak, writes*valSize>>20)
	// Everything goes once the streams do.
	stuck.Close()
	slow.Close()
	fast.Close()
	if st := s.WatchStats(); st != (WatchStats{EventsSent: st.EventsSent}) { // the counter stays
		t.Fatalf("after closing every stream: %+v", st)
	}
	if grown := heapMiB() - base; grown > 8 {
		t.Fatalf("heap still %.1f MiB above where it started", grown)
	}
}

// The queue and the catch-up steps respect small bounds too: every
// response fits, and nothing is lost.
func TestWatchByteBoundsHoldWithTinyLimits(t *testing.T) {
	cfg := testConfig(t)
	cfg.Watch = WatchLimits{StreamBytes: 2000, TotalBytes: 3000, CacheBytes: 1500}
	s := openTest(t, cfg)
	a := s.NewWatchStream(0)
	defer a.Close()
	b := s.NewWatchStream(0)
	defer b.Close()
	mustWatch(t, a, AutoWatchID, "k", "", 0, false)
	mustWatch(t, a, AutoWatchID, "", "\x00", 0, false)
	mustWatch(t, b, AutoWatchID, "k", "", 0, false)
	drain(a)
	drain(b)
	const n = 200
	for i := 0; i < n; i++ {
		mustPut(t, s, "k", fmt.Sprintf("%03d", i))
		if st := s.WatchStats(); int(st.PendingBytes) > 3000+2*eventSize(&mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte("k"), Value: []byte("000")}}) {
			t.Fatalf("write %d: %d bytes queued over a 3000-byte total bound", i, st.PendingBytes)
		}
		if st := s.WatchStats(); st.CacheBytes > 1500 {
			t.Fatalf("write %d: recent events hold %d bytes over a 1500-byte bound", i, st.CacheBytes)
		}
	}
	ra, rb := drain(a), drain(b)
	checkSequenceValues(t, "key watcher on a", ra, 0, n)
	checkSequenceValues(t, "range watcher on a", ra, 1, n)
	checkSequenceValues(t, "key watcher on b", rb, 0, n)
}

// checkSequenceValues checks that id got the puts of "k" with values
// 000..n-1 in order, once each.
func checkSequenceValues(t *testing.T, what string, rs []WatchResponse, id WatchID, n int) {
	t.Helper()
	i := 0
	for _, r := range rs {
		if r.WatchID != id {
			continue
		}
		for _, ev := range r.Events {
			if string(ev.Kv.Value) != fmt.Sprintf("%03d", i) {
				t.Fatalf("%s: event %d is %s", what, i, renderEvent(ev))
			}
			i++
		}
	}
	if i != n {
		t.Fatalf("%s: got %d events, want %d", what, i, n)
	}
}
