package api

import (
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func opPut(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("v")}}}
}

func opDel(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)}}}
}

func opGet(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k)}}}
}

func opTxn(then, els []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: then, Failure: els}}}
}

func ops(o ...*pb.RequestOp) []*pb.RequestOp { return o }

func TestCheckOverlapsFollowsEtcdRules(t *testing.T) {
	tests := []struct {
		name     string
		ops      []*pb.RequestOp
		conflict bool
	}{
		{"distinct puts", ops(opPut("a"), opPut("b")), false},
		{"same key put twice", ops(opPut("a"), opPut("a")), true},
		{"reads never conflict", ops(opGet("a"), opPut("a"), opGet("a")), false},
		{"point delete overlaps put", ops(opDel("a", ""), opPut("a")), true},
		{"put then point delete", ops(opPut("a"), opDel("a", "")), true},
		{"point delete distinct put", ops(opDel("a", ""), opPut("b")), false},
		{"range delete overlaps put", ops(opDel("a", "c"), opPut("b")), true},
		{"range delete excludes its end", ops(opDel("a", "c"), opPut("c")), false},
		{"from-key delete overlaps later key", ops(opDel("a", "\x00"), opPut("b")), true},
		{"from-key delete before its start", ops(opDel("m", "\x00"), opPut("a")), false},
		{"overlapping deletes are fine", ops(opDel("a", "z"), opDel("b", "")), false},
		{"nested put repeats outer put", ops(opPut("a"), opTxn(ops(opPut("a")), nil)), true},
		{"nested put inside outer delete", ops(opDel("a", "c"), opTxn(ops(opPut("b")), nil)), true},
		{"outer put inside nested delete", ops(opPut("b"), opTxn(ops(opDel("a", "c")), nil)), true},
		{"then and else may put the same key", ops(opTxn(ops(opPut("a")), ops(opPut("a")))), false},
		{"two nested txns put the same key", ops(opTxn(ops(opPut("a")), nil), opTxn(ops(opPut("a")), nil)), true},
		{"else repeats an earlier sibling's put", ops(opTxn(ops(opPut("a")), nil), opTxn(nil, ops(opPut("a")))), true},
		{"nested put after sibling's nested delete", ops(opTxn(ops(opDel("a", "")), nil), opTxn(ops(opPut("a")), nil)), true},
		// etcd checks a nested txn's puts only against deletes collected
		// before it, so the reverse order passes. Cairn keeps the quirk.
		{"nested put before sibling's nested delete", ops(opTxn(ops(opPut("a")), nil), opTxn(ops(opDel("a", "")), nil)), false},
		{"conflict deep inside", ops(opTxn(ops(opTxn(ops(opPut("x"), opPut("x")), nil)), nil)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := checkOverlaps(tt.ops)
			if tt.conflict {
				if !errors.Is(err, rpctypes.ErrGRPCDuplicateKey) {
					t.Fatalf("checkOverlaps = %v, want ErrGRPCDuplicateKey", err)
				}
			} else if err != nil {
				t.Fatalf("checkOverlaps = %v, want nil", err)
			}
		})
	}
}

func TestCheckTxnBoundsOpsAndChecksEachOp(t *testing.T) {
	many := func(n int) []*pb.RequestOp {
		var o []*pb.RequestOp
		for i := range n {
			o = append(o, opPut(fmt.Sprint(i)))
		}
		return o
	}
	cmp := func(k string) *pb.Compare { return &pb.Compare{Key: []byte(k)} }
	tests := []struct {
		name string
		txn  *pb.TxnRequest
		want error
	}{
		{"at the limit", &pb.TxnRequest{Success: many(4), Failure: many(4)}, nil},
		{"success over", &pb.TxnRequest{Success: many(5)}, rpctypes.ErrGRPCTooManyOps},
		{"failure over", &pb.TxnRequest{Failure: many(5)}, rpctypes.ErrGRPCTooManyOps},
		{"compares over", &pb.TxnRequest{Compare: []*pb.Compare{cmp("a"), cmp("b"), cmp("c"), cmp("d"), cmp("e")}}, rpctypes.ErrGRPCTooManyOps},
		// A nested txn gets what its parent left: 4-2 = 2 ops.
		{"nested within the rest", &pb.TxnRequest{Success: ops(opPut("x"), opTxn(many(2), nil))}, nil},
		{"nested over the rest", &pb.TxnRequest{Success: ops(opPut("x"), opTxn(many(3), nil))}, rpctypes.ErrGRPCTooManyOps},
		{"compare without key", &pb.TxnRequest{Compare: []*pb.Compare{{}}}, rpctypes.ErrGRPCEmptyKey},
		{"op without key", &pb.TxnRequest{Success: ops(opPut(""))}, rpctypes.ErrGRPCEmptyKey},
		{"empty op", &pb.TxnRequest{Failure: ops(&pb.RequestOp{})}, rpctypes.ErrGRPCKeyNotFound},
		{"bad sort in a range op", &pb.TxnRequest{Success: ops(&pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), SortTarget: 99}}})}, rpctypes.ErrGRPCInvalidSortOption},
		{"ignore_value with value in op", &pb.TxnRequest{Success: ops(&pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true}}})}, rpctypes.ErrGRPCValueProvided},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkTxn(tt.txn, 4); !errors.Is(err, tt.want) {
				t.Fatalf("checkTxn = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckRangeRejectsUnknownSortOptions(t *testing.T) {
	tests := []struct {
		order  pb.RangeRequest_SortOrder
		target pb.RangeRequest_SortTarget
		want   error
	}{
		{pb.RangeRequest_ASCEND, pb.RangeRequest_CREATE, nil},
		{pb.RangeRequest_DESCEND, pb.RangeRequest_VALUE, nil},
		{pb.RangeRequest_ASCEND, 100, rpctypes.ErrGRPCInvalidSortOption},
		{200, pb.RangeRequest_MOD, rpctypes.ErrGRPCInvalidSortOption},
	}
	for _, tt := range tests {
		if err := checkRange(&pb.RangeRequest{Key: []byte("k"), SortOrder: tt.order, SortTarget: tt.target}); !errors.Is(err, tt.want) {
			t.Errorf("checkRange(order=%d target=%d) = %v, want %v", tt.order, tt.target, err, tt.want)
		}
	}
}
