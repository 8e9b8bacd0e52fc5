package server

import (
	"context"
	"encoding/json"

	"go.etcd.io/raft/v3"
)

// DebugVars are the member's variables in /debug/vars (api.DebugVarsBackend):
// "raft.status", this member's raft status in the JSON etcd publishes
// under that name (null once the member has stopped).
func (s *Server) DebugVars(ctx context.Context) map[string]json.Marshaler {
	var st raft.Status
	if err := s.onLoop(ctx, func() { st = s.core.Status() }); err != nil {
		return map[string]json.Marshaler{"raft.status": json.RawMessage("null")}
	}
	return map[string]json.Marshaler{"raft.status": st}
}
