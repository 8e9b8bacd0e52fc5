package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// startSplit serves be with gRPC only on one listener and HTTP only on
// another (etcd's --listen-client-http-urls), shut down at cleanup.
func startSplit(t *testing.T, be Backend) (grpcAddr, httpAddr string) {
	t.Helper()
	s, err := New(Config{Backend: be, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	go func() { errc <- s.ServeGRPC(gl) }()
	go func() { errc <- s.ServeHTTP(hl, gl.Addr()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range 2 {
			if err := <-errc; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
	})
	return gl.Addr().String(), hl.Addr().String()
}

func TestSplitListenersServeGRPCAndHTTPApart(t *testing.T) {
	grpcAddr, httpAddr := startSplit(t, newMemBackend(t))
	if _, err := newClient(t, grpcAddr, nil).Put(ctxT(t), "foo", "bar"); err != nil {
		t.Fatalf("put on the gRPC listener: %v", err)
	}
	// The gateway on the HTTP listener forwards to the gRPC one.
	code, body, _ := httpDo(t, http.MethodPost, "http://"+httpAddr+"/v3/kv/range", `{"key":"Zm9v"}`)
	if code != http.StatusOK || !strings.Contains(body, `"value":"YmFy"`) {
		t.Fatalf("gateway range on the HTTP listener: %d %s", code, body)
	}
	for _, path := range []string{"/version", "/metrics", "/livez"} {
		if code, body, _ := httpDo(t, http.MethodGet, "http://"+httpAddr+path, ""); code != http.StatusOK {
			t.Errorf("GET %s on the HTTP listener: %d %s", path, code, body)
		}
	}
	// No HTTP/1 on the gRPC listener.
	cl := &http.Client{Timeout: 2 * time.Second}
	if resp, err := cl.Get("http://" + grpcAddr + "/version"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /version on the gRPC-only listener answered %s", resp.Status)
	}
}

func TestGatewayDisabled(t *testing.T) {
	ts := startServer(t, newMemBackend(t), func(c *Config) { c.DisableGateway = true })
	if code, body, _ := httpDo(t, http.MethodPost, "http://"+ts.addr+"/v3/kv/range", `{"key":"Zm9v"}`); code != http.StatusNotFound {
		t.Fatalf("gateway with DisableGateway: %d %s, want 404", code, body)
	}
	if code, _, _ := httpDo(t, http.MethodGet, "http://"+ts.addr+"/version", ""); code != http.StatusOK {
		t.Fatalf("/version with DisableGateway: %d", code)
	}
}

// With StopGRPCServiceOnDefrag, the health service says NOT_SERVING while
// a defragmentation runs, and SERVING again after it.
func TestStopGRPCServiceOnDefrag(t *testing.T) {
	ts := startServer(t, newMemBackend(t), func(c *Config) { c.StopGRPCServiceOnDefrag = true })
	health := healthpb.NewHealthClient(rawConn(t, ts.addr))
	ts.s.defragging(true)
	r, err := health.Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("during a defragmentation: %v %v, want NOT_SERVING", r, err)
	}
	ts.s.defragging(false)
	if _, err := newClient(t, ts.addr, nil).Defragment(ctxT(t), ts.addr); err != nil {
		t.Fatal(err)
	}
	r, err = health.Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("after a defragmentation: %v %v, want SERVING", r, err)
	}
	if n := ts.logs.FilterMessage("grpc service status changed").Len(); n != 4 {
		t.Fatalf("%d status change lines, want 4 (two defragmentations)", n)
	}
}

// A logger at debug level gets etcd's "request stats" line for every
// unary request; at info level only slow ones are logged.
func TestRequestStatsAtDebugLevel(t *testing.T) {
	for _, level := range []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel} {
		core, logs := observer.New(level)
		ts := startServer(t, newMemBackend(t), func(c *Config) {
			c.Logger = zap.New(core)
			c.WarningUnaryRequestDuration = time.Hour
		})
		if _, err := newClient(t, ts.addr, nil).Put(ctxT(t), "foo", "bar"); err != nil {
			t.Fatal(err)
		}
		stats := logs.FilterMessage("request stats").All()
		switch {
		case level == zapcore.DebugLevel && (len(stats) != 1 || stats[0].Level != zapcore.DebugLevel):
			t.Fatalf("debug level: %d request stats lines %v, want one at debug", len(stats), stats)
		case level == zapcore.InfoLevel && len(stats) != 0:
			t.Fatalf("info level: %d request stats lines, want none", len(stats))
		}
	}
}
