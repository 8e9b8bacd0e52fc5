package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
)

// newGatewayMux returns a grpc-gateway mux that speaks JSON as etcd's
// gateway does: proto field names (cluster_id, not clusterId), 64-bit
// integers as strings, bytes as base64, unset fields omitted, unknown
// request fields ignored. Every request it forwards is marked as the
// gateway's (gatewayMetadata).
func newGatewayMux() *runtime.ServeMux {
	return runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard,
		&runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}},
	), runtime.WithMetadata(gatewayMetadata))
}

// GatewayMetadataKey is the gRPC metadata key of every request the JSON
// gateway forwards. The gateway dials the member's gRPC side with the
// member's own certificate, so with --client-cert-auth the member must
// never take that certificate's Common Name for the user of such a
// request. etcd recognises the gateway by this key, which grpc-gateway
// sets from the HTTP Accept header: a request without one (Go's
// net/http sends none; curl -H 'Accept:') or with one that is not valid
// metadata went unmarked and was served as the member's certificate's
// user. The gateway now sets it on every request. A gRPC client that
// sends it itself only gives up its own certificate's user.
const GatewayMetadataKey = "grpcgateway-accept"

func gatewayMetadata(context.Context, *http.Request) metadata.MD {
	return metadata.Pairs(GatewayMetadataKey, "*/*")
}

// httpHandler is everything served over HTTP/1: the gateway under /v3/
// (and its older prefixes, see gatewayPath) unless gwConn is nil (the
// gateway is disabled), /health, /livez, /readyz, /version, /metrics and,
// if enabled, /debug/pprof/.
func (s *Server) httpHandler(gwConn *grpc.ClientConn) (http.Handler, error) {
	mux := http.NewServeMux()
	if gwConn != nil {
		gwmux := newGatewayMux()
		ctx := context.Background() // the handlers use it only to register; the conn's life is Server's
		for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
			gw.RegisterKVHandler,
			gw.RegisterWatchHandler,
			gw.RegisterLeaseHandler,
			gw.RegisterClusterHandler,
			gw.RegisterMaintenanceHandler,
			gw.RegisterAuthHandler,
		} {
			if err := register(ctx, gwmux, gwConn); err != nil {
				return nil, fmt.Errorf("api: register gateway: %w", err)
			}
		}
		mux.Handle("/v3/", capBody(gwmux, s.gatewayBodyLimit()))
	}
	s.handleHealth(mux)
	mux.HandleFunc("/version", s.serveVersion)
	mux.Handle("/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/vars", s.serveDebugVars)
	if s.cfg.V2 != nil {
		mux.Handle("/v2/", s.cfg.V2)
	}
	if s.cfg.Console != nil {
		mux.Handle("/console/", s.cfg.Console)
	}
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allowCORS(w, r) {
			return
		}
		r.URL.Path = gatewayPath(r.URL.Path)
		if gwConn != nil && s.refuseGatewayCertificate(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}

// CertAuthGate is implemented by an AuthGate whose members take a verified
// client certificate's Common Name for the user of a request without a
// token (etcd's --client-cert-auth, while auth is on).
type CertAuthGate interface {
	CertAuthActive() bool
}

// errGatewayCommonName is etcd's refusal of a gateway request made with a
// client certificate that names a user.
const errGatewayCommonName = "CommonName of client sending a request against gateway will be ignored and not used as expected"

// refuseGatewayCertificate is etcd's check before its gateway: while
// certificates name users, a /v3/ request over TLS whose verified client
// certificate has a Common Name is refused (400), since the gateway cannot
// pass that certificate on and would serve the request as someone else.
func (s *Server) refuseGatewayCertificate(w http.ResponseWriter, r *http.Request) bool {
	g, ok := s.cfg.AuthGate.(CertAuthGate)
	if !ok || r.TLS == nil || !strings.HasPrefix(r.URL.Path, "/v3/") || !g.CertAuthActive() {
		return false
	}
	for _, chain := range r.TLS.VerifiedChains {
		if len(chain) > 0 && chain[0].Subject.CommonName != "" {
			http.Error(w, errGatewayCommonName, http.StatusBadRequest)
			return true
		}
	}
	return false
}

// allowCORS does what etcd's default --cors=* does on the client
// listener's HTTP side: every response allows any origin, and a preflight
// OPTIONS request is answered 200 with no body (it reports true then).
func allowCORS(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Headers", "accept, content-type, authorization")
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusOK)
		return true
	}
	return false
}

// gatewayPath maps the gateway's older prefixes onto /v3/: /v3beta/, which
// etcd 3.7 still serves, and /v3alpha/, which etcd 3.7 answers 404 but the
// handbook's examples use.
func gatewayPath(p string) string {
	for _, old := range [...]string{"/v3beta/", "/v3alpha/"} {
		if rest, ok := strings.CutPrefix(p, old); ok {
			return "/v3/" + rest
		}
	}
	return p
}

// The probes below are etcd 3.7's (server/etcdhttp/health.go), answer
// for answer, so that probes written for etcd behave the same on Cairn:
//
//   - /health: 200 {"health":"true","reason":""}, or 503 with "false" and
//     the first failure of: a raised alarm not named by ?exclude= ("ALARM
//     NOSPACE"), no leader unless ?serializable=true ("RAFT NO LEADER"), a
//     read of one key, serializable if asked ("RANGE ERROR:<error>").
//   - /livez and /readyz run named checks; /livez/<check> and
//     /readyz/<check> run one. 200 "ok\n", preceded by one "[+]<check> ok"
//     line per check when ?verbose is present; on failure 503 with every
//     check's line, failed ones as "[-]<check> failed: <error>", whatever
//     ?verbose says. ?exclude=<check> (repeatable) skips a check on the
//     root paths; unknown names are ignored.
//
// etcd runs the checks in Go map order, so its verbose lines come in any
// order; Cairn runs them in the order etcd registers them.

// handleHealth registers the probes on mux.
func (s *Server) handleHealth(mux *http.ServeMux) {
	mux.HandleFunc("/health", s.serveHealth)
	s.handleChecks(mux, "/livez", []healthCheck{
		{"serializable_read", s.readCheck(true)},
	})
	s.handleChecks(mux, "/readyz", []healthCheck{
		{"data_corruption", s.alarmCheck(pb.AlarmType_CORRUPT)},
		{"serializable_read", s.readCheck(true)},
		{"linearizable_read", s.readCheck(false)},
		{"non_learner", s.learnerCheck},
	})
}

// MetricsHandler is what etcd serves on --listen-metrics-urls: /metrics
// and the probes, nothing else (no /version, no gateway).
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	s.handleHealth(mux)
	return mux
}

// healthStatus is etcd's /health body.
type healthStatus struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// serveHealth answers GET /health as etcd does.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if !onlyGet(w, r) {
		return
	}
	h := s.health(r.Context(), querySet(r, "exclude"), r.URL.Query().Get("serializable") == "true")
	b, _ := json.Marshal(h) // two strings
	if h.Health == "true" {
		s.healthMetrics.success.Inc()
	} else {
		s.healthMetrics.failures.Inc()
	}
	if h.Health != "true" {
		s.lg.Warn("serving /health false", zap.String("reason", h.Reason))
		http.Error(w, string(b), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8") // what etcd's sniffs
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// health judges this member as etcd's /health does: alarms not in
// excludedAlarms (alarm type names, "NOSPACE"), then the leader unless
// serializable, then a read.
func (s *Server) health(ctx context.Context, excludedAlarms map[string]bool, serializable bool) healthStatus {
	be := s.cfg.Backend
	alarms, err := be.Alarms(ctx)
	if err != nil {
		return healthStatus{Health: "false", Reason: "RANGE ERROR:" + rpctypes.ErrorDesc(toGRPCError(err))}
	}
	for _, a := range alarms {
		if excludedAlarms[a.GetAlarm().String()] {
			continue
		}
		switch a.GetAlarm() {
		case pb.AlarmType_NOSPACE:
			return healthStatus{Health: "false", Reason: "ALARM NOSPACE"}
		case pb.AlarmType_CORRUPT:
			return healthStatus{Health: "false", Reason: "ALARM CORRUPT"}
		default:
			return healthStatus{Health: "false", Reason: "ALARM UNKNOWN"}
		}
	}
	if !serializable && be.Leader() == 0 {
		return healthStatus{Health: "false", Reason: "RAFT NO LEADER"}
	}
	if err := be.HealthRead(ctx, serializable); err != nil {
		return healthStatus{Health: "false", Reason: "RANGE ERROR:" + rpctypes.ErrorDesc(toGRPCError(err))}
	}
	return healthStatus{Health: "true"}
}

// healthCheck is one named check of /livez or /readyz.
type healthCheck struct {
	name string
	run  func(ctx context.Context) error
}

// handleChecks registers root, which runs checks but those excluded, and
// root/<name> for each check.
func (s *Server) handleChecks(mux *http.ServeMux, root string, checks []healthCheck) {
	mux.HandleFunc(root, func(w http.ResponseWriter, r *http.Request) {
		excluded := querySet(r, "exclude")
		var run []healthCheck
		for _, c := range checks {
			if !excluded[c.name] {
				run = append(run, c)
			}
		}
		s.serveChecks(w, r, root, run)
	})
	for _, c := range checks {
		mux.HandleFunc(root+"/"+c.name, func(w http.ResponseWriter, r *http.Request) {
			s.serveChecks(w, r, root+"/"+c.name, []healthCheck{c})
		})
	}
}

// serveChecks runs checks for path (/livez or /readyz, or one check's
// path under them), counting each run in etcd's healthcheck metrics.
func (s *Server) serveChecks(w http.ResponseWriter, r *http.Request, path string, checks []healthCheck) {
	if !onlyGet(w, r) {
		return
	}
	typ := strings.TrimPrefix(path, "/")
	if i := strings.IndexByte(typ, '/'); i >= 0 {
		typ = typ[:i]
	}
	var out strings.Builder
	failed := false
	for _, c := range checks {
		err := c.run(r.Context())
		s.healthMetrics.observe(typ, c.name, err)
		if err != nil {
			fmt.Fprintf(&out, "[-]%s failed: %v\n", c.name, err)
			failed = true
		} else {
			fmt.Fprintf(&out, "[+]%s ok\n", c.name)
		}
	}
	if failed {
		s.lg.Warn("health check failed", zap.String("path", path), zap.String("reason", out.String()))
		http.Error(w, out.String(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, ok := r.URL.Query()["verbose"]; ok {
		fmt.Fprint(w, out.String())
	}
	fmt.Fprint(w, "ok\n")
}

// readCheck is etcd's serializable_read and linearizable_read check.
func (s *Server) readCheck(serializable bool) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := s.cfg.Backend.HealthRead(ctx, serializable); err != nil {
			return errors.New(rpctypes.ErrorDesc(toGRPCError(err)))
		}
		return nil
	}
}

// alarmCheck is etcd's data_corruption check: it fails while an alarm
// of type t is raised.
func (s *Server) alarmCheck(t pb.AlarmType) func(context.Context) error {
	return func(ctx context.Context) error {
		alarms, err := s.cfg.Backend.Alarms(ctx)
		if err != nil {
			return errors.New(rpctypes.ErrorDesc(toGRPCError(err)))
		}
		for _, a := range alarms {
			if a.GetAlarm() == t {
				return fmt.Errorf("alarm activated: %s", t)
			}
		}
		return nil
	}
}

// learnerCheck is etcd's non_learner check.
func (s *Server) learnerCheck(ctx context.Context) error {
	learner, err := s.cfg.Backend.IsLearner(ctx)
	if err != nil {
		return errors.New(rpctypes.ErrorDesc(toGRPCError(err)))
	}
	if learner {
		return errors.New("not supported for learner")
	}
	return nil
}

// querySet is the set of the query parameter's non-empty values.
func querySet(r *http.Request, name string) map[string]bool {
	set := make(map[string]bool)
	for _, v := range r.URL.Query()[name] {
		if v != "" {
			set[v] = true
		}
	}
	return set
}

// onlyGet answers 405 to anything but GET, HEAD included, as etcd's
// probes and /version do.
func onlyGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet {
		return true
	}
	w.Header().Set("Allow", http.MethodGet)
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

// versions is the /version body: etcd's fields, in etcd's order, then
// Cairn's own version and the git version it was built from.
type versions struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
	Storage string `json:"storage"`
	Cairn   string `json:"cairn"`
	Git     string `json:"git,omitempty"`
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	if !onlyGet(w, r) {
		return
	}
	v := versions{Server: s.cfg.ServerVersion, Cluster: s.cfg.ClusterVersion, Storage: s.storageVersion, Cairn: s.cfg.CairnVersion, Git: s.cfg.GitVersion}
	if vr, ok := s.cfg.Backend.(VersionReporter); ok {
		cluster, storage, err := vr.Versions(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		// etcd reports "not_decided" before the cluster version is set.
		v.Cluster, v.Storage = cmp.Or(cluster, "not_decided"), cmp.Or(storage, "unknown")
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only plain string structs are passed in
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}
