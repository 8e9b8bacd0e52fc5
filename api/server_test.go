package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type testServer struct {
	s        *Server
	addr     string
	reg      *prometheus.Registry
	logs     *observer.ObservedLogs
	serveErr chan error
}

// startServer serves be on 127.0.0.1:0 and shuts it down at cleanup,
// checking that Serve then returns ErrServerClosed.
func startServer(t testing.TB, be Backend, mod func(*Config)) *testServer {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	reg := prometheus.NewRegistry()
	cfg := Config{Backend: be, Logger: zap.New(core), Registry: reg, CairnVersion: "0.1.0-test"}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{s: s, addr: l.Addr().String(), reg: reg, logs: logs, serveErr: make(chan error, 1)}
	go func() { ts.serveErr <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-ts.serveErr; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ts
}

func newClient(t testing.TB, addr string, mod func(*clientv3.Config)) *clientv3.Client {
	t.Helper()
	cfg := clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if mod != nil {
		mod(&cfg)
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a bare gRPC connection, for requests clientv3 cannot form.
func rawConn(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantHeader(t *testing.T, h *pb.ResponseHeader, rev int64) {
	t.Helper()
	if h.GetClusterId() != testClusterID || h.GetMemberId() != testMemberID || h.GetRaftTerm() != testRaftTerm || h.GetRevision() != rev {
		t.Fatalf("header = %v, want cluster %x member %x term %d revision %d", h, testClusterID, testMemberID, testRaftTerm, rev)
	}
}

func TestKVRoundTripOverTheWire(t *testing.T) {
	ts := startServer(t, newMemBackend(t), nil)
	c := newClient(t, ts.addr, nil)
	ctx := ctxT(t)

	put, err := c.Put(ctx, "foo", "bar")
	if err != nil {
		t.Fatal(err)
	}
	wantHeader(t, put.Header, 2)
	if _, err := c.Put(ctx, "foo2", "baz"); err != nil {
		t.Fatal(err)
	}
	put, err = c.Put(ctx, "foo", "bar2", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if string(put.PrevKv.GetValue()) != "bar" || put.PrevKv.ModRevision != 2 {
		t.Fatalf("prev kv = %v, want bar@2", put.PrevKv)
	}

	get, err := c.Get(ctx, "foo", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	wantHeader(t, get.Header, 4)
	if get.Count != 2 || len(get.Kvs) != 2 || string(get.Kvs[0].Key) != "foo" || string(get.Kvs[0].Value) != "bar2" ||
		get.Kvs[0].CreateRevision != 2 || get.Kvs[0].ModRevision != 4 || get.Kvs[0].Version != 2 || string(get.Kvs[1].Value) != "baz" {
		t.Fatalf("get = %v", get)
	}

	txn, err := c.Txn(ctx).
		If(clientv3.Compare(clientv3.Value("foo"), "=", "bar2")).
		Then(clientv3.OpPut("t", "1"), clientv3.OpGet("foo2")).
		Else(clientv3.OpPut("f", "1")).
		Commit()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader(t, txn.Header, 5)
	if !txn.Succeeded || len(txn.Responses) != 2 || string(txn.Responses[1].GetResponseRange().Kvs[0].Value) != "baz" {
		t.Fatalf("txn = %v", txn)
	}

	del, err := c.Delete(ctx, "foo", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	wantHeader(t, del.Header, 6)
	if del.Deleted != 2 || len(del.PrevKvs) != 2 {
		t.Fatalf("delete = %v", del)
	}
	get, err = c.Get(ctx, "", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	if get.Count != 1 || string(get.Kvs[0].Key) != "t" {
		t.Fatalf("after delete get = %v", get)
	}
	if _, err := c.Compact(ctx, 3); err != nil {
		t.Fatal(err)
	}
}

func TestRangeStreamChunksMergeToRange(t *testing.T) {
	be := newMemBackend(t)
	ts := startServer(t, be, nil)
	c := newClient(t, ts.addr, nil)
	ctx := ctxT(t)
	for i := range 25 {
		if _, err := c.Put(ctx, fmt.Sprintf("k%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		opts   []clientv3.OpOption
		chunks []int // kvs per chunk, as etcd cuts them
	}{
		{"unlimited", nil, []int{10, 15}},
		{"limit 12", []clientv3.OpOption{clientv3.WithLimit(12)}, []int{10, 2}},
		{"limit 5", []clientv3.OpOption{clientv3.WithLimit(5)}, []int{5}},
		{"keys only", []clientv3.OpOption{clientv3.WithKeysOnly()}, []int{10, 15}},
		{"count only", []clientv3.OpOption{clientv3.WithCountOnly()}, []int{0}},
	} {
		opts := append([]clientv3.OpOption{clientv3.WithRange("z")}, tc.opts...)
		want, err := c.Get(ctx, "k", opts...)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := c.GetStream(ctx, "k", opts...)
		if err != nil {
			t.Fatal(err)
		}
		var chunks []int
		merged := &pb.RangeResponse{}
		for r := range ch {
			if r.Err() != nil {
				t.Fatal(r.Err())
			}
			if r.Header != nil && len(chunks) < len(tc.chunks)-1 {
				t.Errorf("%s: chunk %d has a header; only the last may", tc.name, len(chunks))
			}
			chunks = append(chunks, len(r.Kvs))
			mergeRange(merged, r.RangeResponse)
		}
		if !slices.Equal(chunks, tc.chunks) {
			t.Errorf("%s: chunks of %v kvs, want %v", tc.name, chunks, tc.chunks)
		}
		if !proto.Equal(merged, (*pb.RangeResponse)(want)) {
			t.Errorf("%s: merged stream = %v\nwant %v", tc.name, merged, (*pb.RangeResponse)(want))
		}
	}

	// Validation applies to the stream too, with etcd's stream-only refusals.
	for i, tc := range []struct {
		key  string
		opts []clientv3.OpOption
		want error
	}{
		{"", nil, rpctypes.ErrEmptyKey},
		{"k", []clientv3.OpOption{clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)},
			status.Error(codes.Unimplemented, "RangeStream does not support custom sort orders")},
		{"k", []clientv3.OpOption{clientv3.WithMinModRev(2)},
			status.Error(codes.Unimplemented, "RangeStream does not support revision filters")},
	} {
		ch, err := c.GetStream(ctx, tc.key, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		r := <-ch
		if r.Err() == nil || r.Err().Error() != tc.want.Error() {
			t.Errorf("invalid stream %d (key %q): %v, want %v", i, tc.key, r.Err(), tc.want)
		}
	}
}

func TestAdjustChunkLimitIsEtcds(t *testing.T) {
	const target = 1000
	for _, tc := range []struct {
		last int64
		size int
		want int64
	}{
		{10, 499, 20}, {10, 500, 10}, {10, 2000, 10}, {10, 2001, 5}, {1, 5000, 1}, {1, 0, 2},
	} {
		if got := adjustChunkLimit(tc.last, tc.size, target); got != tc.want {
			t.Errorf("adjustChunkLimit(%d, %d, %d) = %d, want %d", tc.last, tc.size, target, got, tc.want)
		}
	}
}

func mergeRange(dst, src *pb.RangeResponse) {
	dst.Kvs = append(dst.Kvs, src.Kvs...)
	if src.Header != nil {
		dst.Header, dst.More, dst.Count = src.Header, src.More, src.Count
	}
}

// etcdErr asserts err is exactly want as clientv3 surfaces it: the same
// rpctypes client error, the same gRPC code and the same message.
func etcdErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v (%T), want %v", what, err, err, want)
	}
	var ee rpctypes.EtcdError
	if !errors.As(err, &ee) || ee.Code() != want.(rpctypes.EtcdError).Code() || rpctypes.ErrorDesc(err) != want.Error() {
		t.Fatalf("%s: err = %v, want code %v message %q", what, err, want.(rpctypes.EtcdError).Code(), want.Error())
	}
}

func TestValidationErrorsReachClientsExactly(t *testing.T) {
	be := newMemBackend(t)
	ts := startServer(t, be, func(c *Config) { c.MaxTxnOps = 3 })
	c := newClient(t, ts.addr, nil)
	ctx := ctxT(t)
	// A KV request that got past validation would fail with this instead
	// (the store refuses some invalid requests itself, with the same error).
	be.setFail(errors.New("memBackend: an invalid request reached the backend"))

	_, err := c.Put(ctx, "", "v")
	etcdErr(t, "put empty key", err, rpctypes.ErrEmptyKey)
	_, err = c.Get(ctx, "")
	etcdErr(t, "get empty key", err, rpctypes.ErrEmptyKey)
	_, err = c.Delete(ctx, "")
	etcdErr(t, "delete empty key", err, rpctypes.ErrEmptyKey)
	_, err = c.Put(ctx, "k", "v", clientv3.WithIgnoreValue())
	etcdErr(t, "ignore_value with value", err, rpctypes.ErrValueProvided)
	_, err = c.Put(ctx, "k", "", clientv3.WithIgnoreLease(), clientv3.WithLease(5))
	etcdErr(t, "ignore_lease with lease", err, rpctypes.ErrLeaseProvided)
	_, err = c.Txn(ctx).Then(clientv3.OpPut("a", "1"), clientv3.OpPut("b", "1"), clientv3.OpPut("c", "1"), clientv3.OpPut("d", "1")).Commit()
	etcdErr(t, "too many ops", err, rpctypes.ErrTooManyOps)
	_, err = c.Txn(ctx).Then(clientv3.OpPut("a", "1"), clientv3.OpDelete("a", clientv3.WithPrefix())).Commit()
	etcdErr(t, "duplicate key", err, rpctypes.ErrDuplicateKey)
	_, err = c.Txn(ctx).If(clientv3.Compare(clientv3.Version(""), "=", 0)).Commit()
	etcdErr(t, "compare without key", err, rpctypes.ErrEmptyKey)

	// Requests clientv3 cannot form, straight through the generated client.
	kv := pb.NewKVClient(rawConn(t, ts.addr))
	_, err = kv.Range(ctx, &pb.RangeRequest{Key: []byte("k"), SortOrder: 7})
	etcdErr(t, "bad sort order", rpctypes.Error(err), rpctypes.ErrInvalidSortOption)
	_, err = kv.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{{}}})
	etcdErr(t, "empty op", rpctypes.Error(err), rpctypes.ErrKeyNotFound)

	// clientv3 checks member URLs itself, so use the raw client.
	cl := pb.NewClusterClient(rawConn(t, ts.addr))
	for _, urls := range [][]string{nil, {"127.0.0.1:2380"}, {"http://127.0.0.1:2380/path"}, {"ftp://127.0.0.1:2380"}, {"http://host-without-port"}} {
		_, err = cl.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: urls})
		etcdErr(t, fmt.Sprintf("member add %q", urls), rpctypes.Error(err), rpctypes.ErrMemberBadURLs)
	}
	add, err := c.MemberAdd(ctx, []string{"http://127.0.0.1:2480"})
	if err != nil || add.Member.PeerURLs[0] != "http://127.0.0.1:2480" {
		t.Fatalf("valid member add = %v, %v", add, err)
	}

	// Nothing invalid reached the backend: only the member was added.
	if rev := be.store.Rev(); rev != 1 {
		t.Fatalf("backend saw writes: revision %d", rev)
	}
}

func TestBackendErrorsAreMappedLikeEtcd(t *testing.T) {
	be := newMemBackend(t)
	ts := startServer(t, be, nil)
	c := newClient(t, ts.addr, nil)
	ctx := ctxT(t)

	be.setFail(rpctypes.ErrGRPCCompacted)
	_, err := c.Get(ctx, "k", clientv3.WithRev(1))
	etcdErr(t, "backend rpctypes error", err, rpctypes.ErrCompacted)

	be.setFail(errors.New("disk on fire"))
	_, err = c.Put(ctx, "k", "v")
	if s, _ := status.FromError(err); s.Code() != codes.Unknown || s.Message() != "disk on fire" {
		t.Fatalf("unknown backend error surfaced as %v", err)
	}

	// A wrapped context error from the backend (not the client's own
	// context) becomes the matching gRPC code, as gRPC does for etcd.
	be.setFail(errors.Join(errors.New("node: waiting for apply"), context.DeadlineExceeded))
	_, err = pb.NewKVClient(rawConn(t, ts.addr)).Put(ctx, &pb.PutRequest{Key: []byte("k")})
	if s, _ := status.FromError(err); s.Code() != codes.DeadlineExceeded || s.Message() != "context deadline exceeded" {
		t.Fatalf("backend deadline surfaced as %v", err)
	}

	// The store's own errors, as the real server returns them.
	be.setFail(nil)
	for range 3 {
		if _, err := c.Put(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Compact(ctx, 3); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, "k", clientv3.WithRev(2))
	etcdErr(t, "read below the compaction", err, rpctypes.ErrCompacted)
	_, err = c.Compact(ctx, 3)
	etcdErr(t, "compaction again", err, rpctypes.ErrCompacted)
	_, err = c.Get(ctx, "k", clientv3.WithRev(5))
	etcdErr(t, "read of a future revision", err, rpctypes.ErrFutureRev)
	_, err = c.Compact(ctx, 5)
	etcdErr(t, "compaction of a future revision", err, rpctypes.ErrFutureRev)
	_, err = c.Put(ctx, "absent", "", clientv3.WithIgnoreValue())
	etcdErr(t, "ignore_value on a missing key", err, rpctypes.ErrKeyNotFound)
}

func TestOversizedRequestsAreRejectedAndServerKeepsServing(t *testing.T) {
	be := newMemBackend(t)
	ts := startServer(t, be, nil)
	c := newClient(t, ts.addr, func(cfg *clientv3.Config) { cfg.MaxCallSendMsgSize = 8 << 20 })
	other := newClient(t, ts.addr, nil)
	ctx := ctxT(t)

	// Over MaxRequestBytes (1.5 MiB) but under the gRPC limit: etcd's error.
	_, err := c.Put(ctx, "big", string(make([]byte, 1600*1024)))
	etcdErr(t, "1.6 MiB put", err, rpctypes.ErrRequestTooLarge)
	_, err = c.Txn(ctx).Then(clientv3.OpPut("big", string(make([]byte, 1600*1024)))).Commit()
	etcdErr(t, "1.6 MiB txn", err, rpctypes.ErrRequestTooLarge)

	// Over MaxRequestBytes+512 KiB: gRPC refuses to read it.
	_, err = c.Put(ctx, "huge", string(make([]byte, 3<<20)))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("3 MiB put: %v, want ResourceExhausted", err)
	}

	// Just under the limit is accepted, and everyone keeps being served.
	if _, err := c.Put(ctx, "ok", string(make([]byte, 1500*1024))); err != nil {
		t.Fatalf("1.46 MiB put: %v", err)
	}
	if _, err := other.Put(ctx, "small", "v"); err != nil {
		t.Fatalf("other client after rejections: %v", err)
	}
	if _, err := c.Get(ctx, "small"); err != nil {
		t.Fatalf("same client after rejections: %v", err)
	}
	if r, err := be.store.Range(&pb.RangeRequest{Key: []byte("big"), CountOnly: true}); err != nil || r.Count != 0 {
		t.Fatalf("oversized put reached the backend: %v, %v", r, err)
	}
}

func TestUnconfiguredServicesAnswerUnimplemented(t *testing.T) {
	ts := startServer(t, newMemBackend(t), nil)
	c := newClient(t, ts.addr, nil)
	ctx := ctxT(t)

	_, err := c.Grant(ctx, 10)
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("lease grant: %v, want Unimplemented", err)
	}
	_, err = c.AuthStatus(ctx)
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("auth status: %v, want Unimplemented", err)
	}
	w, err := pb.NewWatchClient(rawConn(t, ts.addr)).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); status.Code(err) != codes.Unimplemented {
		t.Fatalf("watch: %v, want Unimplemented", err)
	}
}

// leaseStub is a configured Lease service, to show cfg.Lease is used.
type leaseStub struct{ pb.UnimplementedLeaseServer }

func (leaseStub) LeaseGrant(_ context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	return &pb.LeaseGrantResponse{ID: 99, TTL: r.TTL}, nil
}

func TestConfiguredLeaseServiceIsServed(t *testing.T) {
	ts := startServer(t, newMemBackend(t), func(c *Config) { c.Lease = leaseStub{} })
	resp, err := newClient(t, ts.addr, nil).Grant(ctxT(t), 10)
	if err != nil || resp.ID != 99 || resp.TTL != 10 {
		t.Fatalf("grant = %v, %v", resp, err)
	}
}

func TestPanicInBackendReturnsInternalAndServerSurvives(t *testing.T) {
	ts := startServer(t, newMemBackend(t), nil)
	c := newClient(t, ts.addr, nil)
	ctx := ctxT(t)
	_, err := c.Put(ctx, "panic", "v")
	if s, _ := status.FromError(err); s.Code() != codes.Internal || s.Message() != "cairn: internal error" {
		t.Fatalf("put that panics: %v, want Internal", err)
	}
	if _, err := c.Put(ctx, "calm", "v"); err != nil {
		t.Fatalf("after panic: %v", err)
	}
	if n := ts.logs.FilterMessage("panic in gRPC handler").Len(); n != 1 {
		t.Fatalf("%d panic log entries, want 1", n)
	}
}

func TestStatusReportsConfiguredVersion(t *testing.T) {
	ts := startServer(t, newMemBackend(t), func(c *Config) { c.ServerVersion = "3.7.9" })
	c := newClient(t, ts.addr, nil)
	st, err := c.Status(ctxT(t), ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "3.7.9" || st.StorageVersion != "3.7.0" || st.Leader != testMemberID || st.DowngradeInfo.GetEnabled() || st.DowngradeInfo == nil {
		t.Fatalf("status = %v", st)
	}
	wantHeader(t, st.Header, 1)
}

func TestServeAfterShutdownAndTwice(t *testing.T) {
	s, err := New(Config{Backend: newMemBackend(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without backend succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Backend: newMemBackend(t), Registry: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Backend: newMemBackend(t), Registry: reg}); err == nil {
		t.Fatal("second New on one registry succeeded; metrics would collide")
	}
}
