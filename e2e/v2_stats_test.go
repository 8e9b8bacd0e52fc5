package e2e

import (
	"fmt"
	"net/url"
	"testing"
)

// TestV2LeaderStatsPerFollower: /v2/stats/leader counts, per follower, the
// appends the leader wrote to it with their latencies, as etcd 3.5's: after
// writes, every follower has successes with 0 < minimum <= average <=
// maximum and the current latency between them; a follower that is down
// accrues failures while the leader's appends to it are lost.
func TestV2LeaderStatsPerFollower(t *testing.T) {
	t.Parallel()
	c := NewClusterArgs(t, 3, "--enable-v2")
	lead := c.waitLeader(t, c.Members, -1)
	L := c.Members[lead].ClientURL
	for i := range 20 {
		wantV2(t, "put", v2Do(t, "PUT", L+fmt.Sprintf("/v2/keys/s%d", i), url.Values{"value": {"x"}}), 201)
	}
	follower := func(r v2Resp, id string) (lat, counts map[string]any) {
		f, _ := field(r, "followers", id).(map[string]any)
		lat, _ = f["latency"].(map[string]any)
		counts, _ = f["counts"].(map[string]any)
		return lat, counts
	}
	cli := c.Client(t)
	ids := map[string]*Member{}
	for i, m := range c.Members {
		if i != lead {
			ids[fmt.Sprintf("%x", memberID(t, cli, m.Name))] = m
		}
	}
	r := v2Do(t, "GET", L+"/v2/stats/leader", nil)
	if r.Status != 200 || field(r, "leader") != fmt.Sprintf("%x", memberID(t, cli, c.Members[lead].Name)) {
		t.Fatalf("stats/leader: %d %s", r.Status, r.Body)
	}
	for id := range ids {
		lat, counts := follower(r, id)
		s, _ := counts["success"].(float64)
		mn, _ := lat["minimum"].(float64)
		avg, _ := lat["average"].(float64)
		mx, _ := lat["maximum"].(float64)
		cur, _ := lat["current"].(float64)
		sd, _ := lat["standardDeviation"].(float64)
		if s < 20 || !(0 < mn && mn <= avg && avg <= mx && mn <= cur && cur <= mx) || sd < 0 {
			t.Fatalf("follower %s after 20 writes: latency %v, counts %v\n%s", id, lat, counts, r.Body)
		}
	}
	// Stop one follower: the leader's appends to it fail or are dropped.
	var downID string
	for id, m := range ids {
		downID = id
		m.Stop(t)
		break
	}
	i := 0
	eventually(t, readyTimeout, "failures counted for the stopped follower", func() (bool, string) {
		i++
		wantV2(t, "put with a follower down", v2Do(t, "PUT", L+fmt.Sprintf("/v2/keys/d%d", i), url.Values{"value": {"x"}}), 201)
		r := v2Do(t, "GET", L+"/v2/stats/leader", nil)
		_, counts := follower(r, downID)
		f, _ := counts["fail"].(float64)
		return f > 0, r.Body
	})
}
