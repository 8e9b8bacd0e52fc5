package mvcc

import (
	"bytes"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// CheckTxn validates r as etcd does before proposing it: more than maxOps
// compares or ops in a branch (nested transactions get what the parent
// leaves) is ErrTooManyOps; an empty key in a compare or op is ErrEmptyKey;
// an empty op is ErrKeyNotFound; and, within each branch, putting a key twice
// or putting a key that a delete of the same branch covers (including puts
// and deletes of nested transactions, where the two branches of one nested
// transaction may put the same key) is ErrDuplicateKey.
func CheckTxn(r *pb.TxnRequest, maxOps int) error {
	if err := checkTxnOps(r, maxOps); err != nil {
		return err
	}
	if _, _, err := checkIntervals(r.GetSuccess()); err != nil {
		return err
	}
	_, _, err := checkIntervals(r.GetFailure())
	return err
}

func checkTxnOps(r *pb.TxnRequest, maxOps int) error {
	opc := max(len(r.GetCompare()), len(r.GetSuccess()), len(r.GetFailure()))
	if opc > maxOps {
		return ErrTooManyOps
	}
	for _, c := range r.GetCompare() {
		if len(c.GetKey()) == 0 {
			return ErrEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if err := checkOp(op, maxOps-opc); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkOp(op *pb.RequestOp, maxOps int) error {
	switch {
	case op.GetRequestRange() != nil:
		if len(op.GetRequestRange().GetKey()) == 0 {
			return ErrEmptyKey
		}
	case op.GetRequestPut() != nil:
		if len(op.GetRequestPut().GetKey()) == 0 {
			return ErrEmptyKey
		}
	case op.GetRequestDeleteRange() != nil:
		if len(op.GetRequestDeleteRange().GetKey()) == 0 {
			return ErrEmptyKey
		}
	case op.GetRequestTxn() != nil:
		return checkTxnOps(op.GetRequestTxn(), maxOps)
	default:
		return ErrKeyNotFound
	}
	return nil
}

// interval is a deleted key range [key, end); end nil means to the end of
// the key space.
type interval struct{ key, end []byte }

func deleteInterval(d *pb.DeleteRangeRequest) interval {
	switch end := d.GetRangeEnd(); {
	case len(end) == 0:
		return interval{key: d.GetKey(), end: append(append([]byte(nil), d.GetKey()...), 0)}
	case len(end) == 1 && end[0] == 0:
		return interval{key: d.GetKey()}
	default:
		return interval{key: d.GetKey(), end: end}
	}
}

func covers(ivs []interval, k []byte) bool {
	for _, iv := range ivs {
		if bytes.Compare(k, iv.key) >= 0 && (iv.end == nil || bytes.Compare(k, iv.end) < 0) {
			return true
		}
	}
	return false
}

// checkIntervals returns the keys put and the ranges deleted by ops and
// their nested transactions, or ErrDuplicateKey on an overlap (etcd's rules).
func checkIntervals(ops []*pb.RequestOp) (map[string]struct{}, []interval, error) {
	var dels []interval
	for _, op := range ops {
		if d := op.GetRequestDeleteRange(); d != nil {
			dels = append(dels, deleteInterval(d))
		}
	}
	puts := make(map[string]struct{})
	for _, op := range ops {
		t := op.GetRequestTxn()
		if t == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(t.GetSuccess())
		if err != nil {
			return nil, nil, err
		}
		putsElse, delsElse, err := checkIntervals(t.GetFailure())
		if err != nil {
			return nil, nil, err
		}
		for k := range putsThen {
			if _, dup := puts[k]; dup || covers(dels, []byte(k)) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, dup := puts[k]; dup {
				// Then and else exclude each other: only a key put
				// by another op of this level is a duplicate.
				if _, safe := putsThen[k]; !safe {
					return nil, nil, ErrDuplicateKey
				}
			}
			if covers(dels, []byte(k)) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}
	for _, op := range ops {
		p := op.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.GetKey())
		if _, dup := puts[k]; dup || covers(dels, p.GetKey()) {
			return nil, nil, ErrDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
