package api

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testutil"
	"github.com/cairnkv/cairn/mvcc"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type testMember struct{}

func (testMember) ClusterID() uint64 { return testClusterID }
func (testMember) ID() uint64        { return testMemberID }
func (testMember) Term() uint64      { return testRaftTerm }

// watchEnv is a TEST BACKEND for the Watch service: a real mvcc.Store that
// the test writes to directly (as the node's apply loop would), served by
// a real api.Server to a real clientv3.
type watchEnv struct {
	store *mvcc.Store
	cli   *clientv3.Client
	addr  string
}

func newWatchEnv(t *testing.T, cfg WatchConfig) *watchEnv {
	t.Helper()
	st, err := mvcc.Open(mvcc.Config{Path: filepath.Join(t.TempDir(), "db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := startServer(t, newMemBackend(t), func(c *Config) {
		c.Watch = NewWatchServer(StoreWatchBackend(st, testMember{}), cfg)
	})
	return &watchEnv{store: st, cli: newClient(t, ts.addr, nil), addr: ts.addr}
}

func (e *watchEnv) put(t *testing.T, k, v string) int64 {
	t.Helper()
	r, err := e.store.Put(&pb.PutRequest{Key: []byte(k), Value: []byte(v)})
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Revision
}

func (e *watchEnv) del(t *testing.T, k string) {
	t.Helper()
	if _, err := e.store.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(k)}); err != nil {
		t.Fatal(err)
	}
}

// next receives one response, failing after a generous timeout.
func next(t *testing.T, wc clientv3.WatchChan) clientv3.WatchResponse {
	t.Helper()
	select {
	case r, ok := <-wc:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no watch response within 10s")
	}
	return clientv3.WatchResponse{}
}

func evString(evs []*clientv3.Event) string {
	var parts []string
	for _, ev := range evs {
		s := fmt.Sprintf("%s %s=%s m%d", ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
		if ev.PrevKv != nil {
			s += fmt.Sprintf(" prev=%s", ev.PrevKv.Value)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func TestWatchOverTheWireKeyPrefixPrevKVAndHeaders(t *testing.T) {
	e := newWatchEnv(t, WatchConfig{})
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	e.put(t, "foo", "0") // 2
	key := e.cli.Watch(ctx, "foo", clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	if r := next(t, key); !r.Created || r.Header.Revision != 2 {
		t.Fatalf("created response: %+v", r)
	}
	prefix := e.cli.Watch(ctx, "foo", clientv3.WithPrefix(), clientv3.WithFilterDelete())
	e.put(t, "foo", "1")  // 3
	e.put(t, "foo2", "x") // 4
	e.del(t, "foo")       // 5
	r := next(t, key)
	wantHeader(t, r.Header, 3)
	if got := evString(r.Events); got != "PUT foo=1 m3 prev=0" {
		t.Fatalf("key watch: %s", got)
	}
	if got := evString(next(t, key).Events); got != "DELETE foo= m5 prev=1" {
		t.Fatalf("key watch delete: %s", got)
	}
	if got := evString(next(t, prefix).Events); got != "PUT foo=1 m3" {
		t.Fatalf("prefix watch: %s", got)
	}
	if got := evString(next(t, prefix).Events); got != "PUT foo2=x m4" {
		t.Fatalf("prefix watch: %s", got)
	}
}

func TestWatchOverTheWireHistoryCompactionAndErrors(t *testing.T) {
	e := newWatchEnv(t, WatchConfig{})
	ctx := ctxT(t)
	for i := 0; i < 5; i++ {
		e.put(t, "k", fmt.Sprint(i)) // 2..6
	}
	// History up to now comes in one response, as etcd batches it.
	old := e.cli.Watch(ctx, "k", clientv3.WithRev(3))
	r := next(t, old)
	if got := evString(r.Events); got != "PUT k=1 m3, PUT k=2 m4, PUT k=3 m5, PUT k=4 m6" || r.Header.Revision != 6 {
		t.Fatalf("history: %s at header revision %d", got, r.Header.Revision)
	}
	if err := e.store.Compact(5); err != nil {
		t.Fatal(err)
	}
	compacted := e.cli.Watch(ctx, "k", clientv3.WithRev(4))
	r = next(t, compacted)
	if !r.Canceled || r.CompactRevision != 5 || r.Err() != rpctypes.ErrCompacted {
		t.Fatalf("compacted watch: canceled=%v compact=%d err=%v", r.Canceled, r.CompactRevision, r.Err())
	}
}

func TestWatchRawStreamCreateCancelDuplicateAndProgress(t *testing.T) {
	e := newWatchEnv(t, WatchConfig{})
	conn := rawConn(t, e.addr)
	st, err := pb.NewWatchClient(conn).Watch(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	send := func(r *pb.WatchRequest) {
		t.Helper()
		if err := st.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() *pb.WatchResponse {
		t.Helper()
		r, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	create := func(id int64, key string) *pb.WatchRequest {
		return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte(key), WatchId: id}}}
	}
	send(create(7, "a"))
	if r := recv(); !r.Created || r.WatchId != 7 || r.Canceled {
		t.Fatalf("create: %v", r)
	}
	send(create(7, "b"))
	if r := recv(); !r.Created || !r.Canceled || r.WatchId != -1 || r.CancelReason != mvcc.ErrWatcherDuplicateID.Error() {
		t.Fatalf("duplicate: %v", r)
	}
	send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("a")}}})
	if r := recv(); !r.Canceled || r.CancelReason != mvcc.ErrEmptyWatcherRange.Error() {
		t.Fatalf("empty range: %v", r)
	}
	rev := e.put(t, "a", "1")
	if r := recv(); len(r.Events) != 1 || r.Header.Revision != rev || r.WatchId != 7 {
		t.Fatalf("event: %v", r)
	}
	send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
	if r := recv(); r.WatchId != -1 || len(r.Events) != 0 || r.Header.Revision != rev || r.Created || r.Canceled {
		t.Fatalf("progress: %v", r)
	}
	send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 7}}})
	if r := recv(); !r.Canceled || r.WatchId != 7 {
		t.Fatalf("cancel: %v", r)
	}
	e.put(t, "a", "2")
	send(create(0, "z"))
	if r := recv(); !r.Created || r.WatchId != 0 {
		t.Fatalf("after cancel, next response should be the new create: %v", r)
	}
}

func TestWatchProgressNotifyInterval(t *testing.T) {
	e := newWatchEnv(t, WatchConfig{ProgressNotifyInterval: 50 * time.Millisecond})
	rev := e.put(t, "x", "1")
	wc := e.cli.Watch(ctxT(t), "a", clientv3.WithProgressNotify())
	r := next(t, wc)
	if !r.IsProgressNotify() || r.Header.Revision != rev {
		t.Fatalf("want a progress notification at %d, got %+v", rev, r)
	}
	// clientv3.RequestProgress: answered with the current revision.
	rev = e.put(t, "y", "1")
	plain := e.cli.Watch(ctxT(t), "b")
	if err := e.cli.RequestProgress(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for {
		r := next(t, plain)
		if r.IsProgressNotify() && r.Header.Revision == rev {
			break
		}
		if len(r.Events) > 0 {
			t.Fatalf("unexpected events %s", evString(r.Events))
		}
	}
}

func TestWatchFragmentsLargeResponses(t *testing.T) {
	e := newWatchEnv(t, WatchConfig{MaxRequestBytes: 1000})
	wc := e.cli.Watch(ctxT(t), "k", clientv3.WithPrefix(), clientv3.WithFragment())
	var ops []*pb.RequestOp
	for i := 0; i < 10; i++ {
		ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(strings.Repeat("v", 300))}}})
	}
	if _, err := e.store.Txn(&pb.TxnRequest{Success: ops}); err != nil {
		t.Fatal(err)
	}
	r := next(t, wc)
	if len(r.Events) != 10 {
		t.Fatalf("reassembled %d events, want 10", len(r.Events))
	}
	// The server side split it: check sendFragments directly.
	var parts []*pb.WatchResponse
	wr := &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 2}, WatchId: 1, Events: r.Events}
	if err := sendFragments(wr, 1000, func(p *pb.WatchResponse) error { parts = append(parts, p); return nil }); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, p := range parts {
		total += len(p.Events)
		if p.Fragment != (i < len(parts)-1) || len(p.Events) == 0 {
			t.Fatalf("part %d: fragment=%v events=%d", i, p.Fragment, len(p.Events))
		}
	}
	if len(parts) < 4 || total != 10 {
		t.Fatalf("%d parts with %d events, want >= 4 parts (each <= 1000 bytes) and 10 events", len(parts), total)
	}
}

func TestWatchStreamReleasedWhenClientGoesAway(t *testing.T) {
	e := newWatchEnv(t, WatchConfig{})
	ctx, cancel := context.WithCancel(ctxT(t))
	for i := 0; i < 50; i++ {
		e.cli.Watch(ctx, fmt.Sprintf("k%d", i), clientv3.WithCreatedNotify())
	}
	wc := e.cli.Watch(ctx, "last", clientv3.WithCreatedNotify())
	next(t, wc)
	cancel()
	e.cli.Close()
	// The server closes its mvcc stream, releasing every watcher.
	eventually(t, 10*time.Second, "every watcher released after the client went away", func() (bool, string) {
		n := e.store.Watchers()
		return n == 0, fmt.Sprintf("%d watchers still registered", n)
	})
}

// TestWatchProgressRequestWhileCatchingUpIsDeferred: a progress request
// that arrives while a watcher replays history is answered once it has
// caught up, as etcd does, never dropped.
func TestWatchProgressRequestWhileCatchingUpIsDeferred(t *testing.T) {
	e := newWatchEnv(t, WatchConfig{BufferLen: 4})
	var last int64
	for i := 0; i < 5000; i++ {
		last = e.put(t, "h", fmt.Sprint(i))
	}
	wc := e.cli.Watch(ctxT(t), "h", clientv3.WithRev(1))
	if err := e.cli.RequestProgress(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	events := 0
	for {
		r := next(t, wc)
		events += len(r.Events)
		if r.IsProgressNotify() {
			if events != 5000 || r.Header.Revision != last {
				t.Fatalf("progress notification after %d of 5000 events at revision %d (store at %d): it must come once the watcher is synced", events, r.Header.Revision, last)
			}
			return
		}
	}
}

// A client that stops reading is cut off once a response has waited
// SendStallTimeout, with Unavailable (clientv3 would resume from its last
// revision), and its stream and watchers are released; a client that
// reads on another stream meanwhile gets everything.
func TestWatchStreamOfAClientThatStopsReadingIsCutOff(t *testing.T) {
	e := newWatchEnv(t, WatchConfig{SendStallTimeout: 200 * time.Millisecond})
	st, err := pb.NewWatchClient(rawConn(t, e.addr)).Watch(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := st.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("k")}}}); err != nil {
			t.Fatal(err)
		}
		if r, err := st.Recv(); err != nil || !r.Created {
			t.Fatalf("create: %v %v", r, err)
		}
	}
	reader := e.cli.Watch(ctxT(t), "k")
	// 64 MiB of events: more than gRPC's flow-control windows take.
	val := strings.Repeat("v", 1<<20)
	for i := 0; i < 64; i++ {
		rev := e.put(t, "k", val)
		for got := false; !got; {
			r := next(t, reader)
			got = len(r.Events) > 0 && r.Events[len(r.Events)-1].Kv.ModRevision == rev
		}
	}
	// Nobody reads st: the server gives up on it and releases it.
	eventually(t, 10*time.Second, "the stalled stream to be released", func() (bool, string) {
		ws := e.store.WatchStats()
		return ws.Streams == 1 && ws.Watchers == 1 && ws.PendingBytes == 0, fmt.Sprintf("%+v", ws)
	})
	// The client reads what the windows held, then the cut.
	for {
		_, err := st.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("the stalled client got %v, want Unavailable", err)
		}
		break
	}
}

// eventually waits for a state the test cannot be told about.
var eventually = testutil.Eventually
