package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// These tests pin watch behaviours clients depend on to what etcd 3.7
// does. Except where a test says Cairn does better, each passes against
// etcd itself: CAIRN_E2E_CAIRN=/path/to/etcd go test ./e2e -run TestWatchCompat

// rawWatch opens a Watch stream on m without clientv3, so responses are
// seen exactly as sent (fragments, headers, IDs).
func rawWatch(t *testing.T, m *Member) pb.Watch_WatchClient {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(m.ClientURL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	wctx, cancel := context.WithTimeout(context.Background(), watchTimeout)
	t.Cleanup(cancel)
	st, err := pb.NewWatchClient(conn).Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func rawCreate(t *testing.T, st pb.Watch_WatchClient, r *pb.WatchCreateRequest) {
	t.Helper()
	if err := st.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: r}}); err != nil {
		t.Fatal(err)
	}
}

func rawRecv(t *testing.T, st pb.Watch_WatchClient) *pb.WatchResponse {
	t.Helper()
	r, err := st.Recv()
	if err != nil {
		t.Fatalf("watch recv: %v", err)
	}
	return r
}

func compactE(t *testing.T, cli *clientv3.Client, rev int64) {
	t.Helper()
	if _, err := cli.Compact(ctx(t), rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact %d: %v", rev, err)
	}
}

// A watcher catching up from history gets every event up to now in its
// first response, with the current revision in the header, as etcd
// batches it.
func TestWatchCompatHistoryComesInOneResponse(t *testing.T) {
	c := NewCluster(t, 1)
	cli := c.Client(t)
	first := mustPutE(t, cli, "h", "0")
	for i := 1; i < 50; i++ {
		mustPutE(t, cli, "h", fmt.Sprint(i))
	}
	last := mustPutE(t, cli, "other", "x")
	wc := cli.Watch(ctx(t), "h", clientv3.WithRev(first))
	r := recvWatch(t, wc)
	if len(r.Events) != 50 || r.Header.Revision != last {
		t.Fatalf("first response: %d events, header revision %d; want 50 events at %d", len(r.Events), r.Header.Revision, last)
	}
	for i, ev := range r.Events {
		if string(ev.Kv.Value) != fmt.Sprint(i) || ev.Kv.ModRevision != first+int64(i) {
			t.Fatalf("event %d: %s", i, evsString([]*clientv3.Event{ev}))
		}
	}
}

// etcd serves a watch that starts at the compaction revision; only a start
// below it is compacted. The cancel's header revision is 0, as etcd's is.
func TestWatchCompatCompactionRevisionIsServedBelowIsCanceled(t *testing.T) {
	c := NewCluster(t, 1)
	cli := c.Client(t)
	for i := 0; i < 5; i++ {
		mustPutE(t, cli, "k", fmt.Sprint(i)) // 2..6
	}
	compactE(t, cli, 4)
	st := rawWatch(t, c.Members[0])
	rawCreate(t, st, &pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 4, WatchId: 1})
	if r := rawRecv(t, st); !r.Created || r.WatchId != 1 {
		t.Fatalf("create at the compaction revision: %v", r)
	}
	r := rawRecv(t, st)
	if len(r.Events) != 3 || r.Events[0].Kv.ModRevision != 4 || r.Header.Revision != 6 {
		t.Fatalf("watch from the compaction revision got %v", r)
	}
	rawCreate(t, st, &pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 3, WatchId: 2})
	if r := rawRecv(t, st); !r.Created || r.WatchId != 2 {
		t.Fatalf("create below the compaction revision: %v", r)
	}
	r = rawRecv(t, st)
	if r.WatchId != 2 || !r.Canceled || r.CompactRevision != 4 || r.Header.GetRevision() != 0 {
		t.Fatalf("watch below the compaction revision got %v; want canceled, compact_revision 4, header revision 0", r)
	}
	// clientv3 sees ErrCompacted.
	wr := recvWatch(t, cli.Watch(ctx(t), "k", clientv3.WithRev(2)))
	if wr.CompactRevision != 4 || wr.Err() == nil {
		t.Fatalf("clientv3 watch below the compaction: %+v", wr)
	}
}

// A delete made at exactly the compaction revision reaches a watch from
// that revision: compaction keeps that revision's tombstones until the next
// compaction. etcd 3.7 passes this test too.
func TestWatchCompatFromCompactionRevisionGetsTheDeleteAtIt(t *testing.T) {
	c := NewCluster(t, 1)
	cli := c.Client(t)
	mustPutE(t, cli, "gone", "1")
	mustPutE(t, cli, "stay", "1")
	dr, err := cli.Delete(ctx(t), "gone")
	if err != nil {
		t.Fatal(err)
	}
	del := dr.Header.Revision
	mustPutE(t, cli, "stay", "2")
	compactE(t, cli, del)
	wc := cli.Watch(ctx(t), "", clientv3.WithPrefix(), clientv3.WithRev(del))
	got := collectEvents(t, wc, 2)
	want := []string{fmt.Sprintf("DELETE gone= m%d", del), fmt.Sprintf("PUT stay=2 m%d", del+1)}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("watch from the compaction revision got %q, want %q", got, want)
	}
	// The tombstone is history, not a key.
	gr, err := cli.Get(ctx(t), "", clientv3.WithPrefix())
	if err != nil || len(gr.Kvs) != 1 || string(gr.Kvs[0].Key) != "stay" {
		t.Fatalf("get after compaction: %v %v", gr, err)
	}
}

// etcd refuses to create a watch with a negative start revision, as it
// refuses a compacted one (whether or not anything was compacted), and
// accepts a client-chosen negative watch ID.
func TestWatchCompatNegativeStartRevisionAndWatchID(t *testing.T) {
	c := NewCluster(t, 1)
	cli := c.Client(t)
	mustPutE(t, cli, "k", "1")
	rev := mustPutE(t, cli, "k", "2")
	st := rawWatch(t, c.Members[0])
	for _, compacted := range []bool{false, true} {
		if compacted {
			compactE(t, cli, rev)
		}
		rawCreate(t, st, &pb.WatchCreateRequest{Key: []byte("k"), StartRevision: -5, WatchId: 7})
		r := rawRecv(t, st)
		if !r.Created || !r.Canceled || r.WatchId != -1 || r.CancelReason != "etcdserver: mvcc: required revision has been compacted" || r.Header.GetRevision() != rev {
			t.Fatalf("create with a negative start revision (compacted %v): %v", compacted, r)
		}
	}
	rawCreate(t, st, &pb.WatchCreateRequest{Key: []byte("k"), WatchId: -42})
	if r := rawRecv(t, st); !r.Created || r.Canceled || r.WatchId != -42 {
		t.Fatalf("create with watch ID -42: %v", r)
	}
	mustPutE(t, cli, "k", "3")
	if r := rawRecv(t, st); r.WatchId != -42 || len(r.Events) != 1 || string(r.Events[0].Kv.Value) != "3" {
		t.Fatalf("event for watch ID -42: %v", r)
	}
}

// With fragment set, a response of at least --max-request-bytes plus
// gRPC's 512 KiB allowance is split the way etcd splits it: as many events
// per fragment as stay under that, every fragment but the last flagged,
// each with the header.
func TestWatchCompatFragmentsLargeResponses(t *testing.T) {
	const limit = 100 * 1024
	c := NewClusterArgs(t, 1, "--max-request-bytes", fmt.Sprint(limit))
	cli := c.Client(t)
	val := strings.Repeat("v", limit-1024)
	first := mustPutE(t, cli, "big", val)
	for i := 1; i < 10; i++ {
		mustPutE(t, cli, "big", val)
	}
	st := rawWatch(t, c.Members[0])
	rawCreate(t, st, &pb.WatchCreateRequest{Key: []byte("big"), StartRevision: first, Fragment: true})
	if r := rawRecv(t, st); !r.Created {
		t.Fatalf("create: %v", r)
	}
	// 10 events of 99 KiB: six fit under 612 KiB, seven do not.
	var sizes []string
	for n := 0; n < 10; {
		r := rawRecv(t, st)
		if r.Header.GetRevision() != first+9 {
			t.Fatalf("fragment header revision %d, want %d", r.Header.GetRevision(), first+9)
		}
		n += len(r.Events)
		sizes = append(sizes, fmt.Sprintf("%d/%v", len(r.Events), r.Fragment))
	}
	if got := strings.Join(sizes, " "); got != "6/true 4/false" {
		t.Fatalf("fragments (events/fragment flag): %s", got)
	}
	// Without fragment the same history comes whole.
	rawCreate(t, st, &pb.WatchCreateRequest{Key: []byte("big"), StartRevision: first})
	if r := rawRecv(t, st); !r.Created {
		t.Fatalf("create: %v", r)
	}
	if r := rawRecv(t, st); len(r.Events) != 10 || r.Fragment {
		t.Fatalf("unfragmented: %d events, fragment %v", len(r.Events), r.Fragment)
	}
	// clientv3 joins fragments into one response.
	wr := recvWatch(t, cli.Watch(ctx(t), "big", clientv3.WithRev(first), clientv3.WithFragment()))
	if len(wr.Events) != 10 {
		t.Fatalf("clientv3 got %d events in the joined response, want 10", len(wr.Events))
	}
}

// metricValue returns the value of an unlabelled metric on m's /metrics.
func metricValue(t *testing.T, m *Member, name string) string {
	t.Helper()
	code, body := httpDo(t, m, "GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return ""
}

// etcd's watch gauges count streams and watchers; Cairn adds the bytes
// behind its watch memory bounds.
func TestWatchMetricsCountStreamsAndWatchers(t *testing.T) {
	c := NewCluster(t, 1)
	m := c.Members[0]
	cli := c.Client(t)
	st := rawWatch(t, m)
	for i := 0; i < 3; i++ {
		rawCreate(t, st, &pb.WatchCreateRequest{Key: []byte("m")})
		if r := rawRecv(t, st); !r.Created {
			t.Fatalf("create: %v", r)
		}
	}
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	wc := cli.Watch(wctx, "m", clientv3.WithCreatedNotify())
	recvWatch(t, wc)
	for name, want := range map[string]string{
		"etcd_debugging_mvcc_watch_stream_total":   "2",
		"etcd_debugging_mvcc_watcher_total":        "4",
		"etcd_debugging_mvcc_slow_watcher_total":   "0",
		"etcd_debugging_mvcc_pending_events_total": "0",
		"cairn_mvcc_watch_pending_bytes":           "0",
		"cairn_mvcc_watch_cache_bytes":             "0",
	} {
		if got := metricValue(t, m, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
}
