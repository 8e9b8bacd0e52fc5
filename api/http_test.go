package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func httpDo(t *testing.T, method, url, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// postJSON posts to the gateway and decodes the JSON answer generically,
// so the test sees field names and value types exactly as sent.
func postJSON(t *testing.T, ts *testServer, path, body string) (int, map[string]any) {
	t.Helper()
	code, raw, _ := httpDo(t, http.MethodPost, "http://"+ts.addr+path, body)
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("POST %s: %d %q is not JSON: %v", path, code, raw, err)
	}
	return code, m
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// hdr is a response header as etcd's gateway emits it: proto names,
// 64-bit integers as decimal strings.
func hdr(rev string) map[string]any {
	return map[string]any{"cluster_id": "4096", "member_id": "8192", "revision": rev, "raft_term": "7"}
}

func wantJSON(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func TestGatewayJSONMatchesEtcd(t *testing.T) {
	ts := startServer(t, newMemBackend(t), nil)

	code, m := postJSON(t, ts, "/v3/kv/put", `{"key":"`+b64("foo")+`","value":"`+b64("bar")+`"}`)
	if code != http.StatusOK {
		t.Fatalf("put: %d %v", code, m)
	}
	wantJSON(t, "put", m, map[string]any{"header": hdr("2")})

	_, m = postJSON(t, ts, "/v3/kv/range", `{"key":"`+b64("foo")+`"}`)
	wantJSON(t, "range", m, map[string]any{
		"header": hdr("2"),
		"kvs": []any{map[string]any{
			"key": b64("foo"), "value": b64("bar"),
			"create_revision": "2", "mod_revision": "2", "version": "1",
		}},
		"count": "1",
	})

	_, m = postJSON(t, ts, "/v3/kv/txn", `{
		"compare":[{"target":"VALUE","result":"EQUAL","key":"`+b64("foo")+`","value":"`+b64("bar")+`"}],
		"success":[{"request_put":{"key":"`+b64("t")+`","value":"`+b64("1")+`"}}]}`)
	wantJSON(t, "txn", m, map[string]any{
		"header":    hdr("3"),
		"succeeded": true,
		// A response nested in a txn has a header with only the revision.
		"responses": []any{map[string]any{"response_put": map[string]any{"header": map[string]any{"revision": "3"}}}},
	})

	// Unknown fields are ignored, as etcd's gateway does.
	_, m = postJSON(t, ts, "/v3/kv/deleterange", `{"key":"`+b64("foo")+`","no_such_field":1}`)
	wantJSON(t, "deleterange", m, map[string]any{"header": hdr("4"), "deleted": "1"})

	// The old /v3beta and /v3alpha prefixes still work.
	for _, prefix := range []string{"/v3beta", "/v3alpha"} {
		_, m = postJSON(t, ts, prefix+"/kv/range", `{"key":"`+b64("t")+`","count_only":true}`)
		wantJSON(t, prefix+" count", m, map[string]any{"header": hdr("4"), "count": "1"})
	}

	_, m = postJSON(t, ts, "/v3/maintenance/status", `{}`)
	wantJSON(t, "status", m, map[string]any{
		"header": hdr("4"), "version": "3.7.0", "leader": "8192", "raftIndex": "10", "raftTerm": "7",
		"storageVersion": "3.7.0", "downgradeInfo": map[string]any{},
	})

	// etcd's Cluster responses carry no revision.
	_, m = postJSON(t, ts, "/v3/cluster/member/list", `{}`)
	wantJSON(t, "member list", m, map[string]any{
		"header": map[string]any{"cluster_id": "4096", "member_id": "8192", "raft_term": "7"},
		"members": []any{map[string]any{
			"ID": "8192", "name": "m1",
			"peerURLs": []any{"http://127.0.0.1:2380"}, "clientURLs": []any{"http://127.0.0.1:2379"},
		}},
	})

	// Errors: the gRPC status as grpc-gateway v2 renders it, 400 for InvalidArgument.
	code, m = postJSON(t, ts, "/v3/kv/put", `{"value":"`+b64("v")+`"}`)
	if code != http.StatusBadRequest {
		t.Fatalf("empty key put: HTTP %d", code)
	}
	wantJSON(t, "empty key", m, map[string]any{"code": float64(3), "message": "etcdserver: key is not provided"})

	code, m = postJSON(t, ts, "/v3/lease/grant", `{"TTL":"5"}`)
	if code != http.StatusNotImplemented || m["code"] != float64(12) {
		t.Fatalf("lease grant via gateway: %d %v, want 501 code 12", code, m)
	}
}

// TestHealthEndpointsAnswerAsEtcd checks /health, /livez and /readyz
// against the answers etcd 3.7.3 gives in the same states (observed; the
// real processes are compared in e2e/health_compat_test.go).
func TestHealthEndpointsAnswerAsEtcd(t *testing.T) {
	be := newMemBackend(t)
	ts := startServer(t, be, nil)
	base := "http://" + ts.addr
	nospace := &pb.AlarmMember{MemberID: testMemberID, Alarm: pb.AlarmType_NOSPACE}
	corrupt := &pb.AlarmMember{MemberID: testMemberID, Alarm: pb.AlarmType_CORRUPT}
	const (
		healthy   = `{"health":"true","reason":""}`
		readyzAll = "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\n"
	)
	for _, tc := range []struct {
		name  string
		state memHealth
		path  string
		code  int
		body  string
	}{
		{"healthy", memHealth{}, "/health", 200, healthy},
		{"healthy", memHealth{}, "/health?serializable=true", 200, healthy},
		{"healthy", memHealth{}, "/livez", 200, "ok\n"},
		{"healthy", memHealth{}, "/livez?verbose", 200, "[+]serializable_read ok\nok\n"},
		{"healthy", memHealth{}, "/livez/serializable_read?verbose", 200, "[+]serializable_read ok\nok\n"},
		{"healthy", memHealth{}, "/readyz", 200, "ok\n"},
		{"healthy", memHealth{}, "/readyz?verbose", 200, readyzAll + "ok\n"},
		{"healthy", memHealth{}, "/readyz?verbose=false", 200, readyzAll + "ok\n"},
		{"healthy", memHealth{}, "/readyz?verbose&exclude=nope", 200, readyzAll + "ok\n"},
		{"healthy", memHealth{}, "/readyz?verbose&exclude=", 200, readyzAll + "ok\n"},
		{"healthy", memHealth{}, "/readyz?verbose&exclude=linearizable_read&exclude=non_learner", 200, "[+]data_corruption ok\n[+]serializable_read ok\nok\n"},
		{"healthy", memHealth{}, "/livez?verbose&exclude=serializable_read", 200, "ok\n"},
		{"healthy", memHealth{}, "/readyz/linearizable_read?exclude=linearizable_read&verbose", 200, "[+]linearizable_read ok\nok\n"},
		{"healthy", memHealth{}, "/livez/", 404, "404 page not found\n"},
		{"healthy", memHealth{}, "/readyz/nope", 404, "404 page not found\n"},

		{"nospace", memHealth{alarms: []*pb.AlarmMember{nospace}}, "/health", 503, `{"health":"false","reason":"ALARM NOSPACE"}` + "\n"},
		{"nospace", memHealth{alarms: []*pb.AlarmMember{nospace}}, "/health?serializable=true", 503, `{"health":"false","reason":"ALARM NOSPACE"}` + "\n"},
		{"nospace", memHealth{alarms: []*pb.AlarmMember{nospace}}, "/health?exclude=CORRUPT", 503, `{"health":"false","reason":"ALARM NOSPACE"}` + "\n"},
		{"nospace", memHealth{alarms: []*pb.AlarmMember{nospace}}, "/health?exclude=nospace", 503, `{"health":"false","reason":"ALARM NOSPACE"}` + "\n"},
		{"nospace", memHealth{alarms: []*pb.AlarmMember{nospace}}, "/health?exclude=NOSPACE", 200, healthy},
		{"nospace", memHealth{alarms: []*pb.AlarmMember{nospace}}, "/health?exclude=NOSPACE&serializable=true", 200, healthy},
		{"nospace", memHealth{alarms: []*pb.AlarmMember{nospace}}, "/readyz?verbose", 200, readyzAll + "ok\n"},
		{"nospace", memHealth{alarms: []*pb.AlarmMember{nospace}}, "/livez", 200, "ok\n"},

		{"corrupt", memHealth{alarms: []*pb.AlarmMember{corrupt}}, "/health", 503, `{"health":"false","reason":"ALARM CORRUPT"}` + "\n"},
		{"corrupt", memHealth{alarms: []*pb.AlarmMember{nospace, corrupt}}, "/health?exclude=NOSPACE&exclude=CORRUPT", 200, healthy},
		{"corrupt", memHealth{alarms: []*pb.AlarmMember{corrupt}}, "/readyz", 503, "[-]data_corruption failed: alarm activated: CORRUPT\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\n\n"},
		{"corrupt", memHealth{alarms: []*pb.AlarmMember{corrupt}}, "/readyz?exclude=data_corruption", 200, "ok\n"},

		{"no leader", memHealth{noLeader: true, readErr: [2]error{rpctypes.ErrGRPCTimeout, nil}}, "/health", 503, `{"health":"false","reason":"RAFT NO LEADER"}` + "\n"},
		{"no leader", memHealth{noLeader: true, readErr: [2]error{rpctypes.ErrGRPCTimeout, nil}}, "/health?exclude=NOSPACE", 503, `{"health":"false","reason":"RAFT NO LEADER"}` + "\n"},
		{"no leader", memHealth{noLeader: true, readErr: [2]error{rpctypes.ErrGRPCTimeout, nil}}, "/health?serializable=true", 200, healthy},
		{"no leader", memHealth{noLeader: true, readErr: [2]error{rpctypes.ErrGRPCTimeout, nil}}, "/livez?verbose", 200, "[+]serializable_read ok\nok\n"},
		{"no leader", memHealth{noLeader: true, readErr: [2]error{rpctypes.ErrGRPCTimeout, nil}}, "/readyz", 503, "[+]data_corruption ok\n[+]serializable_read ok\n[-]linearizable_read failed: etcdserver: request timed out\n[+]non_learner ok\n\n"},
		{"no leader", memHealth{noLeader: true, readErr: [2]error{rpctypes.ErrGRPCTimeout, nil}}, "/readyz/linearizable_read", 503, "[-]linearizable_read failed: etcdserver: request timed out\n\n"},
		{"no leader", memHealth{noLeader: true, readErr: [2]error{rpctypes.ErrGRPCTimeout, nil}}, "/readyz?exclude=linearizable_read", 200, "ok\n"},

		{"read fails", memHealth{readErr: [2]error{rpctypes.ErrGRPCTimeout, nil}}, "/health", 503, `{"health":"false","reason":"RANGE ERROR:etcdserver: request timed out"}` + "\n"},
		{"read fails", memHealth{readErr: [2]error{rpctypes.ErrGRPCTimeout, nil}}, "/health?serializable=true", 200, healthy},

		{"learner", memHealth{learner: true}, "/readyz", 503, "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[-]non_learner failed: not supported for learner\n\n"},
		{"learner", memHealth{learner: true}, "/livez", 200, "ok\n"},
		{"learner", memHealth{learner: true}, "/health", 200, healthy},
	} {
		be.setHealth(tc.state)
		code, body, h := httpDo(t, http.MethodGet, base+tc.path, "")
		if code != tc.code || body != tc.body {
			t.Errorf("%s: GET %s = %d %q, want %d %q", tc.name, tc.path, code, body, tc.code, tc.body)
		}
		if ct := h.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("%s: GET %s: Content-Type %q, want text/plain; charset=utf-8", tc.name, tc.path, ct)
		}
	}
	for _, p := range []string{"/health", "/livez", "/readyz", "/readyz/non_learner"} {
		for _, m := range []string{http.MethodPost, http.MethodHead} {
			if code, _, h := httpDo(t, m, base+p, ""); code != http.StatusMethodNotAllowed || h.Get("Allow") != "GET" {
				t.Errorf("%s %s: %d Allow=%q, want 405 Allow=GET", m, p, code, h.Get("Allow"))
			}
		}
	}
}

func TestVersionEndpoint(t *testing.T) {
	ts := startServer(t, newMemBackend(t), func(c *Config) { c.ServerVersion, c.ClusterVersion = "3.8.2", "3.6.0" })
	code, body, _ := httpDo(t, http.MethodGet, "http://"+ts.addr+"/version", "")
	if code != http.StatusOK || body != `{"etcdserver":"3.8.2","etcdcluster":"3.6.0","storage":"3.8.0","cairn":"0.1.0-test"}` {
		t.Fatalf("/version: %d %q", code, body)
	}
	// etcd 3.7.3 answers HEAD /version 405, as any method but GET.
	if code, _, h := httpDo(t, http.MethodHead, "http://"+ts.addr+"/version", ""); code != http.StatusMethodNotAllowed || h.Get("Allow") != "GET" {
		t.Fatalf("HEAD /version: %d Allow=%q, want 405 Allow=GET", code, h.Get("Allow"))
	}
}

func TestVersionEndpointGitVersion(t *testing.T) {
	ts := startServer(t, newMemBackend(t), func(c *Config) { c.GitVersion = "v0.1.0-3-gabcdef0-dirty" })
	code, body, _ := httpDo(t, http.MethodGet, "http://"+ts.addr+"/version", "")
	if code != http.StatusOK || body != `{"etcdserver":"3.7.0","etcdcluster":"3.7.0","storage":"3.7.0","cairn":"0.1.0-test","git":"v0.1.0-3-gabcdef0-dirty"}` {
		t.Fatalf("/version: %d %q", code, body)
	}
}

func TestMetricsCountHandledRPCs(t *testing.T) {
	ts := startServer(t, newMemBackend(t), func(c *Config) { c.MetricsExtensive = true })
	c := newClient(t, ts.addr, nil)
	ctx := ctxT(t)
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	c.Put(ctx, "", "v") // InvalidArgument
	c.Put(ctx, "panic", "v")
	rc, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()

	code, body, _ := httpDo(t, http.MethodGet, "http://"+ts.addr+"/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range []string{
		`grpc_server_started_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 3`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1`,
		`grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1`,
		`grpc_server_handled_total{grpc_code="Internal",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Snapshot",grpc_service="etcdserverpb.Maintenance",grpc_type="server_stream"} 1`,
		`grpc_server_msg_sent_total{grpc_method="Snapshot",grpc_service="etcdserverpb.Maintenance",grpc_type="server_stream"} 1`,
		`grpc_server_handling_seconds_count{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 3`,
		`etcd_disk_backend_snapshot_duration_seconds_count 1`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

// With --metrics=basic (the default) there are no gRPC histograms, as in
// etcd; every method's counters exist from the start, at zero, for every
// code; the codec counts the bytes of requests and responses; a
// defragmentation is timed.
func TestMetricsBasicInitializedAndBytes(t *testing.T) {
	ts := startServer(t, newMemBackend(t), nil)
	get := func() string {
		code, body, _ := httpDo(t, http.MethodGet, "http://"+ts.addr+"/metrics", "")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		return body
	}
	body := get()
	if strings.Contains(body, "grpc_server_handling_seconds") {
		t.Error("grpc_server_handling_seconds without --metrics=extensive")
	}
	for _, line := range []string{
		`grpc_server_started_total{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 0`,
		`grpc_server_started_total{grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"} 0`,
		`grpc_server_handled_total{grpc_code="Unavailable",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 0`,
		`grpc_server_handled_total{grpc_code="Unauthenticated",grpc_method="LeaseKeepAlive",grpc_service="etcdserverpb.Lease",grpc_type="bidi_stream"} 0`,
		`grpc_server_msg_sent_total{grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"} 0`,
		`etcd_network_client_grpc_sent_bytes_total 0`,
		`etcd_network_client_grpc_received_bytes_total 0`,
		`etcd_disk_defrag_inflight 0`,
		`etcd_disk_backend_defrag_duration_seconds_count 0`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	c := newClient(t, ts.addr, nil)
	ctx := ctxT(t)
	if _, err := c.Put(ctx, "key", strings.Repeat("v", 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "key"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Defragment(ctx, ts.addr); err != nil {
		t.Fatal(err)
	}
	body = get()
	value := func(name string) float64 {
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("%s: %v", l, err)
				}
				return f
			}
		}
		t.Fatalf("/metrics has no %s", name)
		return 0
	}
	// The put carried the value in, the get carried it out.
	if v := value("etcd_network_client_grpc_received_bytes_total"); v < 1000 {
		t.Errorf("received bytes %v, want >= 1000", v)
	}
	if v := value("etcd_network_client_grpc_sent_bytes_total"); v < 1000 {
		t.Errorf("sent bytes %v, want >= 1000", v)
	}
	if v := value("etcd_disk_backend_defrag_duration_seconds_count"); v != 1 {
		t.Errorf("defragmentations timed: %v, want 1", v)
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	off := startServer(t, newMemBackend(t), nil)
	if code, _, _ := httpDo(t, http.MethodGet, "http://"+off.addr+"/debug/pprof/", ""); code != http.StatusNotFound {
		t.Fatalf("pprof disabled: HTTP %d, want 404", code)
	}
	on := startServer(t, newMemBackend(t), func(c *Config) { c.EnablePprof = true })
	code, body, _ := httpDo(t, http.MethodGet, "http://"+on.addr+"/debug/pprof/", "")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof enabled: HTTP %d", code)
	}
}

// debugVarsBackend adds a variable to /debug/vars.
type debugVarsBackend struct{ Backend }

func (debugVarsBackend) DebugVars(context.Context) map[string]json.Marshaler {
	return map[string]json.Marshaler{"raft.status": json.RawMessage(`{"id":"1"}`)}
}

// /debug/vars is etcd's: expvar's variables, the file descriptor limit
// and the backend's (raft.status), as one JSON object; GET only.
func TestDebugVars(t *testing.T) {
	ts := startServer(t, debugVarsBackend{newMemBackend(t)}, nil)
	code, body, _ := httpDo(t, http.MethodGet, "http://"+ts.addr+"/debug/vars", "")
	if code != http.StatusOK {
		t.Fatalf("GET /debug/vars: %d %s", code, body)
	}
	var vars map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &vars); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	for _, k := range []string{"cmdline", "memstats", "file_descriptor_limit", "raft.status"} {
		if _, ok := vars[k]; !ok {
			t.Errorf("/debug/vars has no %q: %v", k, body)
		}
	}
	if got := string(vars["raft.status"]); got != `{"id":"1"}` {
		t.Errorf("raft.status = %s", got)
	}
	if code, _, _ := httpDo(t, http.MethodPost, "http://"+ts.addr+"/debug/vars", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /debug/vars: %d, want 405", code)
	}
}
