package v2http

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestLeaderStatsAsEtcd(t *testing.T) {
	ls := NewLeaderStats()
	ls.Observe(2, 1, time.Millisecond, true)
	ls.Observe(2, 2, 3*time.Millisecond, true)
	ls.Observe(2, 3, 0, false)
	ls.Observe(2, 0, time.Hour, true) // no append in the write: nothing
	fs := ls.follower(2)
	l := fs.Latency
	// Successes of 1, 3 and 3 ms.
	if fs.Counts.Success != 3 || fs.Counts.Fail != 3 || l.Current != 3 || l.Minimum != 1 || l.Maximum != 3 ||
		math.Abs(l.Average-7.0/3) > 1e-9 || math.Abs(l.StandardDeviation-math.Sqrt(19.0/3-49.0/9)) > 1e-9 {
		t.Fatalf("stats %+v", fs)
	}
	// A follower nothing was sent to shows etcd's initial values.
	b, _ := json.Marshal(ls.follower(3))
	if got, want := string(b), `{"latency":{"current":0,"average":0,"standardDeviation":0,"minimum":9223372036854776000,"maximum":0},"counts":{"fail":0,"success":0}}`; got != want {
		t.Fatalf("an unseen follower:\n got %s\nwant %s", got, want)
	}
	var none *LeaderStats
	if fs := none.follower(2); fs.Counts.Success != 0 || fs.Latency.Minimum != 1<<63 {
		t.Fatalf("nil stats: %+v", fs)
	}
}
