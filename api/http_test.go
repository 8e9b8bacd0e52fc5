package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
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
	ts := startServer(t, newMemBackend(), nil)

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
		"responses": []any{map[string]any{"response_put": map[string]any{}}},
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

	_, m = postJSON(t, ts, "/v3/cluster/member/list", `{}`)
	wantJSON(t, "member list", m, map[string]any{
		"header": hdr("4"),
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

func TestHealthEndpoints(t *testing.T) {
	be := newMemBackend()
	ts := startServer(t, be, nil)
	base := "http://" + ts.addr

	code, body, h := httpDo(t, http.MethodGet, base+"/health", "")
	if code != http.StatusOK || body != `{"health":"true","reason":""}` || h.Get("Content-Type") != "application/json" {
		t.Fatalf("healthy /health: %d %q %q", code, body, h.Get("Content-Type"))
	}
	if code, body, _ := httpDo(t, http.MethodGet, base+"/readyz", ""); code != http.StatusOK || body != "ok" {
		t.Fatalf("healthy /readyz: %d %q", code, body)
	}

	be.setHealth(errors.New("etcdserver: no leader"))
	code, body, _ = httpDo(t, http.MethodGet, base+"/health", "")
	if code != http.StatusServiceUnavailable || body != `{"health":"false","reason":"etcdserver: no leader"}` {
		t.Fatalf("unhealthy /health: %d %q", code, body)
	}
	if code, body, _ := httpDo(t, http.MethodGet, base+"/readyz", ""); code != http.StatusServiceUnavailable || body != "[-]health failed: etcdserver: no leader\nreadyz check failed" {
		t.Fatalf("unhealthy /readyz: %d %q", code, body)
	}
	// Liveness does not depend on the cluster.
	if code, body, _ := httpDo(t, http.MethodGet, base+"/livez", ""); code != http.StatusOK || body != "ok" {
		t.Fatalf("/livez while unhealthy: %d %q", code, body)
	}
	if code, _, h := httpDo(t, http.MethodPost, base+"/health", ""); code != http.StatusMethodNotAllowed || h.Get("Allow") != "GET" {
		t.Fatalf("POST /health: %d allow=%q", code, h.Get("Allow"))
	}
}

func TestVersionEndpoint(t *testing.T) {
	ts := startServer(t, newMemBackend(), func(c *Config) { c.ServerVersion, c.ClusterVersion = "3.8.2", "3.6.0" })
	code, body, _ := httpDo(t, http.MethodGet, "http://"+ts.addr+"/version", "")
	if code != http.StatusOK || body != `{"etcdserver":"3.8.2","etcdcluster":"3.6.0","storage":"3.8.0","cairn":"0.1.0-test"}` {
		t.Fatalf("/version: %d %q", code, body)
	}
}

func TestMetricsCountHandledRPCs(t *testing.T) {
	ts := startServer(t, newMemBackend(), nil)
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
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	off := startServer(t, newMemBackend(), nil)
	if code, _, _ := httpDo(t, http.MethodGet, "http://"+off.addr+"/debug/pprof/", ""); code != http.StatusNotFound {
		t.Fatalf("pprof disabled: HTTP %d, want 404", code)
	}
	on := startServer(t, newMemBackend(), func(c *Config) { c.EnablePprof = true })
	code, body, _ := httpDo(t, http.MethodGet, "http://"+on.addr+"/debug/pprof/", "")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof enabled: HTTP %d", code)
	}
}
