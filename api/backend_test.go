package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/mvcc"
)

// memBackend is a TEST DOUBLE: a single-member, in-memory map with etcd's
// revision rules, just enough to exercise the api layer over the wire.
// It is not a model of the real node (no raft, no history, no leases).
type memBackend struct {
	mu  sync.Mutex
	rev int64
	kvs map[string]*mvccpb.KeyValue

	db      []byte // what Snapshot writes
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

func newMemBackend() *memBackend {
	return &memBackend{
		rev: 1, // etcd starts at revision 1
		kvs: make(map[string]*mvccpb.KeyValue),
		members: []*pb.Member{{
			ID: testMemberID, Name: "m1",
			PeerURLs: []string{"http://127.0.0.1:2380"}, ClientURLs: []string{"http://127.0.0.1:2379"},
		}},
	}
}

func (b *memBackend) header() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: testClusterID, MemberId: testMemberID, Revision: b.rev, RaftTerm: testRaftTerm}
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

// inRange mirrors etcd's key/range_end semantics.
func inRange(k, key, end []byte) bool {
	switch {
	case len(end) == 0:
		return bytes.Equal(k, key)
	case len(end) == 1 && end[0] == 0:
		return bytes.Compare(k, key) >= 0
	default:
		return bytes.Compare(k, key) >= 0 && bytes.Compare(k, end) < 0
	}
}

func (b *memBackend) matching(key, end []byte) []*mvccpb.KeyValue {
	var out []*mvccpb.KeyValue
	for _, kv := range b.kvs {
		if inRange(kv.Key, key, end) {
			out = append(out, kv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Key, out[j].Key) < 0 })
	return out
}

func (b *memBackend) rangeLocked(r *pb.RangeRequest) *pb.RangeResponse {
	all := b.matching(r.Key, r.RangeEnd)
	resp := &pb.RangeResponse{Header: b.header(), Count: int64(len(all))}
	if r.CountOnly {
		return resp
	}
	kvs := all
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs, resp.More = kvs[:r.Limit], true
	}
	for _, kv := range kvs {
		c := proto.Clone(kv).(*mvccpb.KeyValue)
		if r.KeysOnly {
			c.Value = nil
		}
		resp.Kvs = append(resp.Kvs, c)
	}
	return resp
}

func (b *memBackend) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failWith != nil {
		return nil, b.failWith
	}
	return b.rangeLocked(r), nil
}

func (b *memBackend) putLocked(r *pb.PutRequest) *pb.PutResponse {
	resp := &pb.PutResponse{}
	prev := b.kvs[string(r.Key)]
	if r.PrevKv && prev != nil {
		resp.PrevKv = proto.Clone(prev).(*mvccpb.KeyValue)
	}
	kv := &mvccpb.KeyValue{Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value), Lease: r.Lease, ModRevision: b.rev, CreateRevision: b.rev, Version: 1}
	if prev != nil {
		kv.CreateRevision, kv.Version = prev.CreateRevision, prev.Version+1
		if r.IgnoreValue {
			kv.Value = prev.Value
		}
		if r.IgnoreLease {
			kv.Lease = prev.Lease
		}
	}
	b.kvs[string(r.Key)] = kv
	return resp
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
	b.rev++
	resp := b.putLocked(r)
	resp.Header = b.header()
	return resp, nil
}

func (b *memBackend) deleteLocked(r *pb.DeleteRangeRequest) *pb.DeleteRangeResponse {
	resp := &pb.DeleteRangeResponse{}
	for _, kv := range b.matching(r.Key, r.RangeEnd) {
		delete(b.kvs, string(kv.Key))
		resp.Deleted++
		if r.PrevKv {
			resp.PrevKvs = append(resp.PrevKvs, kv)
		}
	}
	return resp
}

func (b *memBackend) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failWith != nil {
		return nil, b.failWith
	}
	// A delete that removes nothing does not bump the revision.
	if len(b.matching(r.Key, r.RangeEnd)) > 0 {
		b.rev++
	}
	resp := b.deleteLocked(r)
	resp.Header = b.header()
	return resp, nil
}

func (b *memBackend) compare(c *pb.Compare) bool {
	kv := b.kvs[string(c.Key)]
	if kv == nil {
		kv = &mvccpb.KeyValue{}
	}
	var cmp int
	switch c.Target {
	case pb.Compare_VALUE:
		cmp = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_VERSION:
		cmp = cmpInt(kv.Version, c.GetVersion())
	case pb.Compare_CREATE:
		cmp = cmpInt(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		cmp = cmpInt(kv.ModRevision, c.GetModRevision())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return cmp == 0
	case pb.Compare_GREATER:
		return cmp > 0
	case pb.Compare_LESS:
		return cmp < 0
	default:
		return cmp != 0
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (b *memBackend) txnLocked(r *pb.TxnRequest) *pb.TxnResponse {
	ok := true
	for _, c := range r.Compare {
		ok = ok && b.compare(c)
	}
	ops := r.Failure
	if ok {
		ops = r.Success
	}
	resp := &pb.TxnResponse{Succeeded: ok}
	for _, op := range ops {
		switch u := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: b.rangeLocked(u.RequestRange)}})
		case *pb.RequestOp_RequestPut:
			resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: b.putLocked(u.RequestPut)}})
		case *pb.RequestOp_RequestDeleteRange:
			resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: b.deleteLocked(u.RequestDeleteRange)}})
		case *pb.RequestOp_RequestTxn:
			resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: b.txnLocked(u.RequestTxn)}})
		}
	}
	return resp
}

func (b *memBackend) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failWith != nil {
		return nil, b.failWith
	}
	if !mvcc.TxnReadOnly(r) {
		b.rev++ // simplification: any writing txn bumps once
	}
	resp := b.txnLocked(r)
	resp.Header = b.header()
	return resp, nil
}

func (b *memBackend) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return &pb.CompactionResponse{Header: b.header()}, nil
}

func (b *memBackend) Status(ctx context.Context) (*pb.StatusResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return &pb.StatusResponse{Header: b.header(), Leader: testMemberID, DbSize: int64(len(b.db)), RaftIndex: 10, RaftTerm: testRaftTerm}, nil
}

func (b *memBackend) Hash(ctx context.Context) (*pb.HashResponse, error) {
	return &pb.HashResponse{Header: b.header(), Hash: 42}, nil
}

func (b *memBackend) HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error) {
	return &pb.HashKVResponse{Header: b.header(), Hash: 43, HashRevision: rev}, nil
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
	return &pb.MemberListResponse{Header: b.header(), Members: b.members}, nil
}

func (b *memBackend) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := &pb.Member{ID: uint64(0x3000 + len(b.members)), PeerURLs: r.PeerURLs, IsLearner: r.IsLearner}
	b.members = append(b.members, m)
	return &pb.MemberAddResponse{Header: b.header(), Member: m, Members: b.members}, nil
}

func (b *memBackend) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return &pb.MemberRemoveResponse{Header: b.header()}, nil
}

func (b *memBackend) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	return &pb.MemberUpdateResponse{Header: b.header()}, nil
}

func (b *memBackend) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return &pb.MemberPromoteResponse{Header: b.header()}, nil
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
