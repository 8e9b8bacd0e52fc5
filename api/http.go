package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
)

// newGatewayMux returns a grpc-gateway mux that speaks JSON as etcd's
// gateway does: proto field names (cluster_id, not clusterId), 64-bit
// integers as strings, bytes as base64, unset fields omitted, unknown
// request fields ignored.
func newGatewayMux() *runtime.ServeMux {
	return runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard,
		&runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}},
	))
}

// httpHandler is everything served over HTTP/1: the gateway under /v3/
// (and its older prefixes, see gatewayPath), /health, /livez, /readyz,
// /version, /metrics and, if enabled, /debug/pprof/.
func (s *Server) httpHandler(gwConn *grpc.ClientConn) (http.Handler, error) {
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

	mux := http.NewServeMux()
	mux.Handle("/v3/", gwmux)
	mux.HandleFunc("/health", s.serveHealth)
	mux.HandleFunc("/livez", s.serveLivez)
	mux.HandleFunc("/readyz", s.serveReadyz)
	mux.HandleFunc("/version", s.serveVersion)
	mux.Handle("/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = gatewayPath(r.URL.Path)
		mux.ServeHTTP(w, r)
	}), nil
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

// healthStatus is etcd's /health body.
type healthStatus struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// serveHealth answers GET /health as etcd: 200 {"health":"true","reason":""}
// or 503 {"health":"false","reason":"<backend error>"}.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	h, code := healthStatus{Health: "true"}, http.StatusOK
	if err := s.cfg.Backend.Health(r.Context()); err != nil {
		h, code = healthStatus{Health: "false", Reason: err.Error()}, http.StatusServiceUnavailable
		s.lg.Warn("serving /health false", zap.String("reason", h.Reason))
	}
	writeJSON(w, code, h)
}

// serveLivez answers 200 "ok" while the process serves HTTP: liveness
// must not fail for cluster-level trouble (no leader), or a supervisor
// would restart a member that cannot help it.
func (s *Server) serveLivez(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	writeText(w, http.StatusOK, "ok")
}

// serveReadyz answers as etcd's /readyz: 200 "ok" when the backend is
// healthy, else 503 naming the failed check.
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	if err := s.cfg.Backend.Health(r.Context()); err != nil {
		writeText(w, http.StatusServiceUnavailable, "[-]health failed: "+err.Error()+"\nreadyz check failed")
		return
	}
	writeText(w, http.StatusOK, "ok")
}

// versions is the /version body: etcd's fields, in etcd's order, then
// Cairn's own version.
type versions struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
	Storage string `json:"storage"`
	Cairn   string `json:"cairn"`
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, versions{Server: s.cfg.ServerVersion, Cluster: s.cfg.ClusterVersion, Storage: s.storageVersion, Cairn: s.cfg.CairnVersion})
}

// allowGet answers 405 to anything but GET (and HEAD), as etcd does.
func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", http.MethodGet)
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
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

func writeText(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprint(w, s)
}
