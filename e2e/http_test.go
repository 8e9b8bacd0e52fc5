package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// httpDo sends method path with body (nil for none) to m and returns the
// status code and body.
func httpDo(t *testing.T, m *Member, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx(t), method, m.ClientURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// jsonEqual compares two JSON documents by value (protojson output varies
// its whitespace on purpose, so bytes cannot be compared).
// withoutGitVersion is the /version body less its "git" field, which
// must not be empty when present.
func withoutGitVersion(t *testing.T, body string) string {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return body
	}
	if g, ok := v["git"]; ok {
		if s, _ := g.(string); s == "" {
			t.Errorf("/version git = %v, want a version or no field", g)
		}
		delete(v, "git")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonEqual(t *testing.T, what, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Errorf("%s: response is not JSON: %v: %s", what, err, got)
		return
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expected JSON: %v: %s", what, err, want)
	}
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

func TestHTTPGateway(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	m := c.Members[0]
	cli := c.Client(t)
	st, err := cli.Status(ctx(t), m.ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	// The gateway writes 64-bit integers as strings, bytes as base64 and
	// field names as in the proto.
	hdr := func(rev int) string {
		return fmt.Sprintf(`{"cluster_id":"%d","member_id":"%d","revision":"%d","raft_term":"%d"}`,
			st.Header.ClusterId, st.Header.MemberId, rev, st.Header.RaftTerm)
	}
	post := func(path, body, want string) {
		t.Helper()
		code, got := httpDo(t, m, http.MethodPost, path, body)
		if code != http.StatusOK {
			t.Errorf("POST %s %s: status %d: %s", path, body, code, got)
			return
		}
		jsonEqual(t, "POST "+path+" "+body, got, want)
	}

	// foo=bar, foo2=baz.
	post("/v3/kv/put", `{"key":"Zm9v","value":"YmFy"}`, `{"header":`+hdr(2)+`}`)
	post("/v3/kv/put", `{"key":"Zm9vMg==","value":"YmF6","prev_kv":true}`, `{"header":`+hdr(3)+`}`)
	post("/v3/kv/put", `{"key":"Zm9v","value":"YmFyMg==","prev_kv":true}`,
		`{"header":`+hdr(4)+`,"prev_kv":{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}}`)
	post("/v3/kv/range", `{"key":"Zm9v"}`,
		`{"header":`+hdr(4)+`,"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"4","version":"2","value":"YmFyMg=="}],"count":"1"}`)
	// range_end "foo\x00"+1 = prefix "foo": "Zm9w" is "fop".
	post("/v3/kv/range", `{"key":"Zm9v","range_end":"Zm9w","keys_only":true}`,
		`{"header":`+hdr(4)+`,"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"4","version":"2"},{"key":"Zm9vMg==","create_revision":"3","mod_revision":"3","version":"1"}],"count":"2"}`)
	post("/v3/kv/range", `{"key":"Zm9v","range_end":"Zm9w","limit":1}`,
		`{"header":`+hdr(4)+`,"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"4","version":"2","value":"YmFyMg=="}],"more":true,"count":"2"}`)
	post("/v3/kv/range", `{"key":"bm9uZQ=="}`, `{"header":`+hdr(4)+`}`)
	post("/v3/kv/txn",
		`{"compare":[{"target":"VALUE","key":"Zm9v","result":"EQUAL","value":"YmFyMg=="}],"success":[{"request_range":{"key":"Zm9vMg=="}}],"failure":[]}`,
		`{"header":`+hdr(4)+`,"succeeded":true,"responses":[{"response_range":{"header":{"revision":"4"},"kvs":[{"key":"Zm9vMg==","create_revision":"3","mod_revision":"3","version":"1","value":"YmF6"}],"count":"1"}}]}`)
	post("/v3/kv/deleterange", `{"key":"Zm9v","range_end":"Zm9w","prev_kv":true}`,
		`{"header":`+hdr(5)+`,"deleted":"2","prev_kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"4","version":"2","value":"YmFyMg=="},{"key":"Zm9vMg==","create_revision":"3","mod_revision":"3","version":"1","value":"YmF6"}]}`)
	post("/v3/kv/deleterange", `{"key":"Zm9v"}`, `{"header":`+hdr(5)+`}`)

	// Errors come back as the gateway's JSON status with etcd's message.
	code, body := httpDo(t, m, http.MethodPost, "/v3/kv/put", `{"key":"","value":"YmFy"}`)
	if code != http.StatusBadRequest {
		t.Errorf("put empty key: status %d, want 400: %s", code, body)
	}
	var gwErr struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &gwErr); err != nil || gwErr.Code != 3 || gwErr.Message != "etcdserver: key is not provided" {
		t.Errorf("put empty key: body %s, want code 3 and etcd's message", body)
	}
	// The old /v3beta/ prefix still works.
	post("/v3beta/kv/range", `{"key":"Zm9v"}`, `{"header":`+hdr(5)+`}`)

	// Maintenance status and member list.
	code, body = httpDo(t, m, http.MethodPost, "/v3/maintenance/status", `{}`)
	var status struct {
		Header struct {
			MemberID string `json:"member_id"`
			Revision string
		}
		Version string `json:"version"`
		Leader  string `json:"leader"`
	}
	if err := json.Unmarshal([]byte(body), &status); code != http.StatusOK || err != nil {
		t.Fatalf("status: %d %v %s", code, err, body)
	}
	if status.Version != "3.7.0" || status.Leader != fmt.Sprint(st.Header.MemberId) || status.Header.MemberID != status.Leader || status.Header.Revision != "5" {
		t.Errorf("status %s", body)
	}
	// etcd's Cluster service headers carry no revision.
	post("/v3/cluster/member/list", `{}`, fmt.Sprintf(
		`{"header":{"cluster_id":"%d","member_id":"%d","raft_term":"%d"},"members":[{"ID":"%d","name":"%s","peerURLs":["%s"],"clientURLs":["%s"]}]}`,
		st.Header.ClusterId, st.Header.MemberId, st.Header.RaftTerm, st.Header.MemberId, m.Name, m.PeerURL, m.ClientURL))

	// /health, /livez, /readyz, /version.
	for _, tc := range []struct{ path, want string }{
		{"/health", `{"health":"true","reason":""}`},
		{"/version", `{"etcdserver":"3.7.0","etcdcluster":"3.7.0","storage":"3.7.0","cairn":"0.1.0-dev"}`},
	} {
		code, body := httpDo(t, m, http.MethodGet, tc.path, "")
		if code != http.StatusOK {
			t.Errorf("GET %s: %d %s", tc.path, code, body)
		}
		if tc.path == "/version" {
			// "git" is the build's git version, known when the binary was
			// stamped or built with VCS information (test/deploy checks
			// its value); it follows etcd's fields and Cairn's.
			body = withoutGitVersion(t, body)
		}
		jsonEqual(t, "GET "+tc.path, body, tc.want)
	}
	for _, p := range []string{"/livez", "/readyz"} {
		if code, body := httpDo(t, m, http.MethodGet, p, ""); code != http.StatusOK || body != "ok\n" {
			t.Errorf("GET %s: %d %q, want 200 \"ok\\n\" (etcd's)", p, code, body)
		}
	}

	code, body = httpDo(t, m, http.MethodGet, "/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, line := range []string{"etcd_server_has_leader 1", "etcd_server_is_leader 1"} {
		if !containsLine(body, line) {
			t.Errorf("/metrics has no line %q", line)
		}
	}
	for _, name := range []string{"etcd_server_proposals_committed_total", "etcd_mvcc_db_total_size_in_bytes", "etcd_disk_wal_fsync_duration_seconds_bucket", "grpc_server_handled_total"} {
		if !bytes.Contains([]byte(body), []byte("\n"+name)) {
			t.Errorf("/metrics has no metric %s", name)
		}
	}
}

func containsLine(body, line string) bool {
	for _, l := range strings.Split(body, "\n") {
		if l == line {
			return true
		}
	}
	return false
}
