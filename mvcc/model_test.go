package mvcc

import (
	"bytes"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// model is a deliberately simple reference for the Store: every key's full
// history, never compacted (compaction only makes old reads fail).
type model struct {
	rev        int64
	compactRev int64
	hist       map[string][]*mvccpb.KeyValue // per key, in write order; a tombstone has Version 0
}

func newModel() *model { return &model{rev: 1, hist: map[string][]*mvccpb.KeyValue{}} }

func (m *model) clone() *model {
	c := &model{rev: m.rev, compactRev: m.compactRev, hist: make(map[string][]*mvccpb.KeyValue, len(m.hist))}
	for k, h := range m.hist {
		c.hist[k] = append([]*mvccpb.KeyValue(nil), h...)
	}
	return c
}

// get returns the value of key as of rev, or nil.
func (m *model) get(key string, rev int64) *mvccpb.KeyValue {
	var last *mvccpb.KeyValue
	for _, kv := range m.hist[key] {
		if kv.ModRevision <= rev {
			last = kv
		}
	}
	if last == nil || last.Version == 0 {
		return nil
	}
	return last
}

func inRange(k, key, end string) bool {
	switch {
	case end == "":
		return k == key
	case end == "\x00":
		return k >= key
	default:
		return k >= key && k < end
	}
}

func (m *model) keysIn(key, end string) []string {
	var ks []string
	for k := range m.hist {
		if inRange(k, key, end) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func cloneKV(kv *mvccpb.KeyValue) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(string(kv.Key)), Value: []byte(string(kv.Value)), CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease}
}

// rangeResp answers r as of current revision cur.
func (m *model) rangeResp(r *pb.RangeRequest, cur int64) (*pb.RangeResponse, error) {
	if len(r.Key) == 0 {
		return nil, ErrEmptyKey
	}
	at := r.Revision
	if at > cur {
		return nil, ErrFutureRev
	}
	if at <= 0 {
		at = cur
	} else if at < m.compactRev {
		return nil, ErrCompacted
	}
	var kvs []*mvccpb.KeyValue
	for _, k := range m.keysIn(string(r.Key), string(r.RangeEnd)) {
		if kv := m.get(k, at); kv != nil {
			kvs = append(kvs, cloneKV(kv))
		}
	}
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: cur}, Count: int64(len(kvs))}
	if r.CountOnly {
		return resp, nil
	}
	var kept []*mvccpb.KeyValue
	for _, kv := range kvs {
		if (r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision) || (r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision) ||
			(r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision) || (r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision) {
			continue
		}
		kept = append(kept, kv)
	}
	order := r.SortOrder
	if order == pb.RangeRequest_NONE && r.SortTarget != pb.RangeRequest_KEY {
		order = pb.RangeRequest_ASCEND
	}
	if order != pb.RangeRequest_NONE {
		less := func(a, b *mvccpb.KeyValue) bool {
			switch r.SortTarget {
			case pb.RangeRequest_VERSION:
				return a.Version < b.Version
			case pb.RangeRequest_CREATE:
				return a.CreateRevision < b.CreateRevision
			case pb.RangeRequest_MOD:
				return a.ModRevision < b.ModRevision
			case pb.RangeRequest_VALUE:
				return bytes.Compare(a.Value, b.Value) < 0
			}
			return bytes.Compare(a.Key, b.Key) < 0
		}
		sort.SliceStable(kept, func(i, j int) bool {
			if order == pb.RangeRequest_DESCEND {
				return less(kept[j], kept[i])
			}
			return less(kept[i], kept[j])
		})
	}
	if r.Limit > 0 && int64(len(kept)) > r.Limit {
		kept = kept[:r.Limit]
		resp.More = true
	}
	if r.KeysOnly {
		for _, kv := range kept {
			kv.Value, kv.Lease = nil, 0
		}
	}
	if kept == nil {
		kept = []*mvccpb.KeyValue{}
	}
	resp.Kvs = kept
	return resp, nil
}

// mtxn is a write transaction on the model.
type mtxn struct {
	m       *model
	changed bool
}

func (t *mtxn) cur() int64 {
	if t.changed {
		return t.m.rev + 1
	}
	return t.m.rev
}

func (t *mtxn) put(p *pb.PutRequest) (*pb.PutResponse, error) {
	if len(p.Key) == 0 {
		return nil, ErrEmptyKey
	}
	k := string(p.Key)
	prev := t.m.get(k, t.m.rev+1)
	if (p.IgnoreValue || p.IgnoreLease) && prev == nil {
		return nil, ErrKeyNotFound
	}
	rev := t.m.rev + 1
	kv := &mvccpb.KeyValue{Key: []byte(k), Value: []byte(string(p.Value)), CreateRevision: rev, ModRevision: rev, Version: 1, Lease: p.Lease}
	if prev != nil {
		kv.CreateRevision, kv.Version = prev.CreateRevision, prev.Version+1
		if p.IgnoreValue {
			kv.Value = prev.Value
		}
		if p.IgnoreLease {
			kv.Lease = prev.Lease
		}
	}
	t.m.hist[k] = append(t.m.hist[k], kv)
	t.changed = true
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{Revision: rev}}
	if p.PrevKv && prev != nil {
		resp.PrevKv = cloneKV(prev)
	}
	return resp, nil
}

func (t *mtxn) del(d *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if len(d.Key) == 0 {
		return nil, ErrEmptyKey
	}
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
	for _, k := range t.m.keysIn(string(d.Key), string(d.RangeEnd)) {
		prev := t.m.get(k, t.m.rev+1)
		if prev == nil {
			continue
		}
		if d.PrevKv {
			resp.PrevKvs = append(resp.PrevKvs, cloneKV(prev))
		}
		t.m.hist[k] = append(t.m.hist[k], &mvccpb.KeyValue{Key: []byte(k), ModRevision: t.m.rev + 1})
		t.changed = true
		resp.Deleted++
	}
	resp.Header.Revision = t.cur()
	return resp, nil
}

func (m *model) compare(c *pb.Compare) bool {
	var kvs []*mvccpb.KeyValue
	for _, k := range m.keysIn(string(c.Key), string(c.RangeEnd)) {
		if kv := m.get(k, m.rev); kv != nil {
			kvs = append(kvs, kv)
		}
	}
	if len(kvs) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false
		}
		kvs = []*mvccpb.KeyValue{{}}
	}
	for _, kv := range kvs {
		var a, b int64
		switch c.Target {
		case pb.Compare_VALUE:
			a, b = int64(bytes.Compare(kv.Value, c.GetValue())), 0
		case pb.Compare_VERSION:
			a, b = kv.Version, c.GetVersion()
		case pb.Compare_CREATE:
			a, b = kv.CreateRevision, c.GetCreateRevision()
		case pb.Compare_MOD:
			a, b = kv.ModRevision, c.GetModRevision()
		case pb.Compare_LEASE:
			a, b = kv.Lease, c.GetLease()
		}
		ok := false
		switch c.Result {
		case pb.Compare_EQUAL:
			ok = a == b
		case pb.Compare_NOT_EQUAL:
			ok = a != b
		case pb.Compare_GREATER:
			ok = a > b
		case pb.Compare_LESS:
			ok = a < b
		}
		if !ok {
			return false
		}
	}
	return true
}

// check validates the ops of the branches r takes against the state before
// the transaction.
func (m *model) check(r *pb.TxnRequest) error {
	ops := r.Success
	if !m.allCompares(r) {
		ops = r.Failure
	}
	for _, op := range ops {
		switch v := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if len(v.RequestRange.Key) == 0 {
				return ErrEmptyKey
			}
			if v.RequestRange.Revision > m.rev {
				return ErrFutureRev
			}
			if v.RequestRange.Revision > 0 && v.RequestRange.Revision < m.compactRev {
				return ErrCompacted
			}
		case *pb.RequestOp_RequestPut:
			if len(v.RequestPut.Key) == 0 {
				return ErrEmptyKey
			}
			if (v.RequestPut.IgnoreValue || v.RequestPut.IgnoreLease) && m.get(string(v.RequestPut.Key), m.rev) == nil {
				return ErrKeyNotFound
			}
		case *pb.RequestOp_RequestDeleteRange:
			if len(v.RequestDeleteRange.Key) == 0 {
				return ErrEmptyKey
			}
		case *pb.RequestOp_RequestTxn:
			if err := m.check(v.RequestTxn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *model) allCompares(r *pb.TxnRequest) bool {
	for _, c := range r.Compare {
		if !m.compare(c) {
			return false
		}
	}
	return true
}

// paths evaluates every compare before the transaction, depth first along
// the branches taken.
func (m *model) paths(r *pb.TxnRequest, out []bool) []bool {
	ok := m.allCompares(r)
	out = append(out, ok)
	ops := r.Success
	if !ok {
		ops = r.Failure
	}
	for _, op := range ops {
		if v, isTxn := op.Request.(*pb.RequestOp_RequestTxn); isTxn {
			out = m.paths(v.RequestTxn, out)
		}
	}
	return out
}

func (t *mtxn) txn(r *pb.TxnRequest, path []bool, pos *int) (*pb.TxnResponse, error) {
	ok := path[*pos]
	*pos++
	ops := r.Success
	if !ok {
		ops = r.Failure
	}
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{}, Succeeded: ok, Responses: []*pb.ResponseOp{}}
	for _, op := range ops {
		ro := &pb.ResponseOp{}
		switch v := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			rr, err := t.m.rangeResp(v.RequestRange, t.cur())
			if err != nil {
				return nil, err
			}
			ro.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
		case *pb.RequestOp_RequestPut:
			pr, err := t.put(v.RequestPut)
			if err != nil {
				return nil, err
			}
			ro.Response = &pb.ResponseOp_ResponsePut{ResponsePut: pr}
		case *pb.RequestOp_RequestDeleteRange:
			dr, err := t.del(v.RequestDeleteRange)
			if err != nil {
				return nil, err
			}
			ro.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}
		case *pb.RequestOp_RequestTxn:
			tr, err := t.txn(v.RequestTxn, path, pos)
			if err != nil {
				return nil, err
			}
			tr.Header.Revision = t.cur()
			ro.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}
		}
		resp.Responses = append(resp.Responses, ro)
	}
	return resp, nil
}

// doTxn applies r to the model as Store.Txn does: a failure part way
// changes nothing.
func (m *model) doTxn(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := m.check(r); err != nil {
		return nil, err
	}
	path := m.paths(r, nil)
	work := m.clone()
	t := &mtxn{m: work}
	pos := 0
	resp, err := t.txn(r, path, &pos)
	if err != nil {
		return nil, err
	}
	if t.changed {
		work.rev++
	}
	*m = *work
	resp.Header.Revision = m.rev
	return resp, nil
}
