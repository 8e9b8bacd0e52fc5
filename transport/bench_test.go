package transport

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// countingHandler counts processed messages and wakes a waiter when the
// count reaches target.
type countingHandler struct {
	mu     sync.Mutex
	cond   *sync.Cond
	n      int
	target int
}

func newCountingHandler() *countingHandler {
	h := &countingHandler{}
	h.cond = sync.NewCond(&h.mu)
	return h
}

func (h *countingHandler) ProcessSnapshot(ctx context.Context, m *raftpb.Message, db io.Reader) error {
	return ProcessInline(ctx, h, m, db)
}

func (h *countingHandler) Process(context.Context, *raftpb.Message) error {
	h.mu.Lock()
	h.n++
	if h.n >= h.target {
		h.cond.Broadcast()
	}
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) ReportUnreachable(uint64)                   {}
func (h *countingHandler) ReportSnapshot(uint64, raft.SnapshotStatus) {}
func (h *countingHandler) ReportRemoved(uint64)                       {}

// waitFor blocks until at least n messages were processed.
func (h *countingHandler) waitFor(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.target = n
	for h.n < n {
		h.cond.Wait()
	}
}

// BenchmarkHTTPSendSmall measures messages per second from one member to
// another over loopback, each a MsgApp with one 100-byte entry, sent in
// batches of 64 with at most window messages in flight (so none is dropped).
func BenchmarkHTTPSendSmall(b *testing.B) {
	const batch, window = 64, 8192
	ha, hb := newCountingHandler(), newCountingHandler()
	a := NewHTTP(HTTPConfig{ID: 1, ClusterID: 1, Handler: ha, Logger: zap.NewNop(), QueueSize: 2 * window})
	bt := NewHTTP(HTTPConfig{ID: 2, ClusterID: 1, Handler: hb, Logger: zap.NewNop()})
	srv := newBenchServer(b, bt)
	defer func() {
		a.Close()
		bt.Close()
		srv.Close()
	}()
	bt.AddPeer(1, []string{"http://127.0.0.1:1"}) // a member: the peer listener refuses strangers
	a.AddPeer(2, []string{srv.URL})
	msgs := make([]*raftpb.Message, batch)
	for i := range msgs {
		msgs[i] = appMsg(1, 2, uint64(i), 100)
	}
	// Warm up: open the stream.
	a.Send(msgs[:1])
	hb.waitFor(1)
	b.ReportAllocs()
	b.ResetTimer()
	sent := 1
	for done := 0; done < b.N; done += batch {
		if sent-window > 0 {
			hb.waitFor(sent - window)
		}
		a.Send(msgs)
		sent += batch
	}
	hb.waitFor(sent)
	b.StopTimer()
	b.ReportMetric(float64(sent-1)/b.Elapsed().Seconds(), "msgs/s")
}

func newBenchServer(b *testing.B, t *HTTP) *httptest.Server {
	b.Helper()
	mux := http.NewServeMux()
	mux.Handle(PathPrefix+"/", t.Handler())
	return httptest.NewServer(mux)
}
