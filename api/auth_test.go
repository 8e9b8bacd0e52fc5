package api

import (
	"context"
	"errors"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/cairnkv/cairn/auth"
)

// Every method in the table is a method of etcd's services (a typo would
// leave a call unchecked).
func TestAuthChecksNameRealMethods(t *testing.T) {
	for m := range authChecks {
		parts := strings.Split(strings.TrimPrefix(m, "/"), "/")
		if len(parts) != 2 {
			t.Errorf("%q is not /service/method", m)
			continue
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(parts[0]))
		if err != nil {
			t.Errorf("%s: no service %s: %v", m, parts[0], err)
			continue
		}
		if d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(parts[1])) == nil {
			t.Errorf("%s: %s has no method %s", m, parts[0], parts[1])
		}
	}
}

type recordingGate struct{ calls []string }

func (g *recordingGate) AuthAdmin(context.Context) error {
	g.calls = append(g.calls, "admin")
	return auth.ErrPermissionDenied
}

func (g *recordingGate) AuthRequireUser(context.Context) error {
	g.calls = append(g.calls, "user")
	return auth.ErrUserEmpty
}

func (g *recordingGate) AuthWatchPermitted(context.Context, []byte, []byte) error { return nil }

// etcd's API-layer checks per call, with etcd's errors.
func TestAuthChecksPerMethod(t *testing.T) {
	for _, tt := range []struct {
		method string
		req    any
		want   string // the gate's check, "" for none here
	}{
		{"/etcdserverpb.KV/Range", &pb.RangeRequest{}, ""},
		{"/etcdserverpb.KV/Put", &pb.PutRequest{}, ""},
		{"/etcdserverpb.KV/Compact", &pb.CompactionRequest{}, "admin"},
		{"/etcdserverpb.Maintenance/Status", &pb.StatusRequest{}, "user"},
		{"/etcdserverpb.Maintenance/Alarm", &pb.AlarmRequest{Action: pb.AlarmRequest_GET}, "user"},
		{"/etcdserverpb.Maintenance/Alarm", &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE}, "admin"},
		{"/etcdserverpb.Maintenance/Snapshot", nil, "admin"},
		{"/etcdserverpb.Cluster/MemberList", &pb.MemberListRequest{}, "user"},
		{"/etcdserverpb.Cluster/MemberRemove", &pb.MemberRemoveRequest{}, "admin"},
		{"/etcdserverpb.Lease/LeaseGrant", &pb.LeaseGrantRequest{}, "user"},
		{"/etcdserverpb.Auth/Authenticate", &pb.AuthenticateRequest{}, ""},
	} {
		g := &recordingGate{}
		err := runAuthCheck(g, context.Background(), tt.method, tt.req)
		got := strings.Join(g.calls, ",")
		if got != tt.want {
			t.Errorf("%s %v: checks %q, want %q", tt.method, tt.req, got, tt.want)
		}
		switch tt.want {
		case "admin":
			if !errors.Is(err, rpctypes.ErrGRPCPermissionDenied) {
				t.Errorf("%s: %v, want etcd's permission denied", tt.method, err)
			}
		case "user":
			if !errors.Is(err, rpctypes.ErrGRPCUserEmpty) {
				t.Errorf("%s: %v, want etcd's user name is empty", tt.method, err)
			}
		default:
			if err != nil {
				t.Errorf("%s: %v", tt.method, err)
			}
		}
	}
}
