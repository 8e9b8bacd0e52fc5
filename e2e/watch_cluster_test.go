package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestWatchersOnEveryMemberSeeTheSameEventsAcrossALeaderChange: a watcher
// bound to each member of a 3-member cluster sees every write, in the same
// order, while the leader is killed and restarted in the middle.
func TestWatchersOnEveryMemberSeeTheSameEventsAcrossALeaderChange(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 3)
	start := mustPutE(t, c.Client(t), "w/start", "0") + 1
	const writes = 60
	type seen struct {
		evs []string
		err error
	}
	results := make([]chan seen, len(c.Members))
	for i, m := range c.Members {
		results[i] = make(chan seen, 1)
		cli := c.MemberClient(t, m)
		wctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		t.Cleanup(cancel)
		wc := cli.Watch(clientv3.WithRequireLeader(wctx), "w/k", clientv3.WithPrefix(), clientv3.WithRev(start))
		go func(out chan seen) {
			var evs []string
			for r := range wc {
				if err := r.Err(); err != nil {
					continue // a member restarting: clientv3 resumes from the last revision
				}
				for _, ev := range r.Events {
					evs = append(evs, fmt.Sprintf("%s=%s@%d", ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision))
				}
				if len(evs) >= writes {
					break
				}
			}
			out <- seen{evs: evs, err: wctx.Err()}
		}(results[i])
	}
	lead := c.waitLeader(t, c.Members, -1)
	var rest []*Member
	for i, m := range c.Members {
		if i != lead {
			rest = append(rest, m)
		}
	}
	wcli := c.Client(t, rest...)
	var want []string
	for i := 0; i < writes; i++ {
		if i == writes/3 {
			c.Members[lead].Kill(t)
			c.waitLeader(t, rest, lead)
		}
		if i == 2*writes/3 {
			c.Members[lead].Restart(t)
		}
		k, v := fmt.Sprintf("w/k%02d", i), fmt.Sprint(i)
		want = append(want, fmt.Sprintf("%s=%s@%d", k, v, mustPutE(t, wcli, k, v)))
	}
	for i, ch := range results {
		select {
		case r := <-ch:
			if strings.Join(r.evs, " ") != strings.Join(want, " ") {
				t.Errorf("watcher on %s saw\n%v\nwant\n%v", c.Members[i].Name, r.evs, want)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("watcher on %s did not see %d events", c.Members[i].Name, writes)
		}
	}
}

// TestWatchOverTheJSONGateway streams a watch over POST /v3/watch, as
// curl users and non-gRPC clients do.
func TestWatchOverTheJSONGateway(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	b64 := base64.StdEncoding.EncodeToString
	reqCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := fmt.Sprintf(`{"create_request":{"key":%q}}`, b64([]byte("gw")))
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, c.Members[0].ClientURL+"/v3/watch", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v3/watch: %s", resp.Status)
	}
	lines := bufio.NewScanner(resp.Body)
	type result struct {
		Result struct {
			Header  struct{ Revision string }
			Created bool
			Events  []struct {
				Type string
				Kv   struct {
					Key         string `json:"key"`
					Value       string `json:"value"`
					ModRevision string `json:"mod_revision"`
				} `json:"kv"`
			}
		}
	}
	next := func() result {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("watch stream ended: %v", lines.Err())
		}
		var r result
		if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
			t.Fatalf("watch line %q: %v", lines.Text(), err)
		}
		return r
	}
	if r := next(); !r.Result.Created {
		t.Fatalf("first message of a watch must be its creation: %+v", r)
	}
	rev := mustPutE(t, c.Client(t), "gw", "v1")
	r := next()
	if len(r.Result.Events) != 1 || r.Result.Events[0].Kv.Key != b64([]byte("gw")) || r.Result.Events[0].Kv.Value != b64([]byte("v1")) ||
		r.Result.Events[0].Kv.ModRevision != fmt.Sprint(rev) || r.Result.Header.Revision != fmt.Sprint(rev) {
		t.Fatalf("watch event over the gateway: %+v", r)
	}
}
