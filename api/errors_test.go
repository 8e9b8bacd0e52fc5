package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/internal/srcscan"
	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/server"
)

// Every exported error of the packages behind the API has a row, so no
// error of theirs reaches a client as codes.Unknown by omission.
func TestErrorTableCoversEveryExportedError(t *testing.T) {
	rows, err := srcscan.TableRows("errors.go", "errorTable")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(errorTable) {
		t.Fatalf("read %d rows of errorTable from its source, it has %d", len(rows), len(errorTable))
	}
	inTable := map[string]bool{}
	for _, r := range rows {
		inTable[r] = true
	}
	for pkg, dir := range map[string]string{"mvcc": "../mvcc", "lease": "../lease", "node": "../node", "server": "../server", "auth": "../auth"} {
		names, err := srcscan.ExportedErrors(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) == 0 {
			t.Fatalf("no exported errors found in %s", dir)
		}
		for _, n := range names {
			if !inTable[pkg+"."+n] {
				t.Errorf("%s.%s has no row in api/errors.go's errorTable", pkg, n)
			}
		}
	}
}

func TestErrorTableRowsMapWrappedErrors(t *testing.T) {
	for _, row := range errorTable {
		got := toGRPCError(fmt.Errorf("context: %w", row.err))
		if got != row.grpc {
			t.Errorf("toGRPCError(wrapped %q) = %v, want %v", row.err, got, row.grpc)
		}
		if _, ok := status.FromError(row.grpc); !ok {
			t.Errorf("row %q maps to %v, which is not a gRPC status", row.err, row.grpc)
		}
	}
}

// A request's deterministic outcome at apply is the client's fault or the
// cluster's state, never an unknown or internal failure.
func TestApplyOutcomesMapToEtcdErrors(t *testing.T) {
	for _, e := range node.ApplyOutcomes() {
		if e == auth.ErrNoPasswordUser {
			continue // etcd answers it with codes.Unknown too (it has no rpctypes error), and clients match its text
		}
		s, _ := status.FromError(toGRPCError(e))
		if c := s.Code(); c == codes.Unknown || c == codes.Internal {
			t.Errorf("apply outcome %q maps to %v", e, c)
		}
	}
}

func TestToGRPCErrorMapsLikeEtcd(t *testing.T) {
	tests := []struct {
		in       error
		wantCode codes.Code
		wantMsg  string
	}{
		{rpctypes.ErrGRPCNoLeader, codes.Unavailable, "etcdserver: no leader"},
		{server.ErrNoLeader, codes.Unavailable, "etcdserver: no leader"},
		{server.ErrCanceled, codes.Canceled, "etcdserver: request canceled"},
		{mvcc.ErrCompacted, codes.OutOfRange, "etcdserver: mvcc: required revision has been compacted"},
		{lease.ErrLeaseNotFound, codes.NotFound, "etcdserver: requested lease not found"},
		{node.ErrNoSpace, codes.ResourceExhausted, "etcdserver: mvcc: database space exceeded"},
		{node.ErrStopped, codes.Unavailable, "etcdserver: server stopped"},
		{context.Canceled, codes.Canceled, "context canceled"},
		{fmt.Errorf("node: wait: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "context deadline exceeded"},
		{errors.New("boom"), codes.Unknown, "boom"},
	}
	for _, tt := range tests {
		s, ok := status.FromError(toGRPCError(tt.in))
		if !ok || s.Code() != tt.wantCode || s.Message() != tt.wantMsg {
			t.Errorf("toGRPCError(%v) = %v %q, want %v %q", tt.in, s.Code(), s.Message(), tt.wantCode, tt.wantMsg)
		}
	}
	if toGRPCError(nil) != nil {
		t.Error("toGRPCError(nil) != nil")
	}
}

// The shell's errors carry etcd's texts, so logs and the table agree.
func TestShellErrorsCarryEtcdText(t *testing.T) {
	for _, row := range errorTable {
		if !strings.HasPrefix(row.err.Error(), "etcdserver: ") {
			continue
		}
		s, _ := status.FromError(row.grpc)
		if s.Message() != row.err.Error() {
			t.Errorf("%q maps to %q", row.err, s.Message())
		}
	}
}
