package console

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// fakeMember is one member's gRPC side: Status, MemberList, Alarm,
// Defragment, Snapshot and Authenticate, refusing what etcd refuses
// without a token when auth is on.
type fakeMember struct {
	pb.UnimplementedMaintenanceServer
	pb.UnimplementedClusterServer
	pb.UnimplementedAuthServer
	id, leader, term uint64
	members          []*pb.Member
	authOn           bool
	snapshot         []byte

	mu      sync.Mutex
	defrags int
	tokens  []string
}

const goodToken = "tok.1"

func (f *fakeMember) authorized(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	tok := ""
	if v := md.Get("token"); len(v) > 0 {
		tok = v[0]
	}
	f.mu.Lock()
	f.tokens = append(f.tokens, tok)
	f.mu.Unlock()
	if !f.authOn {
		return nil
	}
	switch tok {
	case "":
		return rpctypes.ErrGRPCUserEmpty
	case goodToken:
		return nil
	}
	return rpctypes.ErrGRPCInvalidAuthToken
}

func (f *fakeMember) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	if err := f.authorized(ctx); err != nil {
		return nil, err
	}
	return &pb.StatusResponse{Header: &pb.ResponseHeader{MemberId: f.id, Revision: 42}, Version: "3.7.0", DbSize: 4096, DbSizeInUse: 2048,
		Leader: f.leader, RaftIndex: 10, RaftTerm: f.term, RaftAppliedIndex: 9, DbSizeQuota: 1 << 31}, nil
}

func (f *fakeMember) MemberList(ctx context.Context, _ *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if err := f.authorized(ctx); err != nil {
		return nil, err
	}
	return &pb.MemberListResponse{Header: &pb.ResponseHeader{ClusterId: 0xc1, MemberId: f.id}, Members: f.members}, nil
}

func (f *fakeMember) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if err := f.authorized(ctx); err != nil {
		return nil, err
	}
	return &pb.AlarmResponse{Alarms: []*pb.AlarmMember{{MemberID: f.id, Alarm: pb.AlarmType_NOSPACE}}}, nil
}

func (f *fakeMember) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := f.authorized(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.defrags++
	f.mu.Unlock()
	return &pb.DefragmentResponse{}, nil
}

func (f *fakeMember) Snapshot(_ *pb.SnapshotRequest, s pb.Maintenance_SnapshotServer) error {
	if err := f.authorized(s.Context()); err != nil {
		return err
	}
	// As etcd: the database in chunks, remaining_bytes counting the
	// database bytes still to come, then its SHA-256.
	for i := 0; i < len(f.snapshot); i += 1000 {
		end := min(i+1000, len(f.snapshot))
		if err := s.Send(&pb.SnapshotResponse{Blob: f.snapshot[i:end], RemainingBytes: uint64(len(f.snapshot) - end)}); err != nil {
			return err
		}
	}
	sum := sha256.Sum256(f.snapshot)
	return s.Send(&pb.SnapshotResponse{Blob: sum[:]})
}

func (f *fakeMember) Authenticate(_ context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	if r.Name == "alice" && r.Password == "pw" {
		return &pb.AuthenticateResponse{Token: goodToken}, nil
	}
	return nil, rpctypes.ErrGRPCAuthFailed
}

func (f *fakeMember) defragCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.defrags
}

func serveFake(t *testing.T, f *fakeMember) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterMaintenanceServer(s, f)
	pb.RegisterClusterServer(s, f)
	pb.RegisterAuthServer(s, f)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

// deadURL is a client URL nothing listens on.
func deadURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// testCluster: members a (this one, a follower), b (the leader) and c
// (down), each with their own gRPC server but c's.
type testCluster struct {
	a, b    *fakeMember
	console *Console
	srv     *httptest.Server
}

func newTestCluster(t *testing.T, mod func(*Config), authOn bool) *testCluster {
	t.Helper()
	members := []*pb.Member{{ID: 0xa, Name: "a"}, {ID: 0xb, Name: "b"}, {ID: 0xc, Name: "c", ClientURLs: []string{deadURL(t)}}}
	a := &fakeMember{id: 0xa, leader: 0xb, term: 3, members: members, authOn: authOn, snapshot: bytes.Repeat([]byte("0123456789"), 1234)}
	b := &fakeMember{id: 0xb, leader: 0xb, term: 3, members: members, authOn: authOn}
	members[0].ClientURLs = []string{"http://" + serveFake(t, a)}
	members[1].ClientURLs = []string{"http://" + serveFake(t, b)}
	dial := func(u string) (grpc.ClientConnInterface, error) {
		return grpc.NewClient(strings.TrimPrefix(u, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	self, err := dial(members[0].ClientURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { self.(*grpc.ClientConn).Close() })
	cfg := Config{Self: self, SelfID: 0xa, Dial: dial, Version: "9.9.9", StatusTimeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return &testCluster{a: a, b: b, console: c, srv: srv}
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodGet, url, nil, hdr...)
}

func do(t *testing.T, method, url string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// A transport that does not ask for gzip itself, so the test sees
	// exactly what the server sends.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestAssetsServed(t *testing.T) {
	tc := newTestCluster(t, nil, false)
	for _, tt := range []struct{ path, ctype, contains string }{
		{"/console/", "text/html", `src="app.js"`},
		{"/console/index.html", "text/html", "<title>Cairn console</title>"},
		{"/console/app.js", "javascript", "/console/api/status"},
		{"/console/app.css", "text/css", "body"},
		{"/console/uPlot.iife.min.js", "javascript", "uPlot"},
		{"/console/uPlot.min.css", "text/css", ".uplot"},
		{"/console/uPlot.LICENSE", "text/plain", "MIT"},
	} {
		resp, body := get(t, tc.srv.URL+tt.path)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), tt.ctype) || !strings.Contains(string(body), tt.contains) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.contains, strings.Contains(string(body), tt.contains))
		}
		if resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("GET %s without Accept-Encoding: Content-Encoding %q", tt.path, resp.Header.Get("Content-Encoding"))
		}
		// Gzip when asked, and the same bytes once unzipped.
		zresp, zbody := get(t, tc.srv.URL+tt.path, "Accept-Encoding", "gzip, deflate")
		if zresp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(zbody))
			if err != nil {
				t.Fatalf("GET %s: %v", tt.path, err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(plain, body) {
				t.Errorf("GET %s gzip: unzipped %d bytes (%v), want the %d plain ones", tt.path, len(plain), err, len(body))
			}
			if len(zbody) >= len(body) {
				t.Errorf("GET %s: gzip %d bytes, not smaller than %d", tt.path, len(zbody), len(body))
			}
		} else if len(body) > 1500 {
			t.Errorf("GET %s (%d bytes) with Accept-Encoding gzip: not compressed", tt.path, len(body))
		}
		// Revalidation.
		if etag := resp.Header.Get("ETag"); etag == "" {
			t.Errorf("GET %s: no ETag", tt.path)
		} else if r, _ := get(t, tc.srv.URL+tt.path, "If-None-Match", etag); r.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s If-None-Match: %d, want 304", tt.path, r.StatusCode)
		}
	}
	if resp, _ := get(t, tc.srv.URL+"/console/nope.js"); resp.StatusCode != 404 {
		t.Errorf("unknown asset: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, tc.srv.URL+"/console/api/nope"); resp.StatusCode != 404 {
		t.Errorf("unknown endpoint: %d, want 404", resp.StatusCode)
	}
	if resp, _ := do(t, http.MethodPost, tc.srv.URL+"/console/", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /console/: %d, want 405", resp.StatusCode)
	}
	// The page loads nothing from elsewhere.
	_, index := get(t, tc.srv.URL+"/console/")
	if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).FindString(string(index)); m != "" {
		t.Errorf("index.html loads from another site: %s", m)
	}
	resp, _ := get(t, tc.srv.URL+"/console/")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

// The first load is index.html and what it names (scripts, styles): under
// 200 KB as sent with gzip, and under 200 KB even without.
func TestFirstLoadUnder200KB(t *testing.T) {
	tc := newTestCluster(t, nil, false)
	const limit = 200 * 1024
	_, index := get(t, tc.srv.URL+"/console/")
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(string(index), -1)
	var assets []string
	for _, r := range refs {
		if !strings.HasPrefix(r[1], "data:") { // inline, nothing to load
			assets = append(assets, r[1])
		}
	}
	if len(assets) < 4 {
		t.Fatalf("index.html names %v, want the scripts and styles", assets)
	}
	var plain, sent int
	for _, p := range append([]string{""}, assets...) {
		resp, body := get(t, tc.srv.URL+"/console/"+p)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /console/%s: %d", p, resp.StatusCode)
		}
		plain += len(body)
		_, zbody := get(t, tc.srv.URL+"/console/"+p, "Accept-Encoding", "gzip")
		sent += len(zbody)
	}
	t.Logf("first load: %d files, %d bytes, %d with gzip", len(assets)+1, plain, sent)
	if plain > limit || sent > limit {
		t.Fatalf("first load %d bytes (%d with gzip), over %d", plain, sent, limit)
	}
}

func TestStatus(t *testing.T) {
	tc := newTestCluster(t, nil, false)
	resp, body := get(t, tc.srv.URL+"/console/api/status")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// The JSON's shape, as the pages read it.
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cluster_id", "member_id", "leader", "members", "alarms"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status has no %q: %s", k, body)
		}
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.ClusterID != "c1" || st.MemberID != "a" || st.Leader != "b" || len(st.Members) != 3 {
		t.Fatalf("status %+v", st)
	}
	a, b, c := st.Members[0], st.Members[1], st.Members[2]
	if a.Name != "a" || !a.Reachable || a.Leader != "b" || a.RaftTerm != 3 || a.RaftIndex != 10 || a.AppliedIndex != 9 ||
		a.DBSize != 4096 || a.DBSizeInUse != 2048 || a.Version != "3.7.0" || a.Revision != 42 || a.Error != "" {
		t.Errorf("member a: %+v", a)
	}
	if b.Name != "b" || !b.Reachable || b.Leader != "b" {
		t.Errorf("member b: %+v", b)
	}
	if c.Name != "c" || c.Reachable || c.Error == "" || c.RaftTerm != 0 {
		t.Errorf("member c (down): %+v", c)
	}
	if len(st.Alarms) != 1 || st.Alarms[0] != (Alarm{MemberID: "a", Alarm: "NOSPACE"}) {
		t.Errorf("alarms %+v", st.Alarms)
	}
}

// With auth on, the caller's token goes to every member, and without one
// the members' own refusal is what the page shows.
func TestStatusCarriesTheCallersToken(t *testing.T) {
	tc := newTestCluster(t, nil, true)
	resp, body := get(t, tc.srv.URL+"/console/api/status")
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusBadRequest || e.Message != "etcdserver: user name is empty" {
		t.Fatalf("status without a token: %d %s, want 400 and the member's refusal", resp.StatusCode, body)
	}
	// A token that is no longer valid: that refusal.
	resp, body = get(t, tc.srv.URL+"/console/api/status", "Authorization", "stale")
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusUnauthorized || e.Message != "etcdserver: invalid auth token" {
		t.Fatalf("status with a stale token: %d %s", resp.StatusCode, body)
	}
	var st Status
	// Log in through the console's Authenticate (the metrics URLs' way).
	resp, body = do(t, http.MethodPost, tc.srv.URL+"/console/api/authenticate", strings.NewReader(`{"name":"alice","password":"wrong"}`))
	if resp.StatusCode != 400 || !strings.Contains(string(body), "authentication failed, invalid user ID or password") {
		t.Errorf("bad password: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodPost, tc.srv.URL+"/console/api/authenticate", strings.NewReader(`{"name":"alice","password":"pw"}`))
	var tok struct{ Token string }
	if err := json.Unmarshal(body, &tok); resp.StatusCode != 200 || err != nil || tok.Token != goodToken {
		t.Fatalf("authenticate: %d %s", resp.StatusCode, body)
	}
	_, body = get(t, tc.srv.URL+"/console/api/status", "Authorization", tok.Token)
	st = Status{}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Members[0].Error != "" || st.Members[0].RaftTerm != 3 || st.Members[1].Error != "" || st.AlarmsError != "" || st.Leader != "b" {
		t.Fatalf("with a token: %s", body)
	}
	tc.b.mu.Lock()
	last := tc.b.tokens[len(tc.b.tokens)-1]
	tc.b.mu.Unlock()
	if last != goodToken {
		t.Errorf("member b was asked with token %q, want the caller's", last)
	}
}

func TestDefragmentOneMember(t *testing.T) {
	tc := newTestCluster(t, nil, false)
	resp, body := do(t, http.MethodPost, tc.srv.URL+"/console/api/defragment?member=b", nil)
	if resp.StatusCode != 200 || tc.b.defragCount() != 1 || tc.a.defragCount() != 0 {
		t.Fatalf("defragment b: %d %s; defrags a=%d b=%d", resp.StatusCode, body, tc.a.defragCount(), tc.b.defragCount())
	}
	resp, body = do(t, http.MethodPost, tc.srv.URL+"/console/api/defragment?member=f00", nil)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "member f00 not found") {
		t.Errorf("defragment an unknown member: %d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, http.MethodPost, tc.srv.URL+"/console/api/defragment?member=zz", nil)
	if resp.StatusCode != 400 {
		t.Errorf("defragment member=zz: %d, want 400", resp.StatusCode)
	}
	if resp, _ := get(t, tc.srv.URL+"/console/api/defragment?member=b"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET defragment: %d, want 405", resp.StatusCode)
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	tc := newTestCluster(t, func(c *Config) { c.ReadOnly = true }, false)
	resp, body := do(t, http.MethodPost, tc.srv.URL+"/console/api/defragment?member=a", nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "read-only") || tc.a.defragCount() != 0 {
		t.Fatalf("read-only defragment: %d %s, defrags %d", resp.StatusCode, body, tc.a.defragCount())
	}
	_, body = get(t, tc.srv.URL+"/console/api/config")
	var cfg map[string]any
	if err := json.Unmarshal(body, &cfg); err != nil || cfg["read_only"] != true || cfg["gateway"] != true {
		t.Fatalf("config: %s", body)
	}
	// Reads still work.
	if resp, _ := get(t, tc.srv.URL+"/console/api/status"); resp.StatusCode != 200 {
		t.Errorf("read-only status: %d", resp.StatusCode)
	}
}

func TestMetricsHandlerHasNoGateway(t *testing.T) {
	tc := newTestCluster(t, nil, false)
	srv := httptest.NewServer(tc.console.MetricsHandler())
	defer srv.Close()
	_, body := get(t, srv.URL+"/console/api/config")
	var cfg map[string]any
	if err := json.Unmarshal(body, &cfg); err != nil || cfg["gateway"] != false || cfg["version"] != "9.9.9" {
		t.Fatalf("config on the metrics URL: %s", body)
	}
}

func TestSnapshotStreamsTheMembersDatabase(t *testing.T) {
	tc := newTestCluster(t, nil, false)
	resp, body := get(t, tc.srv.URL+"/console/api/snapshot?member=a")
	sum := sha256.Sum256(tc.a.snapshot)
	want := append(bytes.Clone(tc.a.snapshot), sum[:]...)
	if resp.StatusCode != 200 || !bytes.Equal(body, want) || resp.ContentLength != int64(len(want)) {
		t.Fatalf("snapshot: %d, %d bytes (Content-Length %d), want %d: the database and its SHA-256", resp.StatusCode, len(body), resp.ContentLength, len(want))
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="snapshot-a.db"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	// Member c is down: the error, not a file.
	resp, body = get(t, tc.srv.URL+"/console/api/snapshot?member=c")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"error"`) {
		t.Errorf("snapshot of a member that is down: %d %s", resp.StatusCode, body)
	}
}

func TestMetricsHistory(t *testing.T) {
	reg := prometheus.NewRegistry()
	committed := prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_server_proposals_committed_total"})
	dbSize := prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_mvcc_db_total_size_in_bytes"})
	fsync := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_disk_wal_fsync_duration_seconds", Buckets: []float64{0.001, 0.01, 0.1}})
	reg.MustRegister(committed, dbSize, fsync)
	dbSize.Set(12345)
	tc := newTestCluster(t, func(c *Config) { c.Gatherer = reg; c.SampleInterval = 5 * time.Millisecond; c.History = 4 }, false)
	testutil.Eventually(t, 10*time.Second, "four samples", func() (bool, string) {
		committed.Add(10)
		fsync.Observe(0.005)
		_, body := get(t, tc.srv.URL+"/console/api/metrics")
		var raw struct {
			Times  []int64
			Series map[string][]*float64
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			return false, err.Error()
		}
		if len(raw.Times) < 4 {
			return false, fmt.Sprintf("%d samples", len(raw.Times))
		}
		for _, name := range []string{"db_size_bytes", "proposals_committed_per_s", "wal_fsync_p99_ms", "requests_per_s"} {
			s := raw.Series[name]
			if len(s) != 4 {
				return false, fmt.Sprintf("%s has %d points, want 4 (the history's length)", name, len(s))
			}
		}
		if v := raw.Series["db_size_bytes"][3]; v == nil || *v != 12345 {
			return false, "db size not 12345"
		}
		if v := raw.Series["proposals_committed_per_s"][3]; v == nil || *v <= 0 {
			return false, "no committed rate"
		}
		if v := raw.Series["wal_fsync_p99_ms"][3]; v != nil && (*v <= 1 || *v > 10) {
			t.Fatalf("fsync p99 %v ms, want within the 1..10 ms bucket", *v)
		}
		if raw.Series["requests_per_s"][3] != nil {
			t.Fatalf("requests_per_s without the metric: %v, want null", *raw.Series["requests_per_s"][3])
		}
		return true, ""
	})
}

func TestHistogramQuantile(t *testing.T) {
	bounds := []float64{1, 2, 4, math.Inf(1)}
	for _, tt := range []struct {
		q, want float64
		counts  []float64
	}{
		{0.5, 1.5, []float64{0, 10, 10, 10}},
		{0.5, 0.5, []float64{10, 10, 10, 10}},
		{0.99, 3.98, []float64{0, 0, 100, 100}},
		{0.99, 4, []float64{0, 0, 0, 10}}, // all above the last bound: the highest finite bound
	} {
		if got := histogramQuantile(tt.q, bounds, tt.counts); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("q%v of %v = %v, want %v", tt.q, tt.counts, got, tt.want)
		}
	}
	if got := histogramQuantile(0.5, bounds, []float64{0, 0, 0, 0}); !math.IsNaN(got) {
		t.Errorf("no observations: %v, want NaN", got)
	}
}
