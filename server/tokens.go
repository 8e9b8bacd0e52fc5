package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/clock"
)

// Auth tokens, as etcd's --auth-token makes them. Simple tokens are
// assigned through raft ("<16 random letters>.<raft index>", so every
// member knows them once it has applied that index) and expire after
// --auth-token-ttl without use, on this member's clock; JWTs are signed by
// the member that authenticated the user and carry the user and the auth
// revision.

// ErrInvalidAuthOpts: a bad --auth-token value (etcd's text).
var ErrInvalidAuthOpts = errors.New("auth: invalid auth options")

// DefaultAuthTokenTTL is etcd's --auth-token-ttl default.
const DefaultAuthTokenTTL = 300 * time.Second

// tokenProvider makes and reads tokens.
type tokenProvider interface {
	// prefix is the simple-token prefix of a new login, "" for JWT.
	prefix() (string, error)
	// info reads a token: the user and the revision it stands for; rev
	// is the store's current revision (what a simple token stands for).
	info(token string, rev uint64) (*auth.Info, bool)
	// sign makes the token of a login the log accepted (JWT only).
	sign(user string, rev uint64) (string, error)
	// simple tells whether tokens are assigned through raft.
	simple() bool
}

// newTokenProvider parses --auth-token: "simple" or
// "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=...".
func newTokenProvider(opts string, ttl time.Duration, clk clock.Clock) (tokenProvider, error) {
	parts := strings.Split(opts, ",")
	kv := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.Contains(v, "=") {
			return nil, fmt.Errorf("%w: %q", ErrInvalidAuthOpts, p)
		}
		if _, dup := kv[k]; dup {
			return nil, fmt.Errorf("%w: %s given twice", ErrInvalidAuthOpts, k)
		}
		kv[k] = v
	}
	switch parts[0] {
	case "simple", "":
		if ttl <= 0 {
			ttl = DefaultAuthTokenTTL
		}
		return newSimpleTokens(ttl, clk), nil
	case "jwt":
		return newJWTTokens(kv, clk)
	default:
		return nil, fmt.Errorf("%w: unknown token type %q", ErrInvalidAuthOpts, parts[0])
	}
}

const tokenLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// simpleTokens is the table of simple tokens (auth.TokenSink).
type simpleTokens struct {
	ttl   time.Duration
	clock clock.Clock
	mu    sync.Mutex
	users map[string]string    // token -> user
	exp   map[string]time.Time // token -> expiry
}

func newSimpleTokens(ttl time.Duration, clk clock.Clock) *simpleTokens {
	return &simpleTokens{ttl: ttl, clock: clk, users: map[string]string{}, exp: map[string]time.Time{}}
}

func (t *simpleTokens) simple() bool { return true }

func (t *simpleTokens) prefix() (string, error) {
	b := make([]byte, 16)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(tokenLetters))))
		if err != nil {
			return "", err
		}
		b[i] = tokenLetters[n.Int64()]
	}
	return string(b), nil
}

// Assign implements auth.TokenSink; expired tokens are swept here.
func (t *simpleTokens) Assign(token, user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	for tk, e := range t.exp {
		if now.After(e) {
			delete(t.exp, tk)
			delete(t.users, tk)
		}
	}
	t.users[token] = user
	t.exp[token] = now.Add(t.ttl)
}

// InvalidateUser implements auth.TokenSink.
func (t *simpleTokens) InvalidateUser(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tk, u := range t.users {
		if u == user {
			delete(t.users, tk)
			delete(t.exp, tk)
		}
	}
}

// InvalidateAll implements auth.TokenSink.
func (t *simpleTokens) InvalidateAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.users)
	clear(t.exp)
}

// info finds a live token and extends its life by the TTL, as etcd's
// keeper does on every use.
func (t *simpleTokens) info(token string, rev uint64) (*auth.Info, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.users[token]
	if !ok {
		return nil, false
	}
	now := t.clock.Now()
	if now.After(t.exp[token]) {
		delete(t.users, token)
		delete(t.exp, token)
		return nil, false
	}
	t.exp[token] = now.Add(t.ttl)
	return &auth.Info{Username: u, Revision: rev}, true
}

func (t *simpleTokens) sign(string, uint64) (string, error) {
	return "", errors.New("auth: simple tokens are assigned through raft")
}

// simpleTokenIndex is the raft index a simple token was assigned at.
func simpleTokenIndex(token string) (uint64, bool) {
	_, idx, ok := strings.Cut(token, ".")
	if !ok || strings.Contains(idx, ".") {
		return 0, false
	}
	n, err := strconv.ParseUint(idx, 10, 64)
	return n, err == nil
}

// jwtTokens signs and verifies JWTs as etcd's do: claims username,
// revision and exp.
type jwtTokens struct {
	method     jwt.SigningMethod
	key        any // private key (or HMAC secret); a public key when verify-only
	verifyOnly bool
	ttl        time.Duration
	clock      clock.Clock
}

func newJWTTokens(kv map[string]string, clk clock.Clock) (*jwtTokens, error) {
	t := &jwtTokens{ttl: 5 * time.Minute, clock: clk}
	if v := kv["ttl"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%w: ttl: %v", ErrInvalidAuthOpts, err)
		}
		t.ttl = d
	}
	t.method = jwt.GetSigningMethod(kv["sign-method"])
	if t.method == nil {
		return nil, fmt.Errorf("%w: auth: invalid auth signature method %q", ErrInvalidAuthOpts, kv["sign-method"])
	}
	var priv, pub []byte
	var err error
	if f := kv["priv-key"]; f != "" {
		if priv, err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidAuthOpts, err)
		}
	}
	if f := kv["pub-key"]; f != "" {
		if pub, err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidAuthOpts, err)
		}
	}
	var privKey, pubKey any
	switch t.method.(type) {
	case *jwt.SigningMethodHMAC:
		if len(priv) == 0 {
			return nil, fmt.Errorf("%w: auth: missing key data", ErrInvalidAuthOpts)
		}
		t.key = priv
		return t, nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		if len(priv) > 0 {
			privKey, err = jwt.ParseRSAPrivateKeyFromPEM(priv)
		}
		if err == nil && len(pub) > 0 {
			pubKey, err = jwt.ParseRSAPublicKeyFromPEM(pub)
		}
	case *jwt.SigningMethodECDSA:
		if len(priv) > 0 {
			privKey, err = jwt.ParseECPrivateKeyFromPEM(priv)
		}
		if err == nil && len(pub) > 0 {
			pubKey, err = jwt.ParseECPublicKeyFromPEM(pub)
		}
	case *jwt.SigningMethodEd25519:
		if len(priv) > 0 {
			privKey, err = jwt.ParseEdPrivateKeyFromPEM(priv)
		}
		if err == nil && len(pub) > 0 {
			pubKey, err = jwt.ParseEdPublicKeyFromPEM(pub)
		}
	default:
		return nil, fmt.Errorf("%w: unsupported signing method %s", ErrInvalidAuthOpts, t.method.Alg())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidAuthOpts, err)
	}
	switch {
	case privKey == nil && pubKey == nil:
		return nil, fmt.Errorf("%w: auth: missing key data", ErrInvalidAuthOpts)
	case privKey == nil:
		t.key, t.verifyOnly = pubKey, true
	default:
		if pubKey != nil {
			type equaler interface{ Equal(crypto.PublicKey) bool }
			if pk, ok := pubKey.(equaler); !ok || !pk.Equal(privKey.(crypto.Signer).Public()) {
				return nil, fmt.Errorf("%w: auth: public and private keys don't match", ErrInvalidAuthOpts)
			}
		}
		t.key = privKey
	}
	return t, nil
}

func (t *jwtTokens) simple() bool            { return false }
func (t *jwtTokens) prefix() (string, error) { return "", nil }

func (t *jwtTokens) verifyKey() any {
	switch k := t.key.(type) {
	case *rsa.PrivateKey:
		return &k.PublicKey
	case *ecdsa.PrivateKey:
		return &k.PublicKey
	case ed25519.PrivateKey:
		return k.Public()
	default:
		return t.key
	}
}

func (t *jwtTokens) info(token string, _ uint64) (*auth.Info, bool) {
	parsed, err := jwt.Parse(token, func(tk *jwt.Token) (any, error) {
		if tk.Method.Alg() != t.method.Alg() {
			return nil, errors.New("invalid signing method")
		}
		return t.verifyKey(), nil
	}, jwt.WithTimeFunc(t.clock.Now))
	if err != nil || !parsed.Valid {
		return nil, false
	}
	claims, ok := parsed.Claims.(jwt.MapClaims)
	if !ok {
		return nil, false
	}
	user, ok := claims["username"].(string)
	if !ok {
		return nil, false
	}
	rev, ok := claims["revision"].(float64)
	if !ok {
		return nil, false
	}
	return &auth.Info{Username: user, Revision: uint64(rev)}, true
}

func (t *jwtTokens) sign(user string, rev uint64) (string, error) {
	if t.verifyOnly {
		return "", errors.New("auth: token signing attempted with verify-only key")
	}
	tk := jwt.NewWithClaims(t.method, jwt.MapClaims{
		"username": user,
		"revision": rev,
		"exp":      t.clock.Now().Add(t.ttl).Unix(),
	})
	return tk.SignedString(t.key)
}
