package api

import (
	"context"
	"encoding/json"
	"expvar"
	"net/http"
	"sort"
	"time"
)

// DebugVarsBackend is optionally implemented by a Backend: the variables
// it adds to /debug/vars (server.Server adds etcd's "raft.status").
type DebugVarsBackend interface {
	DebugVars(ctx context.Context) map[string]json.Marshaler
}

// debugVarsTimeout bounds the wait for the backend's variables.
const debugVarsTimeout = 5 * time.Second

// serveDebugVars is etcd's /debug/vars on the client URLs: the process's
// expvar variables (cmdline, memstats), file_descriptor_limit and the
// backend's variables, as one JSON object in expvar's layout.
func (s *Server) serveDebugVars(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	vars := map[string]string{}
	expvar.Do(func(kv expvar.KeyValue) { vars[kv.Key] = kv.Value.String() })
	if n, ok := fdLimit(); ok {
		vars["file_descriptor_limit"] = jsonString(n)
	}
	if b, ok := s.cfg.Backend.(DebugVarsBackend); ok {
		ctx, cancel := context.WithTimeout(r.Context(), debugVarsTimeout)
		defer cancel()
		for k, v := range b.DebugVars(ctx) {
			if j, err := v.MarshalJSON(); err == nil {
				vars[k] = string(j)
			}
		}
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	buf := []byte("{\n")
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ",\n"...)
		}
		buf = append(buf, jsonString(k)...)
		buf = append(buf, ": "...)
		buf = append(buf, vars[k]...)
	}
	buf = append(buf, "\n}\n"...)
	_, _ = w.Write(buf)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
