package mvcc

import (
	"bytes"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// valueReader fetches the encoded KeyValue stored at a revision.
type valueReader interface {
	value(r Revision, tomb bool) ([]byte, error)
}

// batchReader reads through the open batch; writer only.
type batchReader struct{ tx *bolt.Tx }

func (b batchReader) value(r Revision, tomb bool) ([]byte, error) {
	v := b.tx.Bucket(keyBucket).Get(revKey(r, tomb))
	if v == nil {
		return nil, fmt.Errorf("mvcc: revision %v missing from bucket %q", r, keyBucket)
	}
	return v, nil
}

// snapReader reads the overlay, then the last committed state through a read
// transaction opened on first use. mu is read-locked for its whole life, so
// no commit can clear the overlay under it.
type snapReader struct {
	s  *Store
	tx *bolt.Tx
}

func (sr *snapReader) value(r Revision, tomb bool) ([]byte, error) {
	if v, ok := sr.s.overlay[r]; ok {
		return v, nil
	}
	if sr.tx == nil {
		tx, err := sr.s.db.Begin(false)
		if err != nil {
			return nil, fmt.Errorf("mvcc: beginning read: %w", err)
		}
		sr.tx = tx
	}
	v := sr.tx.Bucket(keyBucket).Get(revKey(r, tomb))
	if v == nil {
		return nil, fmt.Errorf("mvcc: revision %v missing from bucket %q", r, keyBucket)
	}
	return v, nil
}

func (sr *snapReader) close() {
	if sr.tx != nil {
		_ = sr.tx.Rollback()
		sr.tx = nil
	}
}

func readKV(vr valueReader, r Revision) (*mvccpb.KeyValue, error) {
	v, err := vr.value(r, false)
	if err != nil {
		return nil, err
	}
	kv := &mvccpb.KeyValue{}
	if err := proto.Unmarshal(v, kv); err != nil {
		return nil, fmt.Errorf("mvcc: corrupt value at revision %v: %w", r, err)
	}
	return kv, nil
}

var marshalOpts = proto.MarshalOptions{Deterministic: true}

// Range reads keys with etcd semantics for every field of r. The header
// carries only the current revision. Safe for concurrent use.
func (s *Store) Range(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if len(r.GetKey()) == 0 {
		return nil, ErrEmptyKey
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	sr := &snapReader{s: s}
	defer sr.close()
	resp, err := s.rangeLocked(sr, r, s.rev)
	if err == nil {
		s.ops.ranges.Add(1)
	}
	return resp, err
}

// LeasedKeys calls fn with every live key that carries a lease, and its
// lease, in key order; the lessor rebuilds its attachments from it. Safe
// for concurrent use; fn must not call back into the store.
func (s *Store) LeasedKeys(fn func(key []byte, lease int64)) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	sr := &snapReader{s: s}
	defer sr.close()
	var err error
	s.index.ascend([]byte{0}, []byte{0}, func(ki *keyIndex) bool {
		rev, ok := ki.latest()
		if !ok {
			return true
		}
		var kv *mvccpb.KeyValue
		if kv, err = readKV(sr, rev); err != nil {
			return false
		}
		if kv.GetLease() != 0 {
			fn(kv.GetKey(), kv.GetLease())
		}
		return true
	})
	return err
}

// rangeLocked serves r as of current revision cur. mu is held.
func (s *Store) rangeLocked(vr valueReader, r *pb.RangeRequest, cur int64) (*pb.RangeResponse, error) {
	atRev := r.GetRevision()
	switch {
	case atRev > cur:
		return nil, ErrFutureRev
	case atRev <= 0:
		atRev = cur
	case atRev < s.compactRev:
		return nil, ErrCompacted
	}
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: cur}}

	filtered := r.GetSortOrder() != pb.RangeRequest_NONE || r.GetSortTarget() != pb.RangeRequest_KEY ||
		r.GetMinModRevision() != 0 || r.GetMaxModRevision() != 0 ||
		r.GetMinCreateRevision() != 0 || r.GetMaxCreateRevision() != 0
	// Without sorting or filtering only limit+1 values are needed (one
	// extra tells `more`); count still covers the whole range.
	fetch := -1
	if r.GetCountOnly() {
		fetch = 0
	} else if r.GetLimit() > 0 && !filtered {
		fetch = int(r.GetLimit()) + 1
	}
	var revs []Revision
	var count int64
	s.index.ascend(r.GetKey(), r.GetRangeEnd(), func(ki *keyIndex) bool {
		rev, ok := ki.at(atRev)
		if !ok {
			return true
		}
		count++
		if fetch < 0 || len(revs) < fetch {
			revs = append(revs, rev)
		}
		return true
	})
	resp.Count = count
	if r.GetCountOnly() {
		return resp, nil
	}
	kvs := make([]*mvccpb.KeyValue, 0, len(revs))
	for _, rev := range revs {
		kv, err := readKV(vr, rev)
		if err != nil {
			return nil, err
		}
		if !keepKV(r, kv) {
			continue
		}
		kvs = append(kvs, kv)
	}
	sortKVs(r, kvs)
	if l := r.GetLimit(); l > 0 && int64(len(kvs)) > l {
		kvs = kvs[:l]
		resp.More = true
	}
	if r.GetKeysOnly() { // etcd's keys-only ranges carry neither values nor leases
		for _, kv := range kvs {
			kv.Value, kv.Lease = nil, 0
		}
	}
	resp.Kvs = kvs
	return resp, nil
}

// keepKV applies the min/max mod/create revision filters (0 = unset).
func keepKV(r *pb.RangeRequest, kv *mvccpb.KeyValue) bool {
	if v := r.GetMaxModRevision(); v != 0 && kv.ModRevision > v {
		return false
	}
	if v := r.GetMinModRevision(); v != 0 && kv.ModRevision < v {
		return false
	}
	if v := r.GetMaxCreateRevision(); v != 0 && kv.CreateRevision > v {
		return false
	}
	if v := r.GetMinCreateRevision(); v != 0 && kv.CreateRevision < v {
		return false
	}
	return true
}

// sortKVs orders kvs (which arrive in ascending key order) as etcd does: a
// target other than KEY with no order sorts ascending; KEY ascending is the
// natural order. Ties keep ascending key order (etcd leaves them unspecified).
func sortKVs(r *pb.RangeRequest, kvs []*mvccpb.KeyValue) {
	order, target := r.GetSortOrder(), r.GetSortTarget()
	if order == pb.RangeRequest_NONE && target != pb.RangeRequest_KEY {
		order = pb.RangeRequest_ASCEND
	}
	if order == pb.RangeRequest_NONE || (order == pb.RangeRequest_ASCEND && target == pb.RangeRequest_KEY) {
		return
	}
	var cmp func(a, b *mvccpb.KeyValue) int
	switch target {
	case pb.RangeRequest_VERSION:
		cmp = func(a, b *mvccpb.KeyValue) int { return cmpInt(a.Version, b.Version) }
	case pb.RangeRequest_CREATE:
		cmp = func(a, b *mvccpb.KeyValue) int { return cmpInt(a.CreateRevision, b.CreateRevision) }
	case pb.RangeRequest_MOD:
		cmp = func(a, b *mvccpb.KeyValue) int { return cmpInt(a.ModRevision, b.ModRevision) }
	case pb.RangeRequest_VALUE:
		cmp = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	default:
		cmp = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) }
	}
	if order == pb.RangeRequest_DESCEND {
		sort.SliceStable(kvs, func(i, j int) bool { return cmp(kvs[i], kvs[j]) > 0 })
	} else {
		sort.SliceStable(kvs, func(i, j int) bool { return cmp(kvs[i], kvs[j]) < 0 })
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
