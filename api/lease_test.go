package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"
)

// memLeases is a TEST DOUBLE LeaseBackend: a map of leases with no
// expiry, counting renewals. It is not a model of the real lessor.
type memLeases struct {
	mu       sync.Mutex
	nextID   int64
	leases   map[int64]*testLease
	renewErr error // when set, LeaseRenew fails with it
}

type testLease struct {
	ttl, remaining int64
	keys           []string
	renewals       int
}

const leaseTestRev = 1

func newMemLeases() *memLeases {
	return &memLeases{nextID: 100, leases: map[int64]*testLease{}}
}

func (m *memLeases) LeaseHeader() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: testClusterID, MemberId: testMemberID, Revision: leaseTestRev, RaftTerm: testRaftTerm}
}

func (m *memLeases) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := r.ID
	if id == 0 {
		m.nextID++
		id = m.nextID
	}
	if _, ok := m.leases[id]; ok {
		return nil, rpctypes.ErrGRPCLeaseExist
	}
	m.leases[id] = &testLease{ttl: r.TTL, remaining: r.TTL}
	return &pb.LeaseGrantResponse{Header: m.LeaseHeader(), ID: id, TTL: r.TTL}, nil
}

func (m *memLeases) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.leases[r.ID]; !ok {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	delete(m.leases, r.ID)
	return &pb.LeaseRevokeResponse{Header: m.LeaseHeader()}, nil
}

func (m *memLeases) LeaseRenew(ctx context.Context, id int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.renewErr != nil {
		return 0, m.renewErr
	}
	l, ok := m.leases[id]
	if !ok {
		return 0, rpctypes.ErrGRPCLeaseNotFound
	}
	l.renewals++
	return l.ttl, nil
}

func (m *memLeases) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[r.ID]
	if !ok {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: m.LeaseHeader(), ID: r.ID, TTL: l.remaining, GrantedTTL: l.ttl}
	if r.Keys {
		for _, k := range l.keys {
			resp.Keys = append(resp.Keys, []byte(k))
		}
	}
	return resp, nil
}

func (m *memLeases) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	resp := &pb.LeaseLeasesResponse{Header: m.LeaseHeader()}
	for id := range m.leases {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: id})
	}
	sort.Slice(resp.Leases, func(i, j int) bool { return resp.Leases[i].ID < resp.Leases[j].ID })
	return resp, nil
}

func (m *memLeases) renewals(id int64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leases[id].renewals
}

func (m *memLeases) setRenewErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.renewErr = err
}

func startLeaseServer(t *testing.T) (*testServer, *memLeases) {
	t.Helper()
	ml := newMemLeases()
	ts := startServer(t, newMemBackend(t), func(c *Config) { c.Lease = NewLeaseServer(ml, nil) })
	return ts, ml
}

// wantStatus checks err is the status error want (code and message).
func wantStatus(t *testing.T, what string, err, want error) {
	t.Helper()
	got, _ := status.FromError(err)
	w, _ := status.FromError(want)
	if err == nil || got.Code() != w.Code() || got.Message() != w.Message() {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func TestLeaseGrantTimeToLiveLeasesRevoke(t *testing.T) {
	ts, ml := startLeaseServer(t)
	c := newClient(t, ts.addr, nil)
	ctx := ctxT(t)

	g, err := c.Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if g.ID != 101 || g.TTL != 5 || g.Error != "" {
		t.Fatalf("Grant = ID %d TTL %d error %q, want ID 101 TTL 5", g.ID, g.TTL, g.Error)
	}
	wantHeader(t, g.ResponseHeader, leaseTestRev)

	// A client-chosen ID, then the same ID again.
	lc := pb.NewLeaseClient(rawConn(t, ts.addr))
	if r, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 7, TTL: 30}); err != nil || r.ID != 7 || r.TTL != 30 {
		t.Fatalf("LeaseGrant(ID 7) = %v, %v", r, err)
	}
	_, err = lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 7, TTL: 30})
	wantStatus(t, "duplicate grant", err, rpctypes.ErrGRPCLeaseExist)
	if g, err := c.Grant(ctx, 5); err != nil || g.ID != 102 { // a second server-chosen ID
		t.Fatalf("second Grant = %+v, %v; want ID 102", g, err)
	}

	ml.mu.Lock()
	ml.leases[7].keys = []string{"a", "b"}
	ml.leases[7].remaining = 29
	ml.mu.Unlock()
	ttl, err := c.TimeToLive(ctx, 7, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	if ttl.ID != 7 || ttl.TTL != 29 || ttl.GrantedTTL != 30 || !reflect.DeepEqual(ttl.Keys, [][]byte{[]byte("a"), []byte("b")}) {
		t.Fatalf("TimeToLive = %+v", ttl)
	}

	ls, err := c.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []clientv3.LeaseID
	for _, l := range ls.Leases {
		ids = append(ids, l.ID)
	}
	if want := []clientv3.LeaseID{7, 101, 102}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("Leases = %v, want %v", ids, want)
	}

	rv, err := c.Revoke(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	wantHeader(t, rv.Header, leaseTestRev)
	if _, err := c.Revoke(ctx, 7); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("second Revoke error = %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}

	// An unknown lease's TimeToLive is TTL -1 and no error, as etcd.
	ttl, err = c.TimeToLive(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if ttl.ID != 7 || ttl.TTL != -1 || ttl.GrantedTTL != 0 || len(ttl.Keys) != 0 {
		t.Fatalf("TimeToLive of a revoked lease = %+v, want ID 7 TTL -1", ttl)
	}
	wantHeader(t, ttl.ResponseHeader, leaseTestRev)
}

func TestLeaseKeepAliveStreamServesManyLeases(t *testing.T) {
	ts, ml := startLeaseServer(t)
	ctx := ctxT(t)
	lc := pb.NewLeaseClient(rawConn(t, ts.addr))
	for _, g := range []*pb.LeaseGrantRequest{{ID: 1, TTL: 5}, {ID: 2, TTL: 10}} {
		if _, err := lc.LeaseGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := lc.LeaseKeepAlive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reqs := []int64{1, 2, 3, 1, 2, 1}
	want := map[int64]int64{1: 5, 2: 10, 3: 0} // 3 does not exist: TTL 0, no error
	for _, id := range reqs {
		if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range reqs {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if resp.ID != id || resp.TTL != want[id] {
			t.Fatalf("response %d = ID %d TTL %d, want ID %d TTL %d", i, resp.ID, resp.TTL, id, want[id])
		}
		wantHeader(t, resp.Header, leaseTestRev)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("Recv after CloseSend = %v, want io.EOF (a clean end)", err)
	}
	if r1, r2 := ml.renewals(1), ml.renewals(2); r1 != 3 || r2 != 2 {
		t.Fatalf("renewals = %d, %d; want 3, 2", r1, r2)
	}

	// clientv3's keep-alives ride the same RPC.
	c := newClient(t, ts.addr, nil)
	ka, err := c.KeepAliveOnce(ctx, 2)
	if err != nil || ka.ID != 2 || ka.TTL != 10 {
		t.Fatalf("KeepAliveOnce(2) = %+v, %v; want TTL 10", ka, err)
	}
	if _, err := c.KeepAliveOnce(ctx, 3); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("KeepAliveOnce(unknown) error = %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	ch, err := c.KeepAlive(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-ch:
		if resp == nil || resp.ID != 1 || resp.TTL != 5 {
			t.Fatalf("KeepAlive(1) first response = %+v, want ID 1 TTL 5", resp)
		}
	case <-ctx.Done():
		t.Fatal("no keep-alive response")
	}
}

func TestLeaseKeepAliveEndsWithBackendError(t *testing.T) {
	ts, ml := startLeaseServer(t)
	ctx := ctxT(t)
	lc := pb.NewLeaseClient(rawConn(t, ts.addr))
	if _, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 1, TTL: 5}); err != nil {
		t.Fatal(err)
	}
	ml.setRenewErr(rpctypes.ErrGRPCNoLeader)
	stream, err := lc.LeaseKeepAlive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	wantStatus(t, "keep-alive without a leader", err, rpctypes.ErrGRPCNoLeader)
}

func TestLeaseGatewayGrantAndLeases(t *testing.T) {
	ts, _ := startLeaseServer(t)
	code, m := postJSON(t, ts, "/v3/lease/grant", `{"TTL":"5"}`)
	if code != http.StatusOK {
		t.Fatalf("grant: %d %v", code, m)
	}
	wantJSON(t, "grant", m, map[string]any{"header": hdr(strconv.Itoa(leaseTestRev)), "ID": "101", "TTL": "5"})

	code, m = postJSON(t, ts, "/v3/lease/grant", `{"ID":"101","TTL":"5"}`)
	// The gateway maps codes.FailedPrecondition to 400.
	wantJSON(t, "duplicate grant", m, map[string]any{"code": float64(9), "message": "etcdserver: lease already exists"})
	if code != http.StatusBadRequest {
		t.Fatalf("duplicate grant: status %d, want 400", code)
	}

	code, m = postJSON(t, ts, "/v3/lease/leases", `{}`)
	if code != http.StatusOK {
		t.Fatalf("leases: %d %v", code, m)
	}
	wantJSON(t, "leases", m, map[string]any{"header": hdr(strconv.Itoa(leaseTestRev)), "leases": []any{map[string]any{"ID": "101"}}})
}
