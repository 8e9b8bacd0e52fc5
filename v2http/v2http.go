// Package v2http serves etcd 3.5's v2 HTTP API (--enable-v2) on a member's
// client URLs: /v2/keys on the replicated v2 tree (package v2store, applied
// in the core through raft), /v2/members on the same membership as the v3
// Cluster service, /v2/stats/{self,leader,store} and /v2/machines. Requests,
// responses, headers and errors follow etcd 3.5's v2http; docs/v2.md lists
// where Cairn differs.
package v2http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/v2store"
)

// Backend is the member the API serves (*server.Server).
type Backend interface {
	ID() uint64
	ClusterID() uint64
	Leader() uint64
	Term() uint64
	CommittedIndex() uint64
	V2Refused() bool
	V2Store() *v2store.Store
	V2Do(ctx context.Context, r *v2store.Request) (*v2store.Event, uint64, error)
	Members(ctx context.Context) ([]node.Member, error)
	MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error)
	MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error)
	MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error)
}

// Config configures the handler.
type Config struct {
	Backend Backend
	Name    string // this member's --name (stats/self)
	// Timeout bounds a write or quorum read (etcd: the request timeout).
	Timeout time.Duration
	// WatchTimeout bounds a wait=true request (etcd: 5 minutes).
	WatchTimeout time.Duration
	Logger       *zap.Logger
	// Now is the clock for TTLs and expiration times (time.Now if nil).
	Now func() time.Time
	// Leader holds /v2/stats/leader's per-follower stats (nil: none
	// recorded, every follower shows etcd's initial values).
	Leader *LeaderStats
}

type handler struct {
	cfg   Config
	b     Backend
	start time.Time
	// leaderSince is when this member last saw the leader change.
	lg *zap.Logger
}

// New returns the handler for /v2/.
func New(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.WatchTimeout == 0 {
		cfg.WatchTimeout = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	h := &handler{cfg: cfg, b: cfg.Backend, start: cfg.Now(), lg: cfg.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/keys", h.keys)
	mux.HandleFunc("/v2/keys/", h.keys)
	mux.HandleFunc("/v2/members", h.members)
	mux.HandleFunc("/v2/members/", h.members)
	mux.HandleFunc("/v2/machines", h.machines)
	mux.HandleFunc("/v2/stats/store", h.statsStore)
	mux.HandleFunc("/v2/stats/self", h.statsSelf)
	mux.HandleFunc("/v2/stats/leader", h.statsLeader)
	return mux
}

func allowMethod(w http.ResponseWriter, m string, ms ...string) bool {
	for _, x := range ms {
		if m == x {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(ms, ","))
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

func (h *handler) clusterID() string { return strconv.FormatUint(h.b.ClusterID(), 16) }

func writeV2Error(w http.ResponseWriter, e *v2store.Error) {
	w.Header().Add("X-Etcd-Index", fmt.Sprint(e.Index))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.StatusCode())
	b, _ := json.Marshal(e)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers err as etcd's v2http does: a v2 error as itself, a
// server error as etcd's 300 (raft internal) or a 500.
func (h *handler) writeError(w http.ResponseWriter, err error) {
	var ve *v2store.Error
	if errors.As(err, &ve) {
		writeV2Error(w, ve)
		return
	}
	h.lg.Warn("v2 request failed", zap.Error(err))
	writeV2Error(w, v2store.NewError(v2store.EcodeRaftInternal, err.Error(), 0))
}

func getUint64(form url.Values, key string) (uint64, error) {
	if vs, ok := form[key]; ok {
		return strconv.ParseUint(vs[0], 10, 64)
	}
	return 0, nil
}

func getBool(form url.Values, key string) (bool, error) {
	if vs, ok := form[key]; ok {
		return strconv.ParseBool(vs[0])
	}
	return false, nil
}

// parseKeyRequest reads a /v2/keys request as etcd's parseKeyRequest does.
func (h *handler) parseKeyRequest(r *http.Request) (*v2store.Request, bool, *v2store.Error) {
	bad := func(code int, cause string) (*v2store.Request, bool, *v2store.Error) {
		return nil, false, v2store.NewError(code, cause, 0)
	}
	if err := r.ParseForm(); err != nil {
		return bad(v2store.EcodeInvalidForm, err.Error())
	}
	rest, _ := strings.CutPrefix(r.URL.Path, "/v2/keys")
	p := path.Join("/", rest)
	rr := &v2store.Request{Method: r.Method, Path: p, Val: r.FormValue("value"), PrevValue: r.FormValue("prevValue")}
	var err error
	if rr.PrevIndex, err = getUint64(r.Form, "prevIndex"); err != nil {
		return bad(v2store.EcodeIndexNaN, `invalid value for "prevIndex"`)
	}
	if rr.Since, err = getUint64(r.Form, "waitIndex"); err != nil {
		return bad(v2store.EcodeIndexNaN, `invalid value for "waitIndex"`)
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"recursive", &rr.Recursive}, {"sorted", &rr.Sorted}, {"wait", &rr.Wait}, {"dir", &rr.Dir}, {"quorum", &rr.Quorum}, {"stream", &rr.Stream}} {
		if *f.dst, err = getBool(r.Form, f.name); err != nil {
			return bad(v2store.EcodeInvalidField, fmt.Sprintf("invalid value for %q", f.name))
		}
	}
	if rr.Wait && r.Method != "GET" {
		return bad(v2store.EcodeInvalidField, `"wait" can only be used with GET requests`)
	}
	if _, ok := r.Form["prevValue"]; ok && rr.PrevValue == "" {
		return bad(v2store.EcodePrevValueRequired, `"prevValue" cannot be empty`)
	}
	noValue, err := getBool(r.Form, "noValueOnSuccess")
	if err != nil {
		return bad(v2store.EcodeInvalidField, `invalid value for "noValueOnSuccess"`)
	}
	var ttl *uint64
	if r.FormValue("ttl") != "" {
		i, err := getUint64(r.Form, "ttl")
		if err != nil {
			return bad(v2store.EcodeTTLNaN, `invalid value for "ttl"`)
		}
		ttl = &i
	}
	if _, ok := r.Form["prevExist"]; ok {
		b, err := getBool(r.Form, "prevExist")
		if err != nil {
			return bad(v2store.EcodeInvalidField, "invalid value for prevExist")
		}
		rr.PrevExist = &b
	}
	if _, ok := r.Form["refresh"]; ok {
		b, err := getBool(r.Form, "refresh")
		if err != nil {
			return bad(v2store.EcodeInvalidField, "invalid value for refresh")
		}
		rr.Refresh = &b
		if b {
			if _, ok := r.Form["value"]; ok && rr.Val != "" {
				return bad(v2store.EcodeRefreshValue, `A value was provided on a refresh`)
			}
			if ttl == nil {
				return bad(v2store.EcodeRefreshTTLRequired, `No TTL value set`)
			}
		}
	}
	if ttl != nil {
		rr.Expiration = h.cfg.Now().Add(time.Duration(*ttl) * time.Second).UnixNano()
	}
	return rr, noValue, nil
}

func (h *handler) keys(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "HEAD", "GET", "PUT", "POST", "DELETE") {
		return
	}
	w.Header().Set("X-Etcd-Cluster-ID", h.clusterID())
	if h.b.V2Refused() {
		writeV2Error(w, v2store.NewError(v2store.EcodeUnauthorized, "Insufficient credentials", 0))
		return
	}
	rr, noValue, verr := h.parseKeyRequest(r)
	if verr != nil {
		writeV2Error(w, verr)
		return
	}
	st := h.b.V2Store()
	switch {
	case (r.Method == "GET" || r.Method == "HEAD") && rr.Wait:
		watch := st.Watch
		if rr.Stream {
			watch = st.WatchStream
		}
		wa, err := watch(rr.Path, rr.Recursive, rr.Since)
		if err != nil {
			h.writeError(w, err)
			return
		}
		h.serveWatch(w, r, wa, rr.Stream)
	case (r.Method == "GET" || r.Method == "HEAD") && !rr.Quorum:
		ev, err := st.Get(rr.Path, rr.Recursive, rr.Sorted)
		if err != nil {
			h.writeError(w, err)
			return
		}
		h.writeEvent(w, ev, h.b.CommittedIndex(), noValue)
	default:
		if r.Method == "GET" || r.Method == "HEAD" {
			rr.Method = "QGET"
		}
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
		defer cancel()
		ev, idx, err := h.b.V2Do(ctx, rr)
		if err != nil {
			h.writeError(w, err)
			return
		}
		h.writeEvent(w, ev, idx, noValue)
	}
}

func (h *handler) writeEvent(w http.ResponseWriter, ev *v2store.Event, raftIndex uint64, noValue bool) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Etcd-Index", fmt.Sprint(ev.EtcdIndex))
	w.Header().Set("X-Raft-Index", fmt.Sprint(raftIndex))
	w.Header().Set("X-Raft-Term", fmt.Sprint(h.b.Term()))
	if ev.IsCreated() {
		w.WriteHeader(http.StatusCreated)
	}
	out := ev.Render(h.cfg.Now())
	if noValue && (ev.Action == v2store.ActionSet || ev.Action == v2store.ActionCompareAndSwap ||
		ev.Action == v2store.ActionCreate || ev.Action == v2store.ActionUpdate) {
		out.Node, out.PrevNode = nil, nil
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (h *handler) serveWatch(w http.ResponseWriter, r *http.Request, wa *v2store.Watcher, stream bool) {
	defer wa.Remove()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.WatchTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Etcd-Index", fmt.Sprint(wa.StartIndex))
	w.Header().Set("X-Raft-Index", fmt.Sprint(h.b.CommittedIndex()))
	w.Header().Set("X-Raft-Term", fmt.Sprint(h.b.Term()))
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-wa.C:
			if !ok {
				return
			}
			if err := json.NewEncoder(w).Encode(ev.Render(h.cfg.Now())); err != nil || !stream {
				return
			}
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
	}
}

func (h *handler) machines(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET", "HEAD") {
		return
	}
	ms, err := h.b.Members(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var urls []string
	for _, m := range ms {
		urls = append(urls, m.ClientURLs...)
	}
	_, _ = w.Write([]byte(strings.Join(urls, ", ")))
}

// httpError is etcd's httptypes.HTTPError.
func writeHTTPError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"message": msg})
	_, _ = w.Write(b)
}

type v2Member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

func toV2Member(id uint64, name string, peer, client []string) v2Member {
	if peer == nil {
		peer = []string{}
	}
	if client == nil {
		client = []string{}
	}
	return v2Member{ID: strconv.FormatUint(id, 16), Name: name, PeerURLs: peer, ClientURLs: client}
}

func readPeerURLs(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		writeHTTPError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Bad Content-Type %s, accept application/json", ct))
		return nil, false
	}
	var req struct {
		PeerURLs []string `json:"peerURLs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeHTTPError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	for _, u := range req.PeerURLs {
		if msg := checkURL(u); msg != "" {
			writeHTTPError(w, http.StatusBadRequest, msg)
			return nil, false
		}
	}
	return req.PeerURLs, true
}

// checkURL is etcd's types.NewURLs check of one URL: its message, or "".
func checkURL(u string) string {
	pu, err := url.Parse(u)
	switch {
	case err != nil:
		return err.Error()
	case pu.Scheme != "http" && pu.Scheme != "https" && pu.Scheme != "unix" && pu.Scheme != "unixs":
		return "URL scheme must be http, https, unix, or unixs: " + u
	}
	if _, _, err := net.SplitHostPort(pu.Host); err != nil {
		return fmt.Sprintf("URL address does not have the form \"host:port\": %s", u)
	}
	if pu.Path != "" {
		return "URL must not contain a path: " + u
	}
	return ""
}

func (h *handler) memberError(w http.ResponseWriter, id string, err error) {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Peer URLs already exists"):
		writeHTTPError(w, http.StatusConflict, "membership: peerURL exists")
	case strings.Contains(msg, "member not found"):
		writeHTTPError(w, http.StatusNotFound, "No such member: "+id)
	default:
		writeHTTPError(w, http.StatusInternalServerError, msg)
	}
}

func (h *handler) members(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET", "POST", "DELETE", "PUT") {
		return
	}
	if h.b.V2Refused() {
		writeHTTPError(w, http.StatusUnauthorized, "Insufficient credentials")
		return
	}
	w.Header().Set("X-Etcd-Cluster-ID", h.clusterID())
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v2/members"), "/")
	switch r.Method {
	case "GET":
		ms, err := h.b.Members(ctx)
		if err != nil {
			h.memberError(w, "", err)
			return
		}
		switch rest {
		case "":
			out := struct {
				Members []v2Member `json:"members"`
			}{Members: []v2Member{}}
			for _, m := range ms {
				out.Members = append(out.Members, toV2Member(m.ID, m.Name, m.PeerURLs, m.ClientURLs))
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(out)
		case "leader":
			lead := h.b.Leader()
			for _, m := range ms {
				if m.ID == lead && lead != 0 {
					w.Header().Set("Content-Type", "application/json")
					_ = json.NewEncoder(w).Encode(toV2Member(m.ID, m.Name, m.PeerURLs, m.ClientURLs))
					return
				}
			}
			writeHTTPError(w, http.StatusServiceUnavailable, "During election")
		default:
			writeHTTPError(w, http.StatusNotFound, "Not found")
		}
	case "POST":
		urls, ok := readPeerURLs(w, r)
		if !ok {
			return
		}
		resp, err := h.b.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: urls})
		if err != nil {
			h.memberError(w, "", err)
			return
		}
		m := resp.GetMember()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(toV2Member(m.GetID(), m.GetName(), m.GetPeerURLs(), m.GetClientURLs()))
	case "DELETE", "PUT":
		id, err := strconv.ParseUint(rest, 16, 64)
		if err != nil || rest == "" {
			writeHTTPError(w, http.StatusNotFound, "No such member: "+rest)
			return
		}
		if r.Method == "DELETE" {
			_, err = h.b.MemberRemove(ctx, &pb.MemberRemoveRequest{ID: id})
		} else {
			urls, ok := readPeerURLs(w, r)
			if !ok {
				return
			}
			_, err = h.b.MemberUpdate(ctx, &pb.MemberUpdateRequest{ID: id, PeerURLs: urls})
		}
		if err != nil {
			h.memberError(w, rest, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (h *handler) statsStore(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET") {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	writeRaw(w, h.b.V2Store().Stats())
}

func (h *handler) statsSelf(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET") {
		return
	}
	state := "StateFollower"
	lead := h.b.Leader()
	if lead == h.b.ID() {
		state = "StateLeader"
	}
	now := h.cfg.Now()
	type leaderInfo struct {
		Leader    string    `json:"leader"`
		Uptime    string    `json:"uptime"`
		StartTime time.Time `json:"startTime"`
	}
	out := struct {
		Name                 string     `json:"name"`
		ID                   string     `json:"id"`
		State                string     `json:"state"`
		StartTime            time.Time  `json:"startTime"`
		LeaderInfo           leaderInfo `json:"leaderInfo"`
		RecvAppendRequestCnt uint64     `json:"recvAppendRequestCnt"`
		SendAppendRequestCnt uint64     `json:"sendAppendRequestCnt"`
	}{
		Name: h.cfg.Name, ID: strconv.FormatUint(h.b.ID(), 16), State: state, StartTime: h.start,
		LeaderInfo: leaderInfo{Leader: strconv.FormatUint(lead, 16), Uptime: now.Sub(h.start).String(), StartTime: h.start},
	}
	writeRaw(w, out)
}

func (h *handler) statsLeader(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET") {
		return
	}
	if h.b.Leader() != h.b.ID() {
		writeHTTPError(w, http.StatusForbidden, "not current leader")
		return
	}
	ms, err := h.b.Members(r.Context())
	if err != nil {
		writeHTTPError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := struct {
		Leader    string                   `json:"leader"`
		Followers map[string]followerStats `json:"followers"`
	}{Leader: strconv.FormatUint(h.b.ID(), 16), Followers: map[string]followerStats{}}
	for _, m := range ms {
		if m.ID != h.b.ID() {
			out.Followers[strconv.FormatUint(m.ID, 16)] = h.cfg.Leader.follower(m.ID)
		}
	}
	writeRaw(w, out)
}

// writeRaw writes v as etcd's stats endpoints do: JSON with no newline.
func writeRaw(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
