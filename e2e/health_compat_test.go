package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The probes' answers below are etcd 3.7.3's, observed: run these tests
// with CAIRN_E2E_CAIRN=/path/to/etcd to check them against etcd again.
// etcd runs /livez and /readyz checks in Go map order, so the "[+]" and
// "[-]" lines are compared in sorted order (see sortChecks).

// probe is one HTTP answer of a probe endpoint.
type probe struct {
	code int
	body string
	hdr  http.Header
}

// getProbe sends method url on a fresh request and fails the test on a
// transport error.
func getProbe(t *testing.T, method, url string) probe {
	t.Helper()
	p, err := fetchProbe(ctx(t), method, url)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fetchProbe is getProbe for goroutines other than the test's.
func fetchProbe(ctx context.Context, method, url string) (probe, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return probe{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return probe{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return probe{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	return probe{resp.StatusCode, string(b), resp.Header}, nil
}

// sortChecks puts the leading check lines ("[+]name ok", "[-]name
// failed: ...") of a /livez or /readyz body in order of check name.
func sortChecks(body string) string {
	lines := strings.SplitAfter(body, "\n")
	n := 0
	for n < len(lines) && strings.HasPrefix(lines[n], "[") {
		n++
	}
	sort.SliceStable(lines[:n], func(i, j int) bool { return lines[i][3:] < lines[j][3:] })
	return strings.Join(lines, "")
}

// probeCase is a request and etcd's answer to it.
type probeCase struct {
	path string
	code int
	body string // with check lines sorted by name
}

// wantProbes GETs every case from base and compares code, body and etcd's
// headers: text/plain always, nosniff on every answer but /health's 200.
func wantProbes(t *testing.T, state, base string, cases []probeCase) {
	t.Helper()
	for _, tc := range cases {
		p := getProbe(t, http.MethodGet, base+tc.path)
		if p.code != tc.code || sortChecks(p.body) != tc.body {
			t.Errorf("%s: GET %s = %d %q, want %d %q", state, tc.path, p.code, p.body, tc.code, tc.body)
		}
		if ct := p.hdr.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("%s: GET %s: Content-Type %q, want text/plain; charset=utf-8", state, tc.path, ct)
		}
		wantNosniff := !(strings.HasPrefix(tc.path, "/health") && tc.code == http.StatusOK)
		if got := p.hdr.Get("X-Content-Type-Options") == "nosniff"; got != wantNosniff {
			t.Errorf("%s: GET %s: X-Content-Type-Options %q, want nosniff %v", state, tc.path, p.hdr.Get("X-Content-Type-Options"), wantNosniff)
		}
	}
}

const (
	healthTrue     = `{"health":"true","reason":""}`
	readyzAllOK    = "[+]data_corruption ok\n[+]linearizable_read ok\n[+]non_learner ok\n[+]serializable_read ok\n"
	notFound       = "404 page not found\n"
	healthNoSpace  = `{"health":"false","reason":"ALARM NOSPACE"}` + "\n"
	healthCorrupt  = `{"health":"false","reason":"ALARM CORRUPT"}` + "\n"
	healthNoLeader = `{"health":"false","reason":"RAFT NO LEADER"}` + "\n"
)

// healthyProbes are etcd's answers of a healthy voting member.
var healthyProbes = []probeCase{
	{"/health", 200, healthTrue},
	{"/health?serializable=true", 200, healthTrue},
	{"/health?serializable=false", 200, healthTrue},
	{"/health?exclude=NOSPACE", 200, healthTrue},
	{"/livez", 200, "ok\n"},
	{"/livez?verbose", 200, "[+]serializable_read ok\nok\n"},
	{"/livez?verbose=false", 200, "[+]serializable_read ok\nok\n"},
	{"/livez?verbose&exclude=serializable_read", 200, "ok\n"},
	{"/livez/serializable_read", 200, "ok\n"},
	{"/livez/serializable_read?verbose", 200, "[+]serializable_read ok\nok\n"},
	{"/readyz", 200, "ok\n"},
	{"/readyz?verbose", 200, readyzAllOK + "ok\n"},
	{"/readyz?verbose&exclude=no_such_check", 200, readyzAllOK + "ok\n"},
	{"/readyz?verbose&exclude=", 200, readyzAllOK + "ok\n"},
	{"/readyz?verbose&exclude=data_corruption", 200, "[+]linearizable_read ok\n[+]non_learner ok\n[+]serializable_read ok\nok\n"},
	{"/readyz?verbose&exclude=serializable_read", 200, "[+]data_corruption ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n"},
	{"/readyz?verbose&exclude=linearizable_read", 200, "[+]data_corruption ok\n[+]non_learner ok\n[+]serializable_read ok\nok\n"},
	{"/readyz?verbose&exclude=non_learner", 200, "[+]data_corruption ok\n[+]linearizable_read ok\n[+]serializable_read ok\nok\n"},
	{"/readyz?verbose&exclude=data_corruption&exclude=serializable_read&exclude=linearizable_read&exclude=non_learner", 200, "ok\n"},
	{"/readyz/data_corruption?verbose", 200, "[+]data_corruption ok\nok\n"},
	{"/readyz/serializable_read", 200, "ok\n"},
	{"/readyz/linearizable_read?verbose&exclude=linearizable_read", 200, "[+]linearizable_read ok\nok\n"},
	{"/readyz/non_learner?verbose", 200, "[+]non_learner ok\nok\n"},
	{"/livez/", 404, notFound},
	{"/readyz/", 404, notFound},
	{"/readyz/no_such_check", 404, notFound},
	{"/livez/linearizable_read", 404, notFound},
}

// TestHealthCompatProbes checks /health, /livez and /readyz of a healthy
// member, with a NOSPACE alarm and with a CORRUPT alarm, on the client
// URL and on --listen-metrics-urls, and what else the metrics URL serves.
func TestHealthCompatProbes(t *testing.T) {
	metricsURL := freeURLs(t, 1)[0]
	c := NewClusterArgs(t, 1, "--listen-metrics-urls", metricsURL)
	m := c.Members[0]
	bases := []string{m.ClientURL, metricsURL}
	for _, base := range bases {
		wantProbes(t, "healthy "+base, base, healthyProbes)
		for _, path := range []string{"/health", "/livez", "/readyz", "/readyz/non_learner"} {
			for _, method := range []string{http.MethodPost, http.MethodHead, http.MethodPut} {
				if p := getProbe(t, method, base+path); p.code != http.StatusMethodNotAllowed || p.hdr.Get("Allow") != "GET" {
					t.Errorf("%s %s%s = %d Allow=%q, want 405 Allow=GET", method, base, path, p.code, p.hdr.Get("Allow"))
				}
			}
		}
	}

	// The metrics URL serves /metrics and the probes, nothing else.
	if p := getProbe(t, http.MethodGet, metricsURL+"/metrics"); p.code != http.StatusOK || !strings.Contains(p.body, "\netcd_server_has_leader 1\n") {
		t.Errorf("GET %s/metrics = %d, want 200 with etcd_server_has_leader 1", metricsURL, p.code)
	}
	for _, path := range []string{"/version", "/v3/kv/range", "/v3beta/kv/range", "/", "/debug/pprof/", "/metrics/x"} {
		if p := getProbe(t, http.MethodGet, metricsURL+path); p.code != http.StatusNotFound || p.body != notFound {
			t.Errorf("GET %s%s on the metrics URL = %d %q, want 404 %q", metricsURL, path, p.code, p.body, notFound)
		}
	}

	cli := c.Client(t)
	st, err := cli.Status(ctx(t), m.ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	maint := pb.NewMaintenanceClient(cli.ActiveConnection())
	alarm := func(action pb.AlarmRequest_AlarmAction, typ pb.AlarmType) {
		t.Helper()
		if _, err := maint.Alarm(ctx(t), &pb.AlarmRequest{Action: action, MemberID: st.Header.MemberId, Alarm: typ}); err != nil {
			t.Fatalf("alarm %v %v: %v", action, typ, err)
		}
	}

	// NOSPACE makes /health false unless excluded; /livez and /readyz
	// ignore it.
	alarm(pb.AlarmRequest_ACTIVATE, pb.AlarmType_NOSPACE)
	for _, base := range bases {
		wantProbes(t, "NOSPACE "+base, base, []probeCase{
			{"/health", 503, healthNoSpace},
			{"/health?serializable=true", 503, healthNoSpace},
			{"/health?exclude=CORRUPT", 503, healthNoSpace},
			{"/health?exclude=nospace", 503, healthNoSpace},
			{"/health?exclude=", 503, healthNoSpace},
			{"/health?exclude=NOSPACE", 200, healthTrue},
			{"/health?exclude=NOSPACE&serializable=true", 200, healthTrue},
			{"/health?serializable=true&exclude=CORRUPT&exclude=NOSPACE", 200, healthTrue},
			{"/livez?verbose", 200, "[+]serializable_read ok\nok\n"},
			{"/readyz", 200, "ok\n"},
			{"/readyz?verbose", 200, readyzAllOK + "ok\n"},
		})
	}

	// CORRUPT as well: /readyz's data_corruption check fails; the other
	// checks' lines are still there, verbose or not.
	alarm(pb.AlarmRequest_ACTIVATE, pb.AlarmType_CORRUPT)
	readyzCorrupt := "[-]data_corruption failed: alarm activated: CORRUPT\n[+]linearizable_read ok\n[+]non_learner ok\n[+]serializable_read ok\n\n"
	for _, base := range bases {
		wantProbes(t, "NOSPACE+CORRUPT "+base, base, []probeCase{
			{"/health?exclude=NOSPACE", 503, healthCorrupt},
			{"/health?exclude=CORRUPT", 503, healthNoSpace},
			{"/health?exclude=CORRUPT&exclude=NOSPACE", 200, healthTrue},
			{"/livez", 200, "ok\n"},
			{"/readyz", 503, readyzCorrupt},
			{"/readyz?verbose", 503, readyzCorrupt},
			{"/readyz/data_corruption", 503, "[-]data_corruption failed: alarm activated: CORRUPT\n\n"},
			{"/readyz?exclude=data_corruption", 200, "ok\n"},
			{"/readyz/linearizable_read", 200, "ok\n"},
		})
		// Both raised: etcd names whichever it meets first, in no set order.
		if p := getProbe(t, http.MethodGet, base+"/health"); p.code != 503 || (p.body != healthNoSpace && p.body != healthCorrupt) {
			t.Errorf("GET %s/health with NOSPACE and CORRUPT = %d %q", base, p.code, p.body)
		}
	}

	alarm(pb.AlarmRequest_DEACTIVATE, pb.AlarmType_CORRUPT)
	alarm(pb.AlarmRequest_DEACTIVATE, pb.AlarmType_NOSPACE)
	for _, base := range bases {
		wantProbes(t, "disarmed "+base, base, []probeCase{
			{"/health", 200, healthTrue},
			{"/readyz?verbose", 200, readyzAllOK + "ok\n"},
		})
	}
}

// TestHealthCompatNoLeader checks the probes of a member that lost its
// leader (the other member of two is killed): /health fails unless
// serializable, /livez passes, /readyz fails on linearizable_read once
// the read has waited out the server's request timeout.
func TestHealthCompatNoLeader(t *testing.T) {
	c := NewCluster(t, 2)
	lead := c.waitLeader(t, c.Members, -1)
	c.Members[lead].Kill(t)
	m := c.Members[1-lead]

	// Wait on Status, which reads nothing: a /health asked before m
	// notices would start a linearizable read that waits for the dead
	// leader, and etcd makes later reads wait for that round to end.
	cli := c.MemberClient(t, m)
	eventually(t, readyTimeout, m.Name+" to lose its killed leader", func() (bool, string) {
		st, err := cli.Status(ctx(t), m.ClientURL)
		return err == nil && st.Leader == 0, fmt.Sprint(st, err)
	})
	for _, base := range []string{m.ClientURL} {
		wantProbes(t, "no leader "+base, base, []probeCase{
			{"/health", 503, healthNoLeader},
			{"/health?serializable=false", 503, healthNoLeader},
			{"/health?exclude=NOSPACE", 503, healthNoLeader},
			{"/health?serializable=true", 200, healthTrue},
			{"/health?serializable=true&exclude=NOSPACE", 200, healthTrue},
			{"/livez", 200, "ok\n"},
			{"/livez?verbose", 200, "[+]serializable_read ok\nok\n"},
			{"/readyz?exclude=linearizable_read&verbose", 200, "[+]data_corruption ok\n[+]non_learner ok\n[+]serializable_read ok\nok\n"},
			{"/readyz/serializable_read", 200, "ok\n"},
		})
	}

	// The linearizable read waits out the server's request timeout (5s and
	// two election timeouts). etcd batches waiting reads, and a read that
	// arrives during a round waits for the next one: one request only.
	readyzNoLeader := "[+]data_corruption ok\n[-]linearizable_read failed: etcdserver: request timed out\n[+]non_learner ok\n[+]serializable_read ok\n\n"
	wantProbes(t, "no leader", m.ClientURL, []probeCase{{"/readyz?verbose", 503, readyzNoLeader}})
}

// TestHealthCompatLearner checks the probes of a learner: /readyz fails
// its non_learner check, /health and /livez pass.
func TestHealthCompatLearner(t *testing.T) {
	c := NewCluster(t, 1)
	l := newJoiner(t, c, "m1")
	if _, err := c.Client(t).MemberAddAsLearner(ctx(t), []string{l.PeerURL}); err != nil {
		t.Fatal(err)
	}
	l.join(t, "m0="+c.Members[0].PeerURL+",m1="+l.PeerURL) // /health is true on a learner

	readyzLearner := "[+]data_corruption ok\n[+]linearizable_read ok\n[-]non_learner failed: not supported for learner\n[+]serializable_read ok\n\n"
	wantProbes(t, "learner", l.ClientURL, []probeCase{
		{"/health", 200, healthTrue},
		{"/health?serializable=true", 200, healthTrue},
		{"/livez?verbose", 200, "[+]serializable_read ok\nok\n"},
		{"/readyz", 503, readyzLearner},
		{"/readyz?verbose", 503, readyzLearner},
		{"/readyz/non_learner", 503, "[-]non_learner failed: not supported for learner\n\n"},
		{"/readyz/linearizable_read", 200, "ok\n"},
		{"/readyz?exclude=non_learner&verbose", 200, "[+]data_corruption ok\n[+]linearizable_read ok\n[+]serializable_read ok\nok\n"},
	})
}

// etcd's default --cors=* on the client listener: every HTTP response
// allows any origin and a preflight OPTIONS is answered 200 with no body;
// the metrics listener sends no CORS headers.
func TestHealthCompatCORSOnTheClientListener(t *testing.T) {
	metricsURL := freeURLs(t, 1)[0]
	c := NewClusterArgs(t, 1, "--listen-metrics-urls", metricsURL)
	m := c.Members[0]
	want := map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
		"Access-Control-Allow-Headers": "accept, content-type, authorization",
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/health"}, {http.MethodGet, "/version"}, {http.MethodGet, "/metrics"},
		{http.MethodPost, "/health"}, {http.MethodOptions, "/v3/kv/range"}, {http.MethodOptions, "/health"},
	} {
		p := getProbe(t, tc.method, m.ClientURL+tc.path)
		for k, v := range want {
			if got := p.hdr.Get(k); got != v {
				t.Errorf("%s %s: %s = %q, want %q", tc.method, tc.path, k, got, v)
			}
		}
		if tc.method == http.MethodOptions && (p.code != http.StatusOK || p.body != "") {
			t.Errorf("OPTIONS %s = %d %q, want 200 and no body", tc.path, p.code, p.body)
		}
	}
	if p := getProbe(t, http.MethodGet, metricsURL+"/health"); p.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("the metrics listener sent CORS headers: %v", p.hdr)
	}
}

// etcd's health-check metrics count /health and each /livez and /readyz
// check run; gRPC's standard health service answers SERVING.
func TestHealthCompatMetricsAndGRPCHealth(t *testing.T) {
	c := NewCluster(t, 1)
	m := c.Members[0]
	// The harness probed /health while the member started: count from here.
	sample := func(series string) float64 {
		body := getProbe(t, http.MethodGet, m.ClientURL+"/metrics").body
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, series+" "); ok {
				var f float64
				if _, err := fmt.Sscan(v, &f); err != nil {
					t.Fatalf("%s: %v", l, err)
				}
				return f
			}
		}
		return 0 // a labelled series appears with its first observation
	}
	want := map[string]float64{
		"etcd_server_health_success":  1,
		"etcd_server_health_failures": 0,
		`etcd_server_healthchecks_total{name="data_corruption",status="success",type="readyz"}`:   1,
		`etcd_server_healthchecks_total{name="linearizable_read",status="success",type="readyz"}`: 1,
		`etcd_server_healthchecks_total{name="non_learner",status="success",type="readyz"}`:       1,
		`etcd_server_healthchecks_total{name="serializable_read",status="success",type="readyz"}`: 1,
		`etcd_server_healthchecks_total{name="serializable_read",status="success",type="livez"}`:  0,
	}
	before := map[string]float64{}
	for series := range want {
		before[series] = sample(series)
	}
	for _, path := range []string{"/health", "/readyz", "/livez?exclude=serializable_read"} {
		if p := getProbe(t, http.MethodGet, m.ClientURL+path); p.code != http.StatusOK {
			t.Fatalf("GET %s = %d %q", path, p.code, p.body)
		}
	}
	for series, d := range want {
		if got := sample(series) - before[series]; got != d {
			t.Errorf("%s went up by %v, want %v", series, got, d)
		}
	}
	if got := sample(`etcd_server_healthcheck{name="linearizable_read",type="readyz"}`); got != 1 {
		t.Errorf(`etcd_server_healthcheck{name="linearizable_read",type="readyz"} = %v, want 1`, got)
	}
	conn, err := grpc.NewClient(strings.TrimPrefix(m.ClientURL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, err := healthpb.NewHealthClient(conn).Check(ctx(t), &healthpb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("grpc health check: %v %v, want SERVING", r, err)
	}
}
