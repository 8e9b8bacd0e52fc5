package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestQuotaRaisesNoSpaceAlarm fills a member past --quota-backend-bytes:
// writes then fail with etcd's NOSPACE error and raise the alarm, reads
// still work, and after compaction, defragmentation and disarming the
// alarm writes work again.
func TestQuotaRaisesNoSpaceAlarm(t *testing.T) {
	t.Parallel()
	const quota = 2 << 20
	c := NewClusterArgs(t, 1, "--quota-backend-bytes", fmt.Sprint(quota))
	cli := c.Client(t)
	val := strings.Repeat("x", 64<<10)
	var lastRev int64
	var err error
	for i := 0; i < 200; i++ {
		var r *clientv3.PutResponse
		r, err = cli.Put(ctx(t), "big", val)
		if err != nil {
			break
		}
		lastRev = r.Header.Revision
	}
	if !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("writing 12 MiB into a 2 MiB quota: %v, want %v", err, rpctypes.ErrNoSpace)
	}
	alarms, err := cli.AlarmList(ctx(t))
	if err != nil || len(alarms.Alarms) != 1 || alarms.Alarms[0].Alarm != pb.AlarmType_NOSPACE {
		t.Fatalf("alarm list: %+v %v", alarms, err)
	}
	if out := c.Etcdctl(t, "alarm", "list"); !strings.Contains(out, "alarm:NOSPACE") {
		t.Fatalf("etcdctl alarm list: %q", out)
	}
	// Every write that adds data now fails, even a tiny one; reads work.
	if _, err := cli.Put(ctx(t), "small", "1"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("small put under NOSPACE: %v", err)
	}
	if r, err := cli.Get(ctx(t), "big"); err != nil || r.Header.Revision != lastRev {
		t.Fatalf("read under NOSPACE: %v %v", r, err)
	}
	st, err := cli.Status(ctx(t), c.Members[0].ClientURL)
	if err != nil || st.DbSizeQuota != quota || len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "alarm:NOSPACE") {
		t.Fatalf("status under NOSPACE: %+v %v", st, err)
	}
	// Free space, then disarm.
	if _, err := cli.Compact(ctx(t), lastRev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Defragment(ctx(t), c.Members[0].ClientURL); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AlarmDisarm(ctx(t), &clientv3.AlarmMember{MemberID: alarms.Alarms[0].MemberID, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx(t), "small", "1"); err != nil {
		t.Fatalf("put after compaction, defrag and disarm: %v", err)
	}
}
