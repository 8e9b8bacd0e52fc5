package e2e

import (
	"encoding/base64"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/crypto/bcrypt"
)

// TestAuthCompatChangePasswordKeepsAGivenHash: as etcd, a password change
// that carries no password but a hashed_password (base64 bcrypt) sets that
// hash, and one that carries neither leaves the user with no password
// anyone can log in with. Cairn hashed the empty password instead: after
// such a change the user logged in with an empty password, and not with
// the one hashed. Against etcd too.
func TestAuthCompatChangePasswordKeepsAGivenHash(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	root := authSetup(t, c)
	authc := pb.NewAuthClient(root.ActiveConnection()) // carries root's token
	login := func(pw string) error {
		_, err := pb.NewAuthClient(c.Client(t).ActiveConnection()).Authenticate(ctx(t), &pb.AuthenticateRequest{Name: "alice", Password: pw})
		return rpctypes.Error(err)
	}
	h, err := bcrypt.GenerateFromPassword([]byte("hashedpw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authc.UserChangePassword(ctx(t), &pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: base64.StdEncoding.EncodeToString(h)}); err != nil {
		t.Fatalf("changing alice's password to a hash: %v", err)
	}
	if err := login("hashedpw"); err != nil {
		t.Errorf("alice with the password hashed: %v", err)
	}
	wantErr(t, "alice with an empty password", login(""), rpctypes.ErrAuthFailed)
	wantErr(t, "alice with her old password", login("alicepw"), rpctypes.ErrAuthFailed)

	if _, err := authc.UserChangePassword(ctx(t), &pb.AuthUserChangePasswordRequest{Name: "alice"}); err != nil {
		t.Fatalf("changing alice's password to nothing: %v", err)
	}
	wantErr(t, "alice with an empty password after a change to nothing", login(""), rpctypes.ErrAuthFailed)
	wantErr(t, "alice with the hashed password after a change to nothing", login("hashedpw"), rpctypes.ErrAuthFailed)

	// A password still works as before.
	if _, err := root.UserChangePassword(ctx(t), "alice", "again"); err != nil {
		t.Fatal(err)
	}
	if err := login("again"); err != nil {
		t.Errorf("alice with a password set in clear: %v", err)
	}
}
