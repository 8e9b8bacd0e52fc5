package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/cairnkv/cairn/auth"
)

// startAuthServer is a one-member server with --client-cert-auth, root,
// alice (password alicepw, role app: read-write on app/), the no-password
// user certonly, and auth on.
func startAuthServer(t *testing.T) *Server {
	t.Helper()
	c := newTestCluster(t, 1, clusterOpts{})
	id := c.members[0].ID
	c.stop(id)
	c.startWith(id, func(cfg *Config) { cfg.ClientCertAuth, cfg.BcryptCost = true, 4 })
	s := c.server(c.waitLeader())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	steps := []func() error{
		func() error {
			_, err := s.UserAdd(ctx, &pb.AuthUserAddRequest{Name: "root", Password: "rootpw"})
			return err
		},
		func() error {
			_, err := s.UserGrantRole(ctx, &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"})
			return err
		},
		func() error { _, err := s.RoleAdd(ctx, &pb.AuthRoleAddRequest{Name: "app"}); return err },
		func() error {
			_, err := s.RoleGrantPermission(ctx, &pb.AuthRoleGrantPermissionRequest{Name: "app", Perm: &authpb.Permission{Key: []byte("app/"), RangeEnd: []byte("app0"), PermType: authpb.Permission_READWRITE}})
			return err
		},
		func() error {
			_, err := s.UserAdd(ctx, &pb.AuthUserAddRequest{Name: "alice", Password: "alicepw"})
			return err
		},
		func() error {
			_, err := s.UserGrantRole(ctx, &pb.AuthUserGrantRoleRequest{User: "alice", Role: "app"})
			return err
		},
		func() error {
			_, err := s.UserAdd(ctx, &pb.AuthUserAddRequest{Name: "certonly", Options: &authpb.UserAddOptions{NoPassword: true}})
			return err
		},
		func() error { _, err := s.AuthEnable(ctx, &pb.AuthEnableRequest{}); return err },
	}
	for i, f := range steps {
		if err := f(); err != nil {
			t.Fatalf("setup step %d: %v", i, err)
		}
	}
	return s
}

func tlsPeerContext(cn string, md metadata.MD) context.Context {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
	ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}}})
	if md != nil {
		ctx = metadata.NewIncomingContext(ctx, md)
	}
	return ctx
}

func TestAuthInfoFromTokenAndCertificate(t *testing.T) {
	s := startAuthServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Logins: the password is checked against the stored bcrypt hash.
	if _, err := s.Authenticate(ctx, &pb.AuthenticateRequest{Name: "alice", Password: "wrong"}); !errors.Is(err, auth.ErrAuthFailed) {
		t.Errorf("a wrong password: %v", err)
	}
	if _, err := s.Authenticate(ctx, &pb.AuthenticateRequest{Name: "certonly", Password: "x"}); !errors.Is(err, auth.ErrNoPasswordUser) {
		t.Errorf("a password for a no-password user: %v", err)
	}
	resp, err := s.Authenticate(ctx, &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
	if err != nil {
		t.Fatal(err)
	}
	rev := s.authStore().Revision()
	for _, md := range []metadata.MD{
		metadata.Pairs("token", resp.Token),
		metadata.Pairs("authorization", resp.Token),           // the JSON gateway's header
		metadata.Pairs("authorization", "Bearer "+resp.Token), // as etcd, "Bearer " is dropped
	} {
		ai, err := s.AuthInfo(metadata.NewIncomingContext(ctx, md))
		if err != nil || ai == nil || ai.Username != "alice" || ai.Revision != rev {
			t.Errorf("%v: %+v %v", md, ai, err)
		}
	}
	if _, err := s.AuthInfo(metadata.NewIncomingContext(ctx, metadata.Pairs("token", "nope.1"))); !errors.Is(err, auth.ErrInvalidAuthToken) {
		t.Errorf("an unknown token: %v", err)
	}

	// The certificate's Common Name, when no token is given.
	ai, err := s.AuthInfo(tlsPeerContext("certonly", metadata.MD{}))
	if err != nil || ai == nil || ai.Username != "certonly" || ai.Revision != rev {
		t.Errorf("certificate CN=certonly: %+v %v", ai, err)
	}
	ai, err = s.AuthInfo(tlsPeerContext("certonly", metadata.Pairs("token", resp.Token)))
	if err != nil || ai == nil || ai.Username != "alice" {
		t.Errorf("a token and a certificate: %+v %v (the token wins)", ai, err)
	}
	if ai, err := s.AuthInfo(tlsPeerContext("certonly", metadata.Pairs("grpcgateway-accept", "application/json"))); ai != nil || err != nil {
		t.Errorf("the gateway's own connection: %+v %v, want no user", ai, err)
	}
	s.cfg.ClientCertAuth = false
	if ai, err := s.AuthInfo(tlsPeerContext("certonly", metadata.MD{})); ai != nil || err != nil {
		t.Errorf("without --client-cert-auth: %+v %v, want no user", ai, err)
	}
	s.cfg.ClientCertAuth = true

	// Checked before proposing and at apply, with etcd's errors.
	certCtx, cancel2 := context.WithTimeout(tlsPeerContext("certonly", metadata.MD{}), 10*time.Second)
	defer cancel2()
	if _, err := s.Put(certCtx, &pb.PutRequest{Key: []byte("app/x"), Value: []byte("v")}); !errors.Is(err, auth.ErrPermissionDenied) {
		t.Errorf("certonly (no role) writing: %v", err)
	}
	aliceCtx := metadata.NewIncomingContext(ctx, metadata.Pairs("token", resp.Token))
	if _, err := s.Put(aliceCtx, &pb.PutRequest{Key: []byte("app/x"), Value: []byte("v")}); err != nil {
		t.Errorf("alice writing app/x: %v", err)
	}
	if _, err := s.Range(aliceCtx, &pb.RangeRequest{Key: []byte("other")}); !errors.Is(err, auth.ErrPermissionDenied) {
		t.Errorf("alice reading other: %v", err)
	}
	if err := s.HealthRead(ctx, false); err != nil {
		t.Errorf("the health check's read with auth on: %v (etcd's is healthy)", err)
	}
	// Deleting alice drops her tokens on the member.
	rootTok, err := s.Authenticate(ctx, &pb.AuthenticateRequest{Name: "root", Password: "rootpw"})
	if err != nil {
		t.Fatal(err)
	}
	rootCtx := metadata.NewIncomingContext(ctx, metadata.Pairs("token", rootTok.Token))
	if _, err := s.UserDelete(rootCtx, &pb.AuthUserDeleteRequest{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthInfo(aliceCtx); !errors.Is(err, auth.ErrInvalidAuthToken) {
		t.Errorf("a deleted user's token: %v", err)
	}
}
