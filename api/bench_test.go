package api

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
)

// These benchmarks back the choice of one-listener design (see doc.go):
// the same gRPC server reached through Cairn's connection sniffing
// (grpc.Server's own transport) versus through net/http's unencrypted
// HTTP/2 and grpc.Server.ServeHTTP.

func benchGets(b *testing.B, addr string) {
	c := newClient(b, addr, nil)
	ctx := context.Background()
	if _, err := c.Put(ctx, "bench", "value"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Get(ctx, "bench"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkUnaryGetSniffed(b *testing.B) {
	ts := startServer(b, newMemBackend(b), nil)
	benchGets(b, ts.addr)
}

func BenchmarkUnaryGetServeHTTP(b *testing.B) {
	s, err := New(Config{Backend: newMemBackend(b)})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	hs := &http.Server{
		Protocols: &protos,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				s.GRPCServer().ServeHTTP(w, r)
				return
			}
			http.NotFound(w, r)
		}),
	}
	go hs.Serve(l)
	b.Cleanup(func() { hs.Close(); s.GRPCServer().Stop() })
	benchGets(b, l.Addr().String())
}
