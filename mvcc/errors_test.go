package mvcc

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestRequestErrors(t *testing.T) {
	s := openTest(t, testConfig(t))
	for i := 0; i < 5; i++ {
		mustPut(t, s, "k", "v") // revs 2..6
	}
	if err := s.Compact(4); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"range empty key", func() error { _, err := s.Range(&pb.RangeRequest{}); return err }, ErrEmptyKey},
		{"put empty key", func() error { _, err := s.Put(&pb.PutRequest{Value: []byte("v")}); return err }, ErrEmptyKey},
		{"delete empty key", func() error { _, err := s.DeleteRange(&pb.DeleteRangeRequest{RangeEnd: []byte("z")}); return err }, ErrEmptyKey},
		{"range compacted", func() error { _, err := s.Range(&pb.RangeRequest{Key: []byte("k"), Revision: 3}); return err }, ErrCompacted},
		{"range at compacted revision works", func() error { _, err := s.Range(&pb.RangeRequest{Key: []byte("k"), Revision: 4}); return err }, nil},
		{"range future", func() error { _, err := s.Range(&pb.RangeRequest{Key: []byte("k"), Revision: 7}); return err }, ErrFutureRev},
		{"compact again", func() error { return s.Compact(4) }, ErrCompacted},
		{"compact below", func() error { return s.Compact(3) }, ErrCompacted},
		{"compact future", func() error { return s.Compact(7) }, ErrFutureRev},
		{"hashkv compacted", func() error { _, _, _, err := s.HashKV(3); return err }, ErrCompacted},
		{"hashkv future", func() error { _, _, _, err := s.HashKV(7); return err }, ErrFutureRev},
		{"ignore_value missing key", func() error {
			_, err := s.Put(&pb.PutRequest{Key: []byte("nope"), IgnoreValue: true})
			return err
		}, ErrKeyNotFound},
		{"ignore_lease missing key", func() error {
			_, err := s.Put(&pb.PutRequest{Key: []byte("nope"), Value: []byte("v"), IgnoreLease: true})
			return err
		}, ErrKeyNotFound},
		{"txn range future", func() error {
			_, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{rangeOp("k", 9)}})
			return err
		}, ErrFutureRev},
		{"txn range compacted", func() error {
			_, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("x"), rangeOp("k", 2)}})
			return err
		}, ErrCompacted},
		{"txn put empty key", func() error {
			_, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("x"), putOp("")}})
			return err
		}, ErrEmptyKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if (tt.want == nil && err != nil) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if rev := s.Rev(); rev != 6 {
				t.Fatalf("a failed request changed the revision to %d", rev)
			}
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("k")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Range after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Put(&pb.PutRequest{Key: []byte("k")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close = %v, want ErrClosed", err)
	}
}

func putOp(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("v")}}}
}

func delOp(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)}}}
}

func rangeOp(k string, rev int64) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k), Revision: rev}}}
}

func txnOp(then, els []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: then, Failure: els}}}
}

func TestCheckTxn(t *testing.T) {
	ops := func(o ...*pb.RequestOp) []*pb.RequestOp { return o }
	tests := []struct {
		name string
		r    *pb.TxnRequest
		max  int
		want error
	}{
		{"ok", &pb.TxnRequest{Success: ops(putOp("a"), putOp("b")), Failure: ops(putOp("a"))}, 128, nil},
		{"too many ops", &pb.TxnRequest{Success: ops(putOp("a"), putOp("b"), putOp("c"))}, 2, ErrTooManyOps},
		{"too many compares", &pb.TxnRequest{Compare: []*pb.Compare{{Key: []byte("a")}, {Key: []byte("b")}, {Key: []byte("c")}}}, 2, ErrTooManyOps},
		{"nested too many ops", &pb.TxnRequest{Success: ops(txnOp(ops(putOp("a"), putOp("b")), nil))}, 2, ErrTooManyOps},
		{"empty compare key", &pb.TxnRequest{Compare: []*pb.Compare{{}}}, 128, ErrEmptyKey},
		{"empty put key", &pb.TxnRequest{Success: ops(putOp(""))}, 128, ErrEmptyKey},
		{"empty delete key", &pb.TxnRequest{Failure: ops(delOp("", "z"))}, 128, ErrEmptyKey},
		{"empty range key", &pb.TxnRequest{Success: ops(rangeOp("", 0))}, 128, ErrEmptyKey},
		{"nested empty key", &pb.TxnRequest{Success: ops(txnOp(nil, ops(putOp(""))))}, 128, ErrEmptyKey},
		{"empty op", &pb.TxnRequest{Success: ops(&pb.RequestOp{})}, 128, ErrKeyNotFound},
		{"duplicate put", &pb.TxnRequest{Success: ops(putOp("a"), putOp("a"))}, 128, ErrDuplicateKey},
		{"put and delete same key", &pb.TxnRequest{Success: ops(delOp("a", ""), putOp("a"))}, 128, ErrDuplicateKey},
		{"put inside deleted range", &pb.TxnRequest{Failure: ops(putOp("b"), delOp("a", "c"))}, 128, ErrDuplicateKey},
		{"put outside deleted range", &pb.TxnRequest{Success: ops(putOp("c"), delOp("a", "c"))}, 128, nil},
		{"put in open-ended delete", &pb.TxnRequest{Success: ops(putOp("zz"), delOp("b", "\x00"))}, 128, ErrDuplicateKey},
		{"two deletes overlap fine", &pb.TxnRequest{Success: ops(delOp("a", "z"), delOp("b", ""))}, 128, nil},
		{"nested put duplicates outer put", &pb.TxnRequest{Success: ops(putOp("a"), txnOp(ops(putOp("a")), nil))}, 128, ErrDuplicateKey},
		{"nested put inside outer delete", &pb.TxnRequest{Success: ops(delOp("a", "c"), txnOp(ops(putOp("b")), nil))}, 128, ErrDuplicateKey},
		{"nested then and else may put same key", &pb.TxnRequest{Success: ops(txnOp(ops(putOp("a")), ops(putOp("a"))))}, 128, nil},
		{"two nested txns put same key", &pb.TxnRequest{Success: ops(txnOp(ops(putOp("a")), nil), txnOp(nil, ops(putOp("a"))))}, 128, ErrDuplicateKey},
		{"outer put inside nested delete", &pb.TxnRequest{Success: ops(putOp("b"), txnOp(ops(delOp("a", "c")), nil))}, 128, ErrDuplicateKey},
		{"branches are independent", &pb.TxnRequest{Success: ops(putOp("a")), Failure: ops(delOp("a", ""))}, 128, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckTxn(tt.r, tt.max); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("CheckTxn = %v, want %v", err, tt.want)
			}
		})
	}
}
