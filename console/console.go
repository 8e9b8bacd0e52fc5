// Package console is Cairn's web console (--enable-console, docs/console.md):
// a small single-page application embedded in the binary (ui/), served
// under /console/ on the client HTTP listeners and on the metrics URLs.
//
// The pages talk to the member through what etcd already serves: the
// JSON gateway (/v3/...) for keys, watches and operations, with the
// user's token in the Authorization header, and three JSON endpoints of
// this package:
//
//   - /console/api/status: the members (Cluster.MemberList) and each
//     member's Maintenance.Status and this member's alarms, asked of the
//     members themselves over gRPC with the caller's token, so etcd's
//     auth decides what the caller sees exactly as it would for etcdctl
//     member list and endpoint status (etcd 3.7 asks an authenticated
//     user, any user, for the member list, Status and the alarm list once
//     auth is on);
//   - /console/api/metrics: the last minutes of a few series computed
//     from the member's own registry (what /metrics serves unauthenticated);
//   - /console/api/defragment, /console/api/snapshot: Maintenance.Defragment
//     and Maintenance.Snapshot of one member, chosen by ID, as etcdctl
//     defrag and snapshot save --endpoints=<member> do, again with the
//     caller's token (the gateway only reaches the member serving it).
//
// Nothing here bypasses auth: every call carries the caller's token to
// the same gRPC services etcdctl uses.
package console

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

//go:embed ui
var uiFiles embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// Defaults of Config's zero fields.
const (
	DefaultSampleInterval = 2 * time.Second
	DefaultHistory        = 300 // samples: 10 minutes at 2s
	DefaultStatusTimeout  = 2 * time.Second
)

// Config configures a Console.
type Config struct {
	// ReadOnly takes every write out of the pages (put, delete,
	// compaction, defragmentation, alarm disarm, member changes), and
	// /console/api/defragment refuses (403). The JSON gateway beside the
	// console is etcd's and still takes writes: access control is etcd's
	// auth, not this flag.
	ReadOnly bool
	// Gatherer is the member's metrics registry (what /metrics serves).
	Gatherer prometheus.Gatherer
	// Self is a gRPC connection to this member's own client listener.
	Self grpc.ClientConnInterface
	// Dial opens a gRPC connection to another member's client URL.
	Dial func(clientURL string) (grpc.ClientConnInterface, error)
	// SelfID is this member's ID.
	SelfID uint64
	// Version is shown in the page's header.
	Version string
	Logger  *zap.Logger

	SampleInterval time.Duration // 0: DefaultSampleInterval
	History        int           // samples kept; 0: DefaultHistory
	StatusTimeout  time.Duration // per member; 0: DefaultStatusTimeout
}

// Console serves the pages and their endpoints, and samples the metrics.
type Console struct {
	cfg    Config
	lg     *zap.Logger
	assets map[string]*asset
	hist   *history

	mu    sync.Mutex
	conns map[string]grpc.ClientConnInterface

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// asset is one embedded file, with its gzip form when that is smaller.
type asset struct {
	body, gz    []byte
	contentType string
	etag        string
}

// New starts sampling the metrics (stop with Close).
func New(cfg Config) (*Console, error) {
	if cfg.Self == nil {
		return nil, errors.New("console: Config.Self is nil")
	}
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = DefaultSampleInterval
	}
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.StatusTimeout <= 0 {
		cfg.StatusTimeout = DefaultStatusTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, lg: cfg.Logger, assets: assets, hist: newHistory(cfg.History),
		conns: map[string]grpc.ClientConnInterface{}, stop: make(chan struct{}), done: make(chan struct{})}
	go c.sampleLoop()
	return c, nil
}

// Close stops the sampling and closes the connections Dial opened (not
// Config.Self, which is the caller's).
func (c *Console) Close() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	for u, cc := range c.conns {
		if cl, ok := cc.(io.Closer); ok {
			cl.Close()
		}
		delete(c.conns, u)
	}
}

func (c *Console) sampleLoop() {
	defer close(c.done)
	if c.cfg.Gatherer == nil {
		<-c.stop
		return
	}
	t := time.NewTicker(c.cfg.SampleInterval)
	defer t.Stop()
	for {
		if s, err := gatherSample(c.cfg.Gatherer, time.Now()); err == nil {
			c.hist.add(s)
		} else {
			c.lg.Debug("console: gathering metrics", zap.Error(err))
		}
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

func loadAssets() (map[string]*asset, error) {
	out := map[string]*asset{}
	err := fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := uiFiles.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "ui/")
		a := &asset{body: body, contentType: mime.TypeByExtension(path.Ext(name))}
		if a.contentType == "" || strings.HasSuffix(name, "LICENSE") {
			a.contentType = "text/plain; charset=utf-8"
		}
		sum := sha256.Sum256(body)
		a.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		if buf.Len() < len(body) {
			a.gz = buf.Bytes()
		}
		out[name] = a
		return nil
	})
	return out, err
}

// Handler serves the console on a client HTTP listener, beside the JSON
// gateway.
func (c *Console) Handler() http.Handler { return c.handler(true) }

// MetricsHandler serves the console where there is no gateway (a metrics
// URL, or a client URL with the gateway disabled): the pages show the
// cluster and the charts, and send the user to a client URL with the
// gateway for keys, watches and operations.
func (c *Console) MetricsHandler() http.Handler { return c.handler(false) }

func (c *Console) handler(gateway bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/console/api/config", only(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"read_only": c.cfg.ReadOnly, "gateway": gateway, "version": c.cfg.Version,
			"member_id": fmt.Sprintf("%x", c.cfg.SelfID), "interval_ms": c.cfg.SampleInterval.Milliseconds(),
		})
	}))
	mux.HandleFunc("/console/api/status", only(http.MethodGet, c.serveStatus))
	mux.HandleFunc("/console/api/metrics", only(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.hist.body(c.cfg.SampleInterval))
	}))
	mux.HandleFunc("/console/api/authenticate", only(http.MethodPost, c.serveAuthenticate))
	mux.HandleFunc("/console/api/defragment", only(http.MethodPost, c.serveDefragment))
	mux.HandleFunc("/console/api/snapshot", only(http.MethodGet, c.serveSnapshot))
	mux.HandleFunc("/console/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codes.NotFound, "no such console endpoint")
	})
	mux.HandleFunc("/console/", c.serveAsset)
	return mux
}

// only answers 405 to any other method than m.
func only(m string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m && !(m == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", m)
			writeError(w, http.StatusMethodNotAllowed, codes.Unimplemented, "method not allowed")
			return
		}
		h(w, r)
	}
}

func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	if name == "" {
		name = "index.html"
	}
	a, ok := c.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	if name == "index.html" {
		// Nothing is loaded from elsewhere, and no other site may frame it.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
	}
	h.Add("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gz != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}

// withToken carries the caller's token (the Authorization header, as the
// gateway takes it) to the gRPC call.
func withToken(ctx context.Context, r *http.Request) context.Context {
	if tok := r.Header.Get("Authorization"); tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "token", tok)
	}
	return ctx
}

// MemberStatus is one member's row of /console/api/status.
type MemberStatus struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peer_urls"`
	ClientURLs []string `json:"client_urls"`
	IsLearner  bool     `json:"is_learner"`
	// Reachable: the member answered (an auth refusal is an answer).
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// From its Maintenance.Status, when it gave one.
	Leader       string   `json:"leader,omitempty"`
	RaftTerm     uint64   `json:"raft_term,omitempty"`
	RaftIndex    uint64   `json:"raft_index,omitempty"`
	AppliedIndex uint64   `json:"raft_applied_index,omitempty"`
	DBSize       int64    `json:"db_size,omitempty"`
	DBSizeInUse  int64    `json:"db_size_in_use,omitempty"`
	DBQuota      int64    `json:"db_size_quota,omitempty"`
	Version      string   `json:"version,omitempty"`
	Errors       []string `json:"errors,omitempty"`
	Revision     int64    `json:"revision,omitempty"`
}

// Alarm is one raised alarm.
type Alarm struct {
	MemberID string `json:"member_id"`
	Alarm    string `json:"alarm"`
}

// Status is /console/api/status.
type Status struct {
	ClusterID   string         `json:"cluster_id"`
	MemberID    string         `json:"member_id"` // the member serving the console
	Leader      string         `json:"leader"`    // "" when no member knows one
	Members     []MemberStatus `json:"members"`
	Alarms      []Alarm        `json:"alarms"`
	AlarmsError string         `json:"alarms_error,omitempty"`
}

func (c *Console) conn(id uint64, clientURLs []string) (grpc.ClientConnInterface, error) {
	if id == c.cfg.SelfID {
		return c.cfg.Self, nil
	}
	if len(clientURLs) == 0 {
		return nil, errors.New("the member has no client URL yet (not started)")
	}
	if c.cfg.Dial == nil {
		return nil, errors.New("console: no way to dial other members")
	}
	u := clientURLs[0]
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.conns[u]; ok {
		return cc, nil
	}
	cc, err := c.cfg.Dial(u)
	if err != nil {
		return nil, err
	}
	c.conns[u] = cc
	return cc, nil
}

// Cluster is the status of every member, as GET /console/api/status
// gives it; r carries the caller's token.
func (c *Console) Cluster(ctx context.Context, r *http.Request) (*Status, error) {
	ctx = withToken(ctx, r)
	lctx, cancel := context.WithTimeout(ctx, c.cfg.StatusTimeout)
	defer cancel()
	ml, err := pb.NewClusterClient(c.cfg.Self).MemberList(lctx, &pb.MemberListRequest{Linearizable: false})
	if err != nil {
		return nil, err
	}
	st := &Status{MemberID: fmt.Sprintf("%x", c.cfg.SelfID), Members: make([]MemberStatus, len(ml.Members)), Alarms: []Alarm{}}
	if h := ml.GetHeader(); h != nil {
		st.ClusterID = fmt.Sprintf("%x", h.ClusterId)
	}
	var wg sync.WaitGroup
	for i, m := range ml.Members {
		ms := &st.Members[i]
		*ms = MemberStatus{ID: fmt.Sprintf("%x", m.ID), Name: m.Name, PeerURLs: nonNil(m.PeerURLs), ClientURLs: nonNil(m.ClientURLs), IsLearner: m.IsLearner}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.memberStatus(ctx, m, ms)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		actx, cancel := context.WithTimeout(ctx, c.cfg.StatusTimeout)
		defer cancel()
		ar, err := pb.NewMaintenanceClient(c.cfg.Self).Alarm(actx, &pb.AlarmRequest{Action: pb.AlarmRequest_GET})
		if err != nil {
			st.AlarmsError = errorMessage(err)
			return
		}
		for _, a := range ar.Alarms {
			st.Alarms = append(st.Alarms, Alarm{MemberID: fmt.Sprintf("%x", a.MemberID), Alarm: a.Alarm.String()})
		}
	}()
	wg.Wait()
	// The leader: as this member sees it when it answered, else as most
	// of those that answered see it.
	votes := map[string]int{}
	for _, m := range st.Members {
		if m.Leader == "" || m.Leader == "0" {
			continue
		}
		if m.ID == st.MemberID {
			votes[m.Leader] += len(st.Members) + 1
		}
		votes[m.Leader]++
	}
	best := 0
	for id, n := range votes {
		if n > best || (n == best && id < st.Leader) {
			st.Leader, best = id, n
		}
	}
	sort.SliceStable(st.Members, func(i, j int) bool { return st.Members[i].Name < st.Members[j].Name })
	return st, nil
}

func (c *Console) memberStatus(ctx context.Context, m *pb.Member, ms *MemberStatus) {
	cc, err := c.conn(m.ID, m.ClientURLs)
	if err != nil {
		ms.Error = err.Error()
		return
	}
	sctx, cancel := context.WithTimeout(ctx, c.cfg.StatusTimeout)
	defer cancel()
	s, err := pb.NewMaintenanceClient(cc).Status(sctx, &pb.StatusRequest{})
	if err != nil {
		ms.Error = errorMessage(err)
		code := status.Code(err)
		ms.Reachable = code != codes.Unavailable && code != codes.DeadlineExceeded && code != codes.Canceled
		return
	}
	ms.Reachable = true
	ms.Leader = fmt.Sprintf("%x", s.Leader)
	ms.RaftTerm, ms.RaftIndex, ms.AppliedIndex = s.RaftTerm, s.RaftIndex, s.RaftAppliedIndex
	ms.DBSize, ms.DBSizeInUse, ms.DBQuota = s.DbSize, s.DbSizeInUse, s.DbSizeQuota
	ms.Version, ms.Errors = s.Version, s.Errors
	ms.IsLearner = ms.IsLearner || s.IsLearner
	if s.Header != nil {
		ms.Revision = s.Header.Revision
	}
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

func (c *Console) serveStatus(w http.ResponseWriter, r *http.Request) {
	st, err := c.Cluster(r.Context(), r)
	if err != nil {
		writeGRPCError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// serveAuthenticate is Auth.Authenticate, for the metrics URLs where the
// gateway's /v3/auth/authenticate is not served: {"name","password"} in,
// {"token"} out.
func (c *Console) serveAuthenticate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, codes.InvalidArgument, "bad request body: "+err.Error())
		return
	}
	res, err := pb.NewAuthClient(c.cfg.Self).Authenticate(r.Context(), &pb.AuthenticateRequest{Name: req.Name, Password: req.Password})
	if err != nil {
		writeGRPCError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": res.Token})
}

// memberByID finds ?member=<hex id> among the members.
func (c *Console) memberByID(ctx context.Context, r *http.Request) (*pb.Member, error) {
	id, err := strconv.ParseUint(r.URL.Query().Get("member"), 16, 64)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "member: want a member ID in hex")
	}
	ml, err := pb.NewClusterClient(c.cfg.Self).MemberList(withToken(ctx, r), &pb.MemberListRequest{})
	if err != nil {
		return nil, err
	}
	for _, m := range ml.Members {
		if m.ID == id {
			return m, nil
		}
	}
	return nil, status.Error(codes.NotFound, fmt.Sprintf("member %x not found", id))
}

// serveDefragment is etcdctl defrag --endpoints=<the member's client URL>.
func (c *Console) serveDefragment(w http.ResponseWriter, r *http.Request) {
	if c.cfg.ReadOnly {
		writeError(w, http.StatusForbidden, codes.PermissionDenied, "the console is read-only (--console-read-only)")
		return
	}
	m, err := c.memberByID(r.Context(), r)
	if err != nil {
		writeGRPCError(w, err)
		return
	}
	cc, err := c.conn(m.ID, m.ClientURLs)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, codes.Unavailable, err.Error())
		return
	}
	if _, err := pb.NewMaintenanceClient(cc).Defragment(withToken(r.Context(), r), &pb.DefragmentRequest{}); err != nil {
		writeGRPCError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"member_id": fmt.Sprintf("%x", m.ID)})
}

// serveSnapshot is etcdctl snapshot save --endpoints=<the member>: the
// database as Maintenance.Snapshot streams it, sent as it comes, followed
// by the SHA-256 of the database that the stream ends with, as in the file
// etcdctl writes. The first message's blob and remaining bytes give the
// database's size, so the Content-Length is known at once (the page shows
// progress against it).
func (c *Console) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	m, err := c.memberByID(r.Context(), r)
	if err != nil {
		writeGRPCError(w, err)
		return
	}
	cc, err := c.conn(m.ID, m.ClientURLs)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, codes.Unavailable, err.Error())
		return
	}
	ctx, cancel := context.WithCancel(withToken(r.Context(), r))
	defer cancel()
	stream, err := pb.NewMaintenanceClient(cc).Snapshot(ctx, &pb.SnapshotRequest{})
	if err != nil {
		writeGRPCError(w, err)
		return
	}
	first, err := stream.Recv()
	if err != nil {
		writeGRPCError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="snapshot-%x.db"`, m.ID))
	h.Set("Content-Length", strconv.FormatUint(uint64(len(first.Blob))+first.RemainingBytes+sha256.Size, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(first.Blob); err != nil {
		return
	}
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return
		}
		if err != nil {
			c.lg.Warn("console: snapshot cut short", zap.Error(err))
			// The declared length is not reached: the client sees the cut.
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
				}
			}
			return
		}
		if _, err := w.Write(resp.Blob); err != nil {
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// errorBody is the gateway's error shape, so the pages read both alike.
type errorBody struct {
	Error   string `json:"error"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, httpCode int, code codes.Code, msg string) {
	writeJSON(w, httpCode, errorBody{Error: msg, Code: int(code), Message: msg})
}

// errorMessage is what etcdctl prints of a gRPC error: its message.
func errorMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

func writeGRPCError(w http.ResponseWriter, err error) {
	s, _ := status.FromError(err)
	writeError(w, httpStatus(s.Code()), s.Code(), errorMessage(err))
}

// httpStatus maps gRPC codes to HTTP as grpc-gateway does.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
