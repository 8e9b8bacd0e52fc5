package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/proc"
)

// v2MemberList renders GET /v2/members from u as sorted lines
// "id name peerURLs clientURLs".
func v2MemberList(t *testing.T, u string) ([]string, v2Resp) {
	t.Helper()
	r := v2Do(t, "GET", u+"/v2/members", nil)
	if r.Status != 200 {
		t.Fatalf("GET %s/v2/members: %d %s", u, r.Status, r.Body)
	}
	ms, _ := field(r, "members").([]any)
	var out []string
	for _, m := range ms {
		mm, _ := m.(map[string]any)
		urls := func(k string) string {
			var s []string
			l, _ := mm[k].([]any)
			for _, u := range l {
				s = append(s, fmt.Sprint(u))
			}
			sort.Strings(s)
			return strings.Join(s, ",")
		}
		out = append(out, fmt.Sprintf("%v %v %s %s", mm["id"], mm["name"], urls("peerURLs"), urls("clientURLs")))
	}
	sort.Strings(out)
	return out, r
}

// v3MemberList renders the v3 Cluster API's member list the same way.
func v3MemberList(t *testing.T, cli *clientv3.Client) []string {
	t.Helper()
	ml, err := cli.MemberList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ml.Members {
		p, c := append([]string(nil), m.PeerURLs...), append([]string(nil), m.ClientURLs...)
		sort.Strings(p)
		sort.Strings(c)
		out = append(out, fmt.Sprintf("%x %s %s %s", m.ID, m.Name, strings.Join(p, ","), strings.Join(c, ",")))
	}
	sort.Strings(out)
	return out
}

// TestV2MembersAddJoinRemove: on a 3-member cluster with --enable-v2, a
// member added with POST /v2/members starts with --initial-cluster-state
// existing and joins (it serves v2 writes and quorum reads), and DELETE
// /v2/members/<id> removes it, after which it stops with etcd's message.
// At every step the v2 member list is the v3 Cluster API's.
func TestV2MembersAddJoinRemove(t *testing.T) {
	t.Parallel()
	c := NewClusterArgs(t, 3, "--enable-v2")
	lead := c.waitLeader(t, c.Members, -1)
	L := c.Members[lead].ClientURL
	cli := c.Client(t)
	sameLists := func(what, u string, n int) []string {
		t.Helper()
		var v2, v3 []string
		eventually(t, readyTimeout, what+": the v2 member list equal to the v3 one", func() (bool, string) {
			v2, _ = v2MemberList(t, u)
			v3 = v3MemberList(t, cli)
			return len(v2) == n && strings.Join(v2, "\n") == strings.Join(v3, "\n"), fmt.Sprintf("v2 %q, v3 %q", v2, v3)
		})
		return v2
	}
	sameLists("before the add", L, 3)

	j := newJoiner(t, c, "m3")
	var r v2Resp
	// (Retried: a member refuses an add until its peers have been connected
	// long enough, as etcd's strict reconfiguration check.)
	eventually(t, readyTimeout, "a member add", func() (bool, string) {
		r = v2JSON(t, "POST", L+"/v2/members", `{"peerURLs":["`+j.PeerURL+`"]}`)
		return r.Status != 500, r.Body
	})
	wantV2(t, "member add", r, 201, "name", "")
	id, _ := field(r, "id").(string)
	if id == "" {
		t.Fatalf("member add answered no id: %s", r.Body)
	}
	// Added, not started: no name, no client URLs yet, in both lists.
	if l := sameLists("after the add", L, 4); !strings.Contains(strings.Join(l, "\n"), id+"  "+j.PeerURL+" ") {
		t.Fatalf("the added member is not listed unstarted: %q", l)
	}

	var peers []proc.Peer
	for _, m := range c.Members {
		peers = append(peers, m.Peer())
	}
	j.join(t, proc.InitialCluster(append(peers, j.Peer())...))
	joined := fmt.Sprintf("%s m3 %s %s", id, j.PeerURL, j.ClientURL)
	for _, u := range []string{L, j.ClientURL} {
		if l := sameLists("after the join, asked at "+u, u, 4); !strings.Contains(strings.Join(l, "\n"), joined) {
			t.Fatalf("the joined member is not listed with its name and client URL (%q): %q", joined, l)
		}
	}
	// The new member serves the v2 API: a write through it, a quorum read
	// through the leader, and the other way round.
	wantV2(t, "write through the joined member", v2Do(t, "PUT", j.ClientURL+"/v2/keys/joined", map[string][]string{"value": {"yes"}}), 201)
	wantV2(t, "quorum read on the leader", v2Do(t, "GET", L+"/v2/keys/joined?quorum=true", nil), 200, "node.value", "yes")
	wantV2(t, "write through the leader", v2Do(t, "PUT", L+"/v2/keys/joined", map[string][]string{"value": {"again"}}), 200)
	wantV2(t, "quorum read on the joined member", v2Do(t, "GET", j.ClientURL+"/v2/keys/joined?quorum=true", nil), 200, "node.value", "again")

	// Remove it (retried while the strict reconfiguration check finds the
	// new member connected too recently).
	eventually(t, 30*time.Second, "a member remove", func() (bool, string) {
		r = v2Do(t, "DELETE", L+"/v2/members/"+id, nil)
		return r.Status != 500, r.Body
	})
	if r.Status != 204 {
		t.Fatalf("member remove: %d %s", r.Status, r.Body)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, out, err := j.Wait(wctx)
	if err != nil {
		t.Fatalf("the removed member: %v\nlog:\n%s", err, j.LogTail(30))
	}
	if !st.Success() || !strings.Contains(out, removedMsg) {
		t.Fatalf("the removed member exited %v, want status 0 with %q; output:\n%s", st, removedMsg, proc.Tail(out, 30))
	}
	if l := sameLists("after the remove", L, 3); strings.Contains(strings.Join(l, "\n"), id) {
		t.Fatalf("the removed member is still listed: %q", l)
	}
	wantV2(t, "remove it again", v2Do(t, "DELETE", L+"/v2/members/"+id, nil), 404)
	wantV2(t, "the three members still serve v2 writes", v2Do(t, "PUT", L+"/v2/keys/after", map[string][]string{"value": {"1"}}), 201)
}
