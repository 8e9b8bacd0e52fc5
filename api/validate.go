package api

import (
	"bytes"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// The checks below reproduce etcd's v3rpc request validation: the same
// rules, applied in the same order, with the same rpctypes errors.

func checkRange(r *pb.RangeRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

func checkPut(r *pb.PutRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if r.IgnoreValue && len(r.Value) != 0 {
		return rpctypes.ErrGRPCValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

func checkDelete(r *pb.DeleteRangeRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	return nil
}

// checkTxn bounds the compares and each branch by maxTxnOps (the largest
// of the three counts), requires compare keys, and checks every op. A
// nested txn is checked against what its parent left of the budget.
func checkTxn(r *pb.TxnRequest, maxTxnOps int) error {
	opc := max(len(r.Compare), len(r.Success), len(r.Failure))
	if opc > maxTxnOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.Compare {
		if len(c.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, branch := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range branch {
			if err := checkOp(op, maxTxnOps-opc); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkOp(op *pb.RequestOp, maxTxnOps int) error {
	switch u := op.GetRequest().(type) {
	case *pb.RequestOp_RequestRange:
		return checkRange(u.RequestRange)
	case *pb.RequestOp_RequestPut:
		return checkPut(u.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		return checkDelete(u.RequestDeleteRange)
	case *pb.RequestOp_RequestTxn:
		return checkTxn(u.RequestTxn, maxTxnOps)
	default: // empty op
		return rpctypes.ErrGRPCKeyNotFound
	}
}

// keyRange is a half-open key interval [start, end); end == nil means
// unbounded above.
type keyRange struct {
	start, end []byte
}

// deleteRange is the interval a DeleteRangeRequest removes: the single
// key when range_end is empty, every key >= key when range_end is
// "\x00", else [key, range_end).
func deleteRange(d *pb.DeleteRangeRequest) keyRange {
	switch {
	case len(d.RangeEnd) == 0:
		return keyRange{start: d.Key, end: append(bytes.Clone(d.Key), 0)}
	case len(d.RangeEnd) == 1 && d.RangeEnd[0] == 0:
		return keyRange{start: d.Key}
	default:
		return keyRange{start: d.Key, end: d.RangeEnd}
	}
}

func (kr keyRange) contains(k []byte) bool {
	return bytes.Compare(k, kr.start) >= 0 && (kr.end == nil || bytes.Compare(k, kr.end) < 0)
}

func anyContains(dels []keyRange, k string) bool {
	for _, d := range dels {
		if d.contains([]byte(k)) {
			return true
		}
	}
	return false
}

// checkOverlaps rejects a txn branch that writes one key twice, with
// etcd's rules: at one level a put may not repeat a key nor fall in a
// delete of that level or of a nested txn; a nested txn's puts may not
// repeat an earlier put nor fall in this level's deletes or those of
// nested txns before it; the then and else branches of one nested txn
// may put the same key, as only one of them runs. Deletes may overlap
// each other. It returns the branch's puts and deletes for its parent.
func checkOverlaps(ops []*pb.RequestOp) (map[string]struct{}, []keyRange, error) {
	var dels []keyRange
	for _, op := range ops {
		if d := op.GetRequestDeleteRange(); d != nil {
			dels = append(dels, deleteRange(d))
		}
	}
	puts := make(map[string]struct{})
	for _, op := range ops {
		t := op.GetRequestTxn()
		if t == nil {
			continue
		}
		thenPuts, thenDels, err := checkOverlaps(t.Success)
		if err != nil {
			return nil, nil, err
		}
		elsePuts, elseDels, err := checkOverlaps(t.Failure)
		if err != nil {
			return nil, nil, err
		}
		for k := range thenPuts {
			if _, dup := puts[k]; dup || anyContains(dels, k) {
				return nil, nil, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range elsePuts {
			if _, dup := puts[k]; dup {
				if _, sameTxn := thenPuts[k]; !sameTxn {
					return nil, nil, rpctypes.ErrGRPCDuplicateKey
				}
			}
			if anyContains(dels, k) {
				return nil, nil, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels = append(dels, thenDels...)
		dels = append(dels, elseDels...)
	}
	for _, op := range ops {
		p := op.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.Key)
		if _, dup := puts[k]; dup || anyContains(dels, k) {
			return nil, nil, rpctypes.ErrGRPCDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
