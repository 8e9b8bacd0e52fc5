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

func TestTxnReadOnlyLooksIntoNestedTxns(t *testing.T) {
	ops := func(o ...*pb.RequestOp) []*pb.RequestOp { return o }
	tests := []struct {
		name string
		r    *pb.TxnRequest
		want bool
	}{
		{"reads only", &pb.TxnRequest{Success: ops(rangeOp("a", 0)), Failure: ops(txnOp(ops(rangeOp("b", 0)), nil))}, true},
		{"no ops", &pb.TxnRequest{}, true},
		{"a put", &pb.TxnRequest{Success: ops(rangeOp("a", 0), putOp("b"))}, false},
		{"a nested delete in the else branch", &pb.TxnRequest{Success: ops(rangeOp("a", 0)), Failure: ops(txnOp(nil, ops(delOp("b", ""))))}, false},
		{"an empty op", &pb.TxnRequest{Success: ops(&pb.RequestOp{})}, false},
	}
	for _, tt := range tests {
		if got := TxnReadOnly(tt.r); got != tt.want {
			t.Errorf("%s: TxnReadOnly = %v, want %v", tt.name, got, tt.want)
		}
	}
}
