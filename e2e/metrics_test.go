package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// scraped are the samples of one /metrics page: name, labels, value.
type scraped []struct {
	name   string
	labels map[string]string
	value  float64
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrapeMetrics returns every sample of m's /metrics.
func scrapeMetrics(t *testing.T, m *Member) scraped {
	t.Helper()
	code, body := httpDo(t, m, "GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics on %s: %d", m.Name, code)
	}
	var out scraped
	for _, l := range strings.Split(body, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		sm := sampleLine.FindStringSubmatch(l)
		if sm == nil {
			t.Fatalf("%s: unparsable sample line %q", m.Name, l)
		}
		v, err := strconv.ParseFloat(sm[3], 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", m.Name, l, err)
		}
		labels := map[string]string{}
		for _, p := range labelPair.FindAllStringSubmatch(sm[2], -1) {
			labels[p[1]] = p[2]
		}
		out = append(out, struct {
			name   string
			labels map[string]string
			value  float64
		}{sm[1], labels, v})
	}
	return out
}

// sum adds the values of the samples of name whose labels include the
// given ones (pairs); ok is false when there is none.
func (s scraped) sum(name string, labels ...string) (v float64, ok bool) {
next:
	for _, x := range s {
		if x.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if x.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		v, ok = v+x.value, true
	}
	return v, ok
}

func (s scraped) has(name string) bool {
	_, ok := s.sum(name)
	return ok
}

func hexID(id uint64) string { return strconv.FormatUint(id, 16) }

// A three-member cluster's metrics count what it does, under etcd's names:
// each member's identity; puts, keys and applies on every member; client
// and peer traffic, peer round trips, backend commits; leases; and, once a
// member is down, the send failures the etcdMembersDown alert reads. gRPC
// histograms exist only with --metrics=extensive (not here), as in etcd.
func TestMetricsOfAThreeMemberCluster(t *testing.T) {
	c := NewCluster(t, 3)
	cli := c.Client(t)
	ids := map[*Member]uint64{}
	var leader *Member
	for _, m := range c.Members {
		st, err := cli.Status(ctx(t), m.ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		ids[m] = st.Header.MemberId
		if st.Leader == st.Header.MemberId {
			leader = m
		}
	}
	if leader == nil {
		t.Fatal("no leader")
	}

	for _, m := range c.Members {
		s := scrapeMetrics(t, m)
		if v, _ := s.sum("etcd_server_id", "server_id", hexID(ids[m])); v != 1 {
			t.Errorf("%s: etcd_server_id{server_id=%q} = %v, want 1", m.Name, hexID(ids[m]), v)
		}
		for name, want := range map[string]float64{"etcd_server_is_learner": 0, "etcd_server_quota_backend_bytes": 2 << 30} {
			if v, _ := s.sum(name); v != want {
				t.Errorf("%s: %s = %v, want %v", m.Name, name, v, want)
			}
		}
		if v, ok := s.sum("etcd_server_version", "server_version", "3.7.0"); v != 1 || !ok {
			t.Errorf("%s: etcd_server_version{server_version=\"3.7.0\"} missing", m.Name)
		}
		if s.has("grpc_server_handling_seconds_bucket") {
			t.Errorf("%s: gRPC histograms without --metrics=extensive", m.Name)
		}
		// Every member knows the three, itself included, as etcd's.
		for _, o := range c.Members {
			if v, _ := s.sum("etcd_network_known_peers", "Local", hexID(ids[m]), "Remote", hexID(ids[o])); v != 1 {
				t.Errorf("%s: etcd_network_known_peers{Remote=%s} = %v, want 1", m.Name, o.Name, v)
			}
		}
		if v, _ := s.sum("etcd_server_feature_enabled", "name", "CompactHashCheck", "stage", "ALPHA"); v != 1 {
			t.Errorf("%s: etcd_server_feature_enabled{name=CompactHashCheck} = %v, want 1 (Cairn's default)", m.Name, v)
		}
		if v, _ := s.sum("os_fd_used"); v < 3 {
			t.Errorf("%s: os_fd_used = %v", m.Name, v)
		}
		// Every gRPC method's series exist from the start.
		if _, ok := s.sum("grpc_server_handled_total", "grpc_method", "Watch", "grpc_code", "Unavailable"); !ok {
			t.Errorf("%s: grpc_server_handled_total has no Watch/Unavailable series", m.Name)
		}
	}

	const puts = 20
	m0 := c.MemberClient(t, c.Members[0])
	for i := 0; i < puts; i++ {
		if _, err := m0.Put(ctx(t), fmt.Sprintf("key%d", i), strings.Repeat("v", 100)); err != nil {
			t.Fatal(err)
		}
	}
	lease, err := m0.Grant(ctx(t), 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m0.KeepAliveOnce(ctx(t), lease.ID); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Members {
		eventually(t, 10*time.Second, m.Name+" counts the puts, keys, applies, commits and the lease", func() (bool, string) {
			s := scrapeMetrics(t, m)
			putTotal, _ := s.sum("etcd_mvcc_put_total")
			keys, _ := s.sum("etcd_debugging_mvcc_keys_total")
			applied, _ := s.sum("etcd_server_apply_duration_seconds_count", "op", "Put", "success", "true", "version", "v3")
			commits, _ := s.sum("etcd_disk_backend_commit_duration_seconds_count")
			granted, _ := s.sum("etcd_debugging_lease_granted_total")
			ttls, _ := s.sum("etcd_debugging_lease_ttl_total_count")
			ok := putTotal == puts && keys == puts && applied == puts && commits > 0 && granted == 1 && ttls == 1
			return ok, fmt.Sprintf("puts %v, keys %v, Put applies %v, commits %v, leases granted %v (TTLs %v)", putTotal, keys, applied, commits, granted, ttls)
		})
	}
	s := scrapeMetrics(t, leader)
	if v, _ := s.sum("etcd_debugging_lease_renewed_total"); v != 1 {
		t.Errorf("leader: etcd_debugging_lease_renewed_total = %v, want 1 (the keep-alive)", v)
	}
	s = scrapeMetrics(t, c.Members[0])
	if v, _ := s.sum("etcd_network_client_grpc_received_bytes_total"); v < puts*100 {
		t.Errorf("etcd_network_client_grpc_received_bytes_total = %v, want >= %d (the values put)", v, puts*100)
	}
	if v, _ := s.sum("etcd_network_client_grpc_sent_bytes_total"); v == 0 {
		t.Error("etcd_network_client_grpc_sent_bytes_total = 0 after answering requests")
	}
	// The leader replicates to every follower: bytes, an active stream and
	// round trips to each.
	eventually(t, 10*time.Second, "the leader's peer metrics", func() (bool, string) {
		s := scrapeMetrics(t, leader)
		var detail []string
		ok := true
		for _, m := range c.Members {
			if m == leader {
				continue
			}
			to := hexID(ids[m])
			sent, _ := s.sum("etcd_network_peer_sent_bytes_total", "To", to)
			recv, _ := s.sum("etcd_network_peer_received_bytes_total", "From", to)
			active, _ := s.sum("etcd_network_active_peers", "Remote", to)
			rtts, _ := s.sum("etcd_network_peer_round_trip_time_seconds_count", "To", to)
			failed, exists := s.sum("etcd_network_peer_sent_failures_total", "To", to)
			ok = ok && sent > puts*100 && recv > 0 && active == 1 && rtts > 0 && exists && failed == 0
			detail = append(detail, fmt.Sprintf("to %s: sent %v, received %v, active %v, round trips %v, failures %v", m.Name, sent, recv, active, rtts, failed))
		}
		return ok, strings.Join(detail, "; ")
	})

	// /debug/vars carries raft's status of the member.
	code, body := httpDo(t, leader, "GET", "/debug/vars", "")
	var vars struct {
		Raft struct {
			ID        string `json:"id"`
			RaftState string `json:"raftState"`
		} `json:"raft.status"`
		FDLimit uint64 `json:"file_descriptor_limit"`
	}
	if err := json.Unmarshal([]byte(body), &vars); code != 200 || err != nil {
		t.Fatalf("GET /debug/vars: %d %v\n%s", code, err, body)
	}
	if vars.Raft.ID != hexID(ids[leader]) || vars.Raft.RaftState != "StateLeader" || vars.FDLimit == 0 {
		t.Errorf("/debug/vars of the leader: raft.status %+v, file_descriptor_limit %d", vars.Raft, vars.FDLimit)
	}

	// A member down: the others fail to send to it, which is what
	// etcdMembersDown reads, and no longer hold a stream to it.
	var down *Member
	for _, m := range c.Members {
		if m != leader {
			down = m
			break
		}
	}
	down.Kill(t)
	eventually(t, 20*time.Second, "send failures to the member that is down", func() (bool, string) {
		s := scrapeMetrics(t, leader)
		failed, _ := s.sum("etcd_network_peer_sent_failures_total", "To", hexID(ids[down]))
		active, _ := s.sum("etcd_network_active_peers", "Remote", hexID(ids[down]))
		gone, _ := s.sum("etcd_network_disconnected_peers_total", "Remote", hexID(ids[down]))
		return failed > 0 && active == 0 && gone >= 1, fmt.Sprintf("failures %v, active %v, disconnections %v", failed, active, gone)
	})
}

// With --metrics=extensive every gRPC method has etcd's handling-time
// histogram, and calls are timed in it.
func TestMetricsExtensiveHasGRPCHistograms(t *testing.T) {
	c := NewClusterArgs(t, 1, "--metrics", "extensive")
	cli := c.Client(t)
	if _, err := cli.Put(ctx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx(t), "k", clientv3.WithSerializable()); err != nil {
		t.Fatal(err)
	}
	s := scrapeMetrics(t, c.Members[0])
	for _, tc := range []struct {
		method string
		min    float64
	}{{"Put", 1}, {"Range", 1}, {"Compact", 0}} {
		v, ok := s.sum("grpc_server_handling_seconds_count", "grpc_service", "etcdserverpb.KV", "grpc_method", tc.method, "grpc_type", "unary")
		if !ok || v < tc.min {
			t.Errorf("grpc_server_handling_seconds_count for %s = %v (exists %v), want >= %v", tc.method, v, ok, tc.min)
		}
	}
	if v, _ := s.sum("grpc_server_handling_seconds_bucket", "grpc_method", "Put", "le", "+Inf"); v < 1 {
		t.Errorf("grpc_server_handling_seconds_bucket{grpc_method=Put,le=+Inf} = %v", v)
	}
}
