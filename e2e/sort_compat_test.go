package e2e

import (
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestAPICompatSortTargetWithoutOrder: a range that names a sort target
// other than the key but no order is sorted ascending by that target, then
// limited, as etcd does; an ascending sort by key is the natural order.
func TestAPICompatSortTargetWithoutOrder(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)
	kv := pb.NewKVClient(cli.ActiveConnection())
	// Values sort the other way round from keys; "b" is written last.
	for _, p := range [][2]string{{"a", "3"}, {"c", "1"}, {"b", "2"}} {
		if _, err := cli.Put(ctx(t), p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	keys := func(r *pb.RangeResponse) string {
		s := ""
		for _, kv := range r.Kvs {
			s += string(kv.Key)
		}
		return fmt.Sprintf("%s more=%v count=%d", s, r.More, r.Count)
	}
	for _, tt := range []struct {
		target pb.RangeRequest_SortTarget
		order  pb.RangeRequest_SortOrder
		want   string
	}{
		{pb.RangeRequest_VALUE, pb.RangeRequest_NONE, "cb more=true count=3"},
		{pb.RangeRequest_MOD, pb.RangeRequest_NONE, "ac more=true count=3"},
		{pb.RangeRequest_CREATE, pb.RangeRequest_DESCEND, "bc more=true count=3"},
		{pb.RangeRequest_KEY, pb.RangeRequest_NONE, "ab more=true count=3"},
		{pb.RangeRequest_KEY, pb.RangeRequest_ASCEND, "ab more=true count=3"},
		{pb.RangeRequest_KEY, pb.RangeRequest_DESCEND, "cb more=true count=3"},
	} {
		r, err := kv.Range(ctx(t), &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), Limit: 2, SortTarget: tt.target, SortOrder: tt.order})
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(r); got != tt.want {
			t.Errorf("target %v order %v limit 2: %s, want %s", tt.target, tt.order, got, tt.want)
		}
	}
}
