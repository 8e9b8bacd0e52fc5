package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// etcd_server_client_requests_total counts calls by type and by the client
// API version the client sends (clientv3 sends its own), "unknown" for a
// client that sends none.
func TestClientRequestsCountedByAPIVersion(t *testing.T) {
	ts := startServer(t, newMemBackend(t), nil)
	value := func(labels string) float64 {
		code, body, _ := httpDo(t, http.MethodGet, "http://"+ts.addr+"/metrics", "")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		if strings.Contains(body, "etcd_server_client_requests_total{") && !strings.Contains(body, "# TYPE etcd_server_client_requests_total counter\n") {
			t.Fatal("etcd_server_client_requests_total is not a counter")
		}
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, "etcd_server_client_requests_total{"+labels+"} "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
		}
		return 0
	}
	api := version.APIVersion
	unary := `client_api_version="` + api + `",type="unary"`
	stream := `client_api_version="` + api + `",type="stream"`
	c := newClient(t, ts.addr, nil)
	ctx := ctxT(t)
	u0, s0 := value(unary), value(stream)
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if v := value(unary); v != u0+2 {
		t.Errorf("etcd_server_client_requests_total{%s} = %v after a put and a get, want %v", unary, v, u0+2)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := c.Watch(wctx, "k")
	if _, err := c.Put(ctx, "k", "w"); err != nil {
		t.Fatal(err)
	}
	<-wch
	if v := value(stream); v != s0+1 {
		t.Errorf("etcd_server_client_requests_total{%s} = %v after a watch, want %v", stream, v, s0+1)
	}

	// A plain gRPC client sends no version.
	cc, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	unknown := `client_api_version="unknown",type="unary"`
	k0 := value(unknown)
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if v := value(unknown); v != k0+1 {
		t.Errorf("etcd_server_client_requests_total{%s} = %v after a health check, want %v", unknown, v, k0+1)
	}
}
