package api

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/mvcc"
)

// memBackend is a TEST BACKEND: the KV requests go to a real mvcc.Store
// (the store the node applies to), with this member's fixed identity in
// the response headers, as the node fills them. The rest is canned: one
// member, no raft, no leases, health and snapshot bytes set by the test.
type memBackend struct {
	store *mvcc.Store

	mu      sync.Mutex // also serialises the store's writers
	db      []byte     // what Snapshot writes
	health  memHealth
	members []*pb.Member
	// failWith, when set, is returned by every KV call.
	failWith error
}

const (
	testClusterID = 0x1000
	testMemberID  = 0x2000
	testRaftTerm  = 7
)

// newMemBackend opens a store in t's temporary directory, closed at
// cleanup (after a server started later on it has shut down).
func newMemBackend(t testing.TB) *memBackend {
	t.Helper()
	st, err := mvcc.Open(mvcc.Config{Path: filepath.Join(t.TempDir(), "db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	return &memBackend{
		store: st,
		members: []*pb.Member{{
			ID: testMemberID, Name: "m1",
			PeerURLs: []string{"http://127.0.0.1:2380"}, ClientURLs: []string{"http://127.0.0.1:2379"},
		}},
	}
}

// header is the full header of a KV or Maintenance response at rev.
func header(rev int64) *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: testClusterID, MemberId: testMemberID, Revision: rev, RaftTerm: testRaftTerm}
}

func (b *memBackend) header() *pb.ResponseHeader { return header(b.store.Rev()) }

// clusterHeader is a Cluster response's header: etcd's carry no revision.
func clusterHeader() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: testClusterID, MemberId: testMemberID, RaftTerm: testRaftTerm}
}

// memHealth is what memBackend's HealthBackend methods answer; the zero
// value is a healthy member with a leader.
type memHealth struct {
	alarms   []*pb.AlarmMember
	noLeader bool
	learner  bool
	// readErr fails HealthRead: [0] linearizable, [1] serializable.
	readErr [2]error
}

func (b *memBackend) setHealth(h memHealth) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.health = h
}

func (b *memBackend) setFail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failWith = err
}

func (b *memBackend) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failWith != nil {
		return nil, b.failWith
	}
	resp, err := b.store.Range(r)
	if err != nil {
		return nil, err
	}
	resp.Header = header(resp.Header.Revision)
	return resp, nil
}

func (b *memBackend) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if string(r.Key) == "panic" {
		panic("memBackend: asked to panic")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failWith != nil {
		return nil, b.failWith
	}
	resp, err := b.store.Put(r)
	if err != nil {
		return nil, err
	}
	resp.Header = header(resp.Header.Revision)
	return resp, nil
}

func (b *memBackend) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failWith != nil {
		return nil, b.failWith
	}
	resp, err := b.store.DeleteRange(r)
	if err != nil {
		return nil, err
	}
	resp.Header = header(resp.Header.Revision)
	return resp, nil
}

// Txn gives the txn response the full header; the responses nested in it
// keep the store's revision-only headers, as the node's and etcd's do.
func (b *memBackend) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failWith != nil {
		return nil, b.failWith
	}
	resp, err := b.store.Txn(r)
	if err != nil {
		return nil, err
	}
	resp.Header = header(resp.Header.Revision)
	return resp, nil
}

// Compact compacts and, as the node eventually does, removes the old
// revisions.
func (b *memBackend) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failWith != nil {
		return nil, b.failWith
	}
	if err := b.store.Compact(r.Revision); err != nil {
		return nil, err
	}
	for {
		done, err := b.store.CompactStep()
		if err != nil {
			return nil, err
		}
		if done {
			return &pb.CompactionResponse{Header: b.header()}, nil
		}
	}
}

func (b *memBackend) Status(ctx context.Context) (*pb.StatusResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return &pb.StatusResponse{Header: b.header(), Leader: testMemberID, DbSize: int64(len(b.db)), RaftIndex: 10, RaftTerm: testRaftTerm}, nil
}

func (b *memBackend) Hash(ctx context.Context) (*pb.HashResponse, error) {
	h, err := b.store.Hash()
	if err != nil {
		return nil, err
	}
	return &pb.HashResponse{Header: b.header(), Hash: h}, nil
}

func (b *memBackend) HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error) {
	h, hashRev, compactRev, err := b.store.HashKV(rev)
	if err != nil {
		return nil, err
	}
	return &pb.HashKVResponse{Header: b.header(), Hash: h, HashRevision: hashRev, CompactRevision: compactRev}, nil
}

func (b *memBackend) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	b.mu.Lock()
	db := b.db
	b.mu.Unlock()
	// Write in odd-sized pieces to exercise re-chunking.
	var n int64
	for len(db) > 0 {
		k := min(len(db), 10007)
		m, err := w.Write(db[:k])
		n += int64(m)
		if err != nil {
			return n, err
		}
		db = db[k:]
	}
	return n, nil
}

func (b *memBackend) Defragment(ctx context.Context) error { return nil }

func (b *memBackend) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	return &pb.AlarmResponse{Header: b.header()}, nil
}

func (b *memBackend) MoveLeader(ctx context.Context, target uint64) (*pb.MoveLeaderResponse, error) {
	return &pb.MoveLeaderResponse{Header: b.header()}, nil
}

func (b *memBackend) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	return nil, errors.New("memBackend: downgrade unsupported")
}

func (b *memBackend) MemberList(ctx context.Context, linearizable bool) (*pb.MemberListResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return &pb.MemberListResponse{Header: clusterHeader(), Members: b.members}, nil
}

func (b *memBackend) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := &pb.Member{ID: uint64(0x3000 + len(b.members)), PeerURLs: r.PeerURLs, IsLearner: r.IsLearner}
	b.members = append(b.members, m)
	return &pb.MemberAddResponse{Header: clusterHeader(), Member: m, Members: b.members}, nil
}

func (b *memBackend) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return &pb.MemberRemoveResponse{Header: clusterHeader()}, nil
}

func (b *memBackend) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	return &pb.MemberUpdateResponse{Header: clusterHeader()}, nil
}

func (b *memBackend) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return &pb.MemberPromoteResponse{Header: clusterHeader()}, nil
}

func (b *memBackend) Alarms(ctx context.Context) ([]*pb.AlarmMember, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.health.alarms, nil
}

func (b *memBackend) Leader() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.health.noLeader {
		return 0
	}
	return testMemberID
}

func (b *memBackend) IsLearner(ctx context.Context) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.health.learner, nil
}

func (b *memBackend) HealthRead(ctx context.Context, serializable bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if serializable {
		return b.health.readErr[1]
	}
	return b.health.readErr[0]
}

// openerBackend is memBackend plus SnapshotOpener, to test the direct
// (unspooled) snapshot path.
type openerBackend struct {
	*memBackend
	opened, closed int
}

func (o *openerBackend) OpenSnapshot(ctx context.Context) (Snapshot, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.opened++
	return &bytesSnapshot{b: o.db, onClose: func() { o.mu.Lock(); o.closed++; o.mu.Unlock() }}, nil
}

type bytesSnapshot struct {
	b       []byte
	onClose func()
}

func (s *bytesSnapshot) Size() int64 { return int64(len(s.b)) }
func (s *bytesSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(s.b)
	return int64(n), err
}
func (s *bytesSnapshot) Close() error { s.onClose(); return nil }
