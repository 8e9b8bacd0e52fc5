package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/internal/testcerts"
	"github.com/cairnkv/cairn/internal/tlsconf"
)

// startTLS serves be over TLS on one listener (gRPC, gateway and HTTP),
// with client certificates required when mtls, and returns its address.
func startTLS(t *testing.T, be Backend, ca *testcerts.CA, mtls bool, mod func(*Config)) string {
	t.Helper()
	// The gateway presents the server's certificate to its own listener,
	// as etcd's does: with mTLS it must be good for client auth too.
	srv := ca.Peer(t, "server")
	side, err := tlsconf.New(config.TLSInfo{CertFile: srv.CertFile, KeyFile: srv.KeyFile, TrustedCAFile: ca.CertFile, ClientCertAuth: mtls},
		tlsconf.Common{}, tlsconf.ClientFlags, "client", "", nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Backend: be, Logger: zap.NewNop()}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		errc <- s.ServeListener(side.Listener(l), ListenOptions{GRPC: true, HTTP: true, TLS: side.ServerConfig(), GatewayCreds: side.SelfGRPCCredentials()})
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("ServeListener returned %v", err)
		}
	})
	return l.Addr().String()
}

func clientTLS(t *testing.T, ca *testcerts.CA, cert *testcerts.Pair) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	data, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(data)
	c := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if cert != nil {
		c.Certificates = []tls.Certificate{cert.TLS(t)}
	}
	return c
}

func httpsDo(t *testing.T, tc *tls.Config, method, url, body string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestTLSListenerServesGRPCGatewayAndHealthOnOnePort: over TLS, clientv3,
// the JSON gateway (HTTP/1.1 and HTTP/2), /health, /version and /metrics
// share the port, as etcd's; a client certificate is required with mTLS
// and reaches the services as the peer's TLS credentials.
func TestTLSListenerServesGRPCGatewayAndHealthOnOnePort(t *testing.T) {
	ca := testcerts.NewCA(t)
	alice := ca.Client(t, "alice")
	addr := startTLS(t, newMemBackend(t), ca, true, nil)

	c := newClient(t, addr, func(c *clientv3.Config) { c.TLS = clientTLS(t, ca, &alice) })
	if _, err := c.Put(ctxT(t), "foo", "bar"); err != nil {
		t.Fatalf("put over mTLS: %v", err)
	}
	for _, h2 := range []bool{false, true} {
		tc := clientTLS(t, ca, &alice)
		if !h2 {
			tc.NextProtos = []string{"http/1.1"}
		}
		code, body, err := httpsDo(t, tc, http.MethodPost, "https://"+addr+"/v3/kv/range", `{"key":"Zm9v"}`)
		if err != nil || code != http.StatusOK || !strings.Contains(body, `"value":"YmFy"`) {
			t.Fatalf("gateway range over TLS (h2 %v): %d %s %v", h2, code, body, err)
		}
		for _, path := range []string{"/health", "/version", "/metrics"} {
			if code, body, err := httpsDo(t, tc, http.MethodGet, "https://"+addr+path, ""); err != nil || code != http.StatusOK {
				t.Errorf("GET %s over TLS (h2 %v): %d %s %v", path, h2, code, body, err)
			}
		}
	}
	// No certificate, a certificate of another CA, an expired one, or
	// plaintext: refused.
	other := testcerts.NewCA(t).Client(t, "alice")
	expired := ca.Client(t, "alice", testcerts.Expired())
	for name, tc := range map[string]*tls.Config{
		"no cert": clientTLS(t, ca, nil), "other CA": clientTLS(t, ca, &other), "expired": clientTLS(t, ca, &expired),
	} {
		if code, _, err := httpsDo(t, tc, http.MethodGet, "https://"+addr+"/health", ""); err == nil {
			t.Errorf("%s: GET /health answered %d", name, code)
		}
	}
	if code, _, err := httpsDo(t, nil, http.MethodGet, "http://"+addr+"/health", ""); err == nil && code == http.StatusOK {
		t.Error("plaintext GET /health answered 200 on the TLS port")
	}
}

// TestTLSGRPCSeesClientCertificate: a gRPC service behind a TLS listener
// finds the client's verified certificate in the peer's AuthInfo, on the
// shared port and on a gRPC-only one (what CN-as-user needs).
func TestTLSGRPCSeesClientCertificate(t *testing.T) {
	ca := testcerts.NewCA(t)
	alice := ca.Client(t, "alice")
	var cn atomic.Value
	cn.Store("")
	for _, grpcOnly := range []bool{false, true} {
		srv := ca.Peer(t, "server")
		side, err := tlsconf.New(config.TLSInfo{CertFile: srv.CertFile, KeyFile: srv.KeyFile, TrustedCAFile: ca.CertFile, ClientCertAuth: true},
			tlsconf.Common{}, tlsconf.ClientFlags, "client", "", nil, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{Backend: newMemBackend(t), Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		cn.Store("")
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		registerPeerProbe(s.GRPCServer(), &cn)
		o := ListenOptions{GRPC: true, HTTP: !grpcOnly, TLS: side.ServerConfig(), GatewayCreds: side.SelfGRPCCredentials()}
		errc := make(chan error, 1)
		go func() { errc <- s.ServeListener(side.Listener(l), o) }()
		conn, err := grpc.NewClient("passthrough:///"+l.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(t, ca, &alice))))
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Invoke(ctxT(t), "/cairn.test.PeerProbe/Probe", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}); err != nil {
			t.Fatalf("grpcOnly %v: probe: %v", grpcOnly, err)
		}
		if got := cn.Load().(string); got != "alice" {
			t.Errorf("grpcOnly %v: the service saw CN %q, want alice", grpcOnly, got)
		}
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		cancel()
		<-errc
	}
}

// registerPeerProbe registers a one-method service that stores the CN of
// the caller's verified client certificate.
func registerPeerProbe(gs *grpc.Server, cn *atomic.Value) {
	gs.RegisterService(&grpc.ServiceDesc{
		ServiceName: "cairn.test.PeerProbe",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Probe", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(&healthpb.HealthCheckRequest{}); err != nil {
				return nil, err
			}
			if p, ok := peer.FromContext(ctx); ok {
				if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
					cn.Store(ti.State.VerifiedChains[0][0].Subject.CommonName)
				}
			}
			return &healthpb.HealthCheckResponse{}, nil
		}}},
	}, struct{}{})
}
