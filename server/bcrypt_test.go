package server

import (
	"encoding/base64"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Passwords are hashed at --bcrypt-cost, and at etcd's default (10) when it
// is unset or out of bcrypt's range.
func TestPasswordsHashedAtTheConfiguredCost(t *testing.T) {
	for _, c := range []struct{ set, want int }{{0, 10}, {4, 4}, {12, 12}, {3, 10}, {40, 10}} {
		s := &Server{cfg: Config{BcryptCost: c.set}}
		h, err := s.hashPassword("pw")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		cost, err := bcrypt.Cost(raw)
		if err != nil || cost != c.want {
			t.Errorf("--bcrypt-cost %d: hashed at cost %d (%v), want %d", c.set, cost, err, c.want)
		}
		if bcrypt.CompareHashAndPassword(raw, []byte("pw")) != nil {
			t.Errorf("--bcrypt-cost %d: the hash does not match its password", c.set)
		}
	}
}
