package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// watchStub is a Watch service that confirms each create and then holds
// the stream open until the client or the server ends it.
type watchStub struct{ pb.UnimplementedWatchServer }

func (watchStub) Watch(stream grpc.BidiStreamingServer[pb.WatchRequest, pb.WatchResponse]) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		if cr := req.GetCreateRequest(); cr != nil {
			if err := stream.Send(&pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 1}, WatchId: 5, Created: true}); err != nil {
				return err
			}
		}
	}
}

func TestGatewayStreamsWatch(t *testing.T) {
	ts := startServer(t, newMemBackend(t), func(c *Config) { c.Watch = watchStub{} })
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ts.addr+"/v3/watch",
		strings.NewReader(`{"create_request":{"key":"`+b64("foo")+`"}}`))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	want := `{"result":{"header":{"revision":"1"},"watch_id":"5","created":true}}`
	if strings.Join(strings.Fields(line), "") != want {
		t.Fatalf("first watch line = %q, want %s", line, want)
	}
}

// goroutinesSettleTo waits (bounded) for the goroutine count to drop to
// at most n, and fails with every stack if it does not.
func goroutinesSettleTo(t *testing.T, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	eventually(t, 5*time.Second, fmt.Sprintf("the goroutines to settle to %d", n), func() (bool, string) {
		if g := runtime.NumGoroutine(); g > n {
			return false, fmt.Sprintf("%d remain:\n%s", g, buf[:runtime.Stack(buf, true)])
		}
		return true, ""
	})
}

func TestShutdownLeavesNoGoroutinesBehind(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		s, err := New(Config{Backend: newMemBackend(t), Watch: watchStub{}})
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve(l) }()
		addr := l.Addr().String()

		c := newClient(t, addr, nil)
		ctx := ctxT(t)
		if _, err := c.Put(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
		rc, err := c.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
		ts := &testServer{addr: addr}
		postJSON(t, ts, "/v3/kv/range", `{"key":"`+b64("k")+`"}`)
		httpDo(t, http.MethodGet, "http://"+addr+"/health", "")
		// A connection that never says anything is dropped on shutdown.
		idle, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		c.Close()

		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve = %v", err)
		}
	}()
	goroutinesSettleTo(t, before)
}

func TestShutdownCutsOpenStreamsWhenContextEnds(t *testing.T) {
	s, err := New(Config{Backend: newMemBackend(t), Watch: watchStub{}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()

	w, err := pb.NewWatchClient(rawConn(t, l.Addr().String())).Watch(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("k")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}

	// The watch never ends by itself, so a graceful stop cannot finish:
	// an expired context makes Shutdown cut it and say so.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := w.Recv(); err == nil {
		t.Fatal("watch stream still open after forced shutdown")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}
