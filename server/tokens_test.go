package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cairnkv/cairn/clock"
)

// Simple tokens live --auth-token-ttl past their last use, on the
// shell's clock.
func TestSimpleTokensExpireWithoutUse(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	p, err := newTokenProvider("simple", 10*time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	st := p.(*simpleTokens)
	pre, err := p.prefix()
	if err != nil || len(pre) != 16 || strings.Trim(pre, tokenLetters) != "" {
		t.Fatalf("prefix %q: %v", pre, err)
	}
	st.Assign("a.5", "alice")
	st.Assign("b.6", "bob")
	clk.Advance(9 * time.Second)
	if ai, ok := p.info("a.5", 7); !ok || ai.Username != "alice" || ai.Revision != 7 {
		t.Fatalf("a.5 after 9s: %v %v", ai, ok)
	}
	clk.Advance(9 * time.Second) // 18s after assign, 9s after a.5's last use
	if _, ok := p.info("a.5", 7); !ok {
		t.Error("a.5, used 9s ago, expired")
	}
	if _, ok := p.info("b.6", 7); ok {
		t.Error("b.6, unused for 18s, still valid with a TTL of 10s")
	}
	clk.Advance(11 * time.Second)
	if _, ok := p.info("a.5", 7); ok {
		t.Error("a.5 still valid 11s after its last use")
	}
	st.Assign("c.8", "carol")
	st.Assign("d.9", "carol")
	st.Assign("e.10", "dave")
	st.InvalidateUser("carol")
	if _, ok := p.info("c.8", 7); ok {
		t.Error("carol's token survived InvalidateUser")
	}
	if _, ok := p.info("e.10", 7); !ok {
		t.Error("dave's token went with carol's")
	}
	st.InvalidateAll()
	if _, ok := p.info("e.10", 7); ok {
		t.Error("a token survived InvalidateAll")
	}
	if idx, ok := simpleTokenIndex("abc.42"); !ok || idx != 42 {
		t.Errorf("index of abc.42: %d %v", idx, ok)
	}
	for _, bad := range []string{"abc", "abc.x", "a.b.1"} {
		if _, ok := simpleTokenIndex(bad); ok {
			t.Errorf("%q has an index", bad)
		}
	}
}

func writeECKeys(t *testing.T) (priv, pub string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pder, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	priv, pub = filepath.Join(dir, "k"), filepath.Join(dir, "k.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// JWTs carry the user and the auth revision, expire after their ttl, and
// a member with only the public key verifies but does not sign.
func TestJWTTokens(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	priv, pub := writeECKeys(t)
	p, err := newTokenProvider("jwt,priv-key="+priv+",pub-key="+pub+",sign-method=ES256,ttl=1m", 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	if p.simple() {
		t.Fatal("jwt provider says simple")
	}
	if pre, _ := p.prefix(); pre != "" {
		t.Errorf("jwt prefix %q", pre)
	}
	tok, err := p.sign("alice", 12)
	if err != nil {
		t.Fatal(err)
	}
	ai, ok := p.info(tok, 99)
	if !ok || ai.Username != "alice" || ai.Revision != 12 {
		t.Fatalf("info: %v %v (the revision is the token's, not the store's)", ai, ok)
	}
	verifier, err := newTokenProvider("jwt,pub-key="+pub+",sign-method=ES256", 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := verifier.info(tok, 0); !ok {
		t.Error("a verify-only member refused a good token")
	}
	if _, err := verifier.sign("alice", 1); err == nil {
		t.Error("a verify-only member signed")
	}
	if _, ok := p.info(tok[:len(tok)-4]+"AAAA", 0); ok {
		t.Error("a tampered token was accepted")
	}
	otherPriv, _ := writeECKeys(t)
	other, err := newTokenProvider("jwt,priv-key="+otherPriv+",sign-method=ES256", 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := other.info(tok, 0); ok {
		t.Error("a token signed with another key was accepted")
	}
	clk.Advance(61 * time.Second)
	if _, ok := p.info(tok, 0); ok {
		t.Error("an expired token was accepted")
	}
	for _, bad := range []string{
		"jwt,sign-method=ES256",                      // no key
		"jwt,priv-key=" + priv + ",sign-method=NOPE", // unknown method
		"jwt,priv-key=" + priv + ",priv-key=" + priv, // twice
		"jwt,priv-key", // not k=v
		"jwt,priv-key=" + otherPriv + ",pub-key=" + pub + ",sign-method=ES256", // mismatched
		"jwt,priv-key=/nonexistent,sign-method=ES256",
		"jwt,priv-key=" + priv + ",sign-method=ES256,ttl=soon",
		"magic",
	} {
		if _, err := newTokenProvider(bad, 0, clk); !errors.Is(err, ErrInvalidAuthOpts) {
			t.Errorf("%q: %v, want ErrInvalidAuthOpts", bad, err)
		}
	}
}

// A JWT is verified with the configured method and key only: a token
// signed HS256 with the public key's PEM as the secret (the classic
// RS/ES-to-HS confusion) and an unsigned alg "none" token, both claiming
// root at a far revision and no expiry, are refused.
func TestJWTTokensRefuseOtherAlgorithms(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	priv, pub := writeECKeys(t)
	p, err := newTokenProvider("jwt,priv-key="+priv+",pub-key="+pub+",sign-method=ES256,ttl=1m", 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"username": "root", "revision": 1 << 40}
	hs, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"HS256 with the public key": hs, "alg none": none} {
		if ai, ok := p.info(tok, 0); ok {
			t.Errorf("%s: accepted as %v", name, ai)
		}
	}
	// An HMAC member refuses an ES256 token, even one signed by a key it
	// could otherwise verify.
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	hmac, err := newTokenProvider("jwt,priv-key="+secret+",sign-method=HS256", 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	es, err := p.sign("alice", 3)
	if err != nil {
		t.Fatal(err)
	}
	if ai, ok := hmac.info(es, 0); ok {
		t.Errorf("an HS256 member accepted an ES256 token as %v", ai)
	}
	if ai, ok := hmac.info(hs, 0); !ok || ai.Username != "root" {
		t.Errorf("an HS256 member refused its own kind of token: %v %v", ai, ok)
	}
}
