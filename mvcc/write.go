package mvcc

import (
	"bytes"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// writeTxn is one write transaction: every change gets main revision
// begin+1 and increasing sub revisions. wmu and mu are held throughout.
type writeTxn struct {
	s       *Store
	begin   int64
	sub     int64
	events  []*mvccpb.Event
	written []writtenRev // for revert
	ops     txnOps       // counted into the Store's Stats on success
}

type writtenRev struct {
	key  []byte
	rev  Revision
	tomb bool
}

// cur is the revision the transaction reads at: begin, or begin+1 once it
// changed something.
func (w *writeTxn) cur() int64 {
	if len(w.events) > 0 {
		return w.begin + 1
	}
	return w.begin
}

func (w *writeTxn) reader() valueReader { return batchReader{tx: w.s.tx} }

// beginWrite locks the writer and the readers out and starts a transaction.
// On success the caller must call endWrite.
func (s *Store) beginWrite() (*writeTxn, error) {
	s.wmu.Lock()
	if err := s.writable(); err != nil {
		s.wmu.Unlock()
		return nil, err
	}
	s.mu.Lock()
	return &writeTxn{s: s, begin: s.rev}, nil
}

// endWrite reverts w if err is set, else publishes its revision; then it
// unlocks and calls the event hook.
func (s *Store) endWrite(w *writeTxn, err error) {
	if err != nil {
		w.revert()
	} else {
		if len(w.events) > 0 {
			s.rev = w.begin + 1
		}
		s.keys += w.ops.keys
		s.countTxn(&w.ops)
	}
	hook := s.hook
	s.mu.Unlock()
	s.wmu.Unlock()
	if err == nil && len(w.events) > 0 {
		s.notifyWatchers(w.begin+1, w.events)
	}
	if err == nil && hook != nil && len(w.events) > 0 {
		hook(w.begin+1, w.events)
	}
}

func (w *writeTxn) write(key []byte, kv *mvccpb.KeyValue, tomb bool) (Revision, error) {
	rev := Revision{Main: w.begin + 1, Sub: w.sub}
	b, err := marshalOpts.Marshal(kv)
	if err != nil {
		return rev, fmt.Errorf("mvcc: encoding key value: %w", err)
	}
	kb := w.s.tx.Bucket(keyBucket)
	// Revision keys only ever grow: fill pages to 90% before splitting, as
	// etcd does for this bucket, not bbolt's default half (which leaves
	// the file about twice as large as etcd's for the same data).
	kb.FillPercent = 0.9
	if err := kb.Put(revKey(rev, tomb), b); err != nil {
		return rev, fmt.Errorf("mvcc: writing revision %v: %w", rev, err)
	}
	w.sub++
	w.s.overlay[rev] = b
	w.written = append(w.written, writtenRev{key: key, rev: rev, tomb: tomb})
	w.s.noteWrite(true)
	if tomb {
		w.s.index.tombstone(key, rev)
	} else {
		w.s.index.put(key, rev)
	}
	return rev, nil
}

// revert undoes every change of w (a failed transaction).
func (w *writeTxn) revert() {
	kb := w.s.tx.Bucket(keyBucket)
	for i := len(w.written) - 1; i >= 0; i-- {
		wr := w.written[i]
		_ = kb.Delete(revKey(wr.rev, wr.tomb))
		delete(w.s.overlay, wr.rev)
		w.s.index.revert(wr.key, wr.rev.Main)
	}
	w.written, w.events = nil, nil
}

// prev returns the live value of key, or nil.
func (w *writeTxn) prev(key []byte) (*mvccpb.KeyValue, error) {
	ki := w.s.index.get(key)
	if ki == nil {
		return nil, nil
	}
	r, ok := ki.latest()
	if !ok {
		return nil, nil
	}
	return readKV(w.reader(), r)
}

func (w *writeTxn) put(p *pb.PutRequest) (*pb.PutResponse, error) {
	if len(p.GetKey()) == 0 {
		return nil, ErrEmptyKey
	}
	prev, err := w.prev(p.GetKey())
	if err != nil {
		return nil, err
	}
	if (p.GetIgnoreValue() || p.GetIgnoreLease()) && prev == nil {
		return nil, ErrKeyNotFound
	}
	main := w.begin + 1
	kv := &mvccpb.KeyValue{Key: p.GetKey(), Value: p.GetValue(), CreateRevision: main, ModRevision: main, Version: 1, Lease: p.GetLease()}
	if prev != nil {
		kv.CreateRevision, kv.Version = prev.CreateRevision, prev.Version+1
		if p.GetIgnoreValue() {
			kv.Value = prev.Value
		}
		if p.GetIgnoreLease() {
			kv.Lease = prev.Lease
		}
	}
	if _, err := w.write(kv.Key, kv, false); err != nil {
		return nil, err
	}
	w.ops.puts++
	w.ops.putBytes += len(kv.Key) + len(kv.Value)
	if prev == nil {
		w.ops.keys++
	}
	w.events = append(w.events, &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv})
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{Revision: main}}
	if p.GetPrevKv() {
		resp.PrevKv = prev
	}
	return resp, nil
}

func (w *writeTxn) deleteRange(d *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if len(d.GetKey()) == 0 {
		return nil, ErrEmptyKey
	}
	var live []*keyIndex
	var revs []Revision
	w.s.index.ascend(d.GetKey(), d.GetRangeEnd(), func(ki *keyIndex) bool {
		if r, ok := ki.latest(); ok {
			live = append(live, ki)
			revs = append(revs, r)
		}
		return true
	})
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
	for i, ki := range live {
		if d.GetPrevKv() {
			kv, err := readKV(w.reader(), revs[i])
			if err != nil {
				return nil, err
			}
			resp.PrevKvs = append(resp.PrevKvs, kv)
		}
		rev, err := w.write(ki.key, &mvccpb.KeyValue{Key: ki.key}, true)
		if err != nil {
			return nil, err
		}
		w.events = append(w.events, &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: ki.key, ModRevision: rev.Main}})
	}
	resp.Deleted = int64(len(live))
	resp.Header.Revision = w.cur()
	w.ops.deletes++
	w.ops.keys -= int64(len(live))
	return resp, nil
}

// Put writes a key with etcd semantics (lease, prev_kv, ignore_value,
// ignore_lease). Writer goroutine only.
func (s *Store) Put(r *pb.PutRequest) (resp *pb.PutResponse, err error) {
	w, err := s.beginWrite()
	if err != nil {
		return nil, err
	}
	defer func() { s.endWrite(w, err) }()
	return w.put(r)
}

// DeleteRange deletes the keys of a range with etcd semantics (prev_kv,
// deleted). Deleting nothing does not change the revision. Writer goroutine
// only.
func (s *Store) DeleteRange(r *pb.DeleteRangeRequest) (resp *pb.DeleteRangeResponse, err error) {
	w, err := s.beginWrite()
	if err != nil {
		return nil, err
	}
	defer func() { s.endWrite(w, err) }()
	return w.deleteRange(r)
}

// TxnReadOnly reports whether every op of r, in both branches and at any
// depth, is a range: such a txn changes nothing, so a member serves it as a
// read (it never enters the raft log, and MaxRequestBytes does not bound
// it). An empty op is not a read.
func TxnReadOnly(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			switch {
			case op.GetRequestRange() != nil:
			case op.GetRequestTxn() != nil:
				if !TxnReadOnly(op.GetRequestTxn()) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// Txn runs a transaction with etcd semantics: all compares, including those
// of nested transactions, are evaluated against the state before it; reads
// inside see its earlier writes; all writes share one revision. A request
// that would fail part way (an empty key, ignore_value on a missing key, a
// read at a compacted or future revision) fails as a whole with no change.
// Writer goroutine only.
func (s *Store) Txn(r *pb.TxnRequest) (resp *pb.TxnResponse, err error) {
	w, err := s.beginWrite()
	if err != nil {
		return nil, err
	}
	defer func() { s.endWrite(w, err) }()
	path, err := w.path(r, nil)
	if err != nil {
		return nil, err
	}
	pos := 0
	resp, err = w.txn(r, path, &pos)
	if err != nil {
		return nil, err
	}
	resp.Header.Revision = w.cur()
	return resp, nil
}

// path evaluates the compares of r and of the nested transactions on the
// branches taken, in depth-first order, and checks the ops on those branches
// against the state before the transaction.
func (w *writeTxn) path(r *pb.TxnRequest, path []bool) ([]bool, error) {
	ok := true
	for _, c := range r.GetCompare() {
		if !w.compare(c) {
			ok = false
			break
		}
	}
	path = append(path, ok)
	ops := r.GetSuccess()
	if !ok {
		ops = r.GetFailure()
	}
	for _, op := range ops {
		var err error
		switch {
		case op.GetRequestRange() != nil:
			rr := op.GetRequestRange()
			switch {
			case len(rr.GetKey()) == 0:
				err = ErrEmptyKey
			case rr.GetRevision() > w.begin:
				err = ErrFutureRev
			case rr.GetRevision() > 0 && rr.GetRevision() < w.s.compactRev:
				err = ErrCompacted
			}
		case op.GetRequestPut() != nil:
			p := op.GetRequestPut()
			if len(p.GetKey()) == 0 {
				err = ErrEmptyKey
			} else if p.GetIgnoreValue() || p.GetIgnoreLease() {
				if _, live := w.at(p.GetKey(), w.begin); !live {
					err = ErrKeyNotFound
				}
			}
		case op.GetRequestDeleteRange() != nil:
			if len(op.GetRequestDeleteRange().GetKey()) == 0 {
				err = ErrEmptyKey
			}
		case op.GetRequestTxn() != nil:
			path, err = w.path(op.GetRequestTxn(), path)
		}
		if err != nil {
			return nil, err
		}
	}
	return path, nil
}

func (w *writeTxn) at(key []byte, rev int64) (Revision, bool) {
	ki := w.s.index.get(key)
	if ki == nil {
		return Revision{}, false
	}
	return ki.at(rev)
}

// compare evaluates c at the revision before the transaction (etcd's rules:
// a value compare on no key fails; other targets compare against zero).
func (w *writeTxn) compare(c *pb.Compare) bool {
	var kvs []*mvccpb.KeyValue
	var failed bool
	w.s.index.ascend(c.GetKey(), c.GetRangeEnd(), func(ki *keyIndex) bool {
		r, ok := ki.at(w.begin)
		if !ok {
			return true
		}
		kv, err := readKV(w.reader(), r)
		if err != nil {
			failed = true
			return false
		}
		kvs = append(kvs, kv)
		return true
	})
	if failed {
		return false
	}
	if len(kvs) == 0 {
		if c.GetTarget() == pb.Compare_VALUE {
			return false
		}
		return compareKV(c, &mvccpb.KeyValue{})
	}
	for _, kv := range kvs {
		if !compareKV(c, kv) {
			return false
		}
	}
	return true
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var res int
	switch c.GetTarget() {
	case pb.Compare_VALUE:
		v := c.GetValue()
		if v == nil {
			v = []byte{}
		}
		res = bytes.Compare(kv.Value, v)
	case pb.Compare_CREATE:
		res = cmpInt(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		res = cmpInt(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		res = cmpInt(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		res = cmpInt(kv.Lease, c.GetLease())
	}
	switch c.GetResult() {
	case pb.Compare_EQUAL:
		return res == 0
	case pb.Compare_NOT_EQUAL:
		return res != 0
	case pb.Compare_GREATER:
		return res > 0
	case pb.Compare_LESS:
		return res < 0
	}
	return true
}

// txn executes r along path (from w.path), consuming path[*pos...].
func (w *writeTxn) txn(r *pb.TxnRequest, path []bool, pos *int) (*pb.TxnResponse, error) {
	ok := path[*pos]
	*pos++
	ops := r.GetSuccess()
	if !ok {
		ops = r.GetFailure()
	}
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{}, Succeeded: ok, Responses: make([]*pb.ResponseOp, 0, len(ops))}
	for _, op := range ops {
		ro := &pb.ResponseOp{}
		switch {
		case op.GetRequestRange() != nil:
			rr, err := w.s.rangeLocked(w.reader(), op.GetRequestRange(), w.cur())
			if err != nil {
				return nil, err
			}
			w.ops.ranges++
			ro.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
		case op.GetRequestPut() != nil:
			pr, err := w.put(op.GetRequestPut())
			if err != nil {
				return nil, err
			}
			ro.Response = &pb.ResponseOp_ResponsePut{ResponsePut: pr}
		case op.GetRequestDeleteRange() != nil:
			dr, err := w.deleteRange(op.GetRequestDeleteRange())
			if err != nil {
				return nil, err
			}
			ro.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}
		case op.GetRequestTxn() != nil:
			tr, err := w.txn(op.GetRequestTxn(), path, pos)
			if err != nil {
				return nil, err
			}
			tr.Header.Revision = w.cur()
			ro.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}
		}
		resp.Responses = append(resp.Responses, ro)
	}
	return resp, nil
}
