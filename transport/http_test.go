package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cairnkv/cairn/internal/testutil"
)

const testClusterID = 0xc1

// httpMember is one HTTP transport served by an httptest server.
type httpMember struct {
	id   uint64
	tr   *HTTP
	rec  *recorder
	srv  *httptest.Server
	logs *observer.ObservedLogs
}

func (m *httpMember) url() string { return m.srv.URL }

// close stops the transport, then the server.
func (m *httpMember) close() {
	m.tr.Close()
	m.srv.CloseClientConnections()
	m.srv.Close()
}

func startMember(t testing.TB, id, clusterID uint64, queueSize int) *httpMember {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	m := &httpMember{id: id, rec: newRecorder(), logs: logs}
	m.tr = NewHTTP(HTTPConfig{
		ID:        id,
		ClusterID: clusterID,
		Handler:   m.rec,
		Logger:    zap.New(core),
		QueueSize: queueSize,
	})
	mux := http.NewServeMux()
	mux.Handle(PathPrefix+"/", m.tr.Handler())
	m.srv = httptest.NewServer(mux)
	t.Cleanup(m.close)
	return m
}

// connect makes every member a peer of every other, and waits until
// every stream is open: a member refuses a stream from a sender it
// does not know yet, and a sender drops what it is given while it backs
// off, so a test's first messages could be lost otherwise.
func connect(t testing.TB, ms ...*httpMember) {
	t.Helper()
	for _, a := range ms {
		for _, b := range ms {
			if a != b {
				a.tr.AddPeer(b.id, []string{b.url()})
			}
		}
	}
	for _, a := range ms {
		for _, b := range ms {
			// Members of different clusters never get a stream.
			if a == b || a.tr.cfg.ClusterID != b.tr.cfg.ClusterID {
				continue
			}
			eventually(t, waitLimit, fmt.Sprintf("a stream from %d to %d", a.id, b.id), func() (bool, string) {
				return !a.tr.ActiveSince(b.id).IsZero(), "none yet"
			})
		}
	}
}

// eventually waits for a state the test cannot be told about.
var eventually = testutil.Eventually

// waitLog waits until a log entry whose message contains substr appears.
func waitLog(t testing.TB, logs *observer.ObservedLogs, substr string) observer.LoggedEntry {
	t.Helper()
	var e observer.LoggedEntry
	eventually(t, waitLimit, fmt.Sprintf("a log entry containing %q", substr), func() (bool, string) {
		es := logs.FilterMessageSnippet(substr).All()
		if len(es) == 0 {
			return false, fmt.Sprintf("%d other entries", logs.Len())
		}
		e = es[0]
		return true, ""
	})
	return e
}

func TestHTTPDeliversBothWaysInOrder(t *testing.T) {
	a := startMember(t, 1, testClusterID, 0)
	b := startMember(t, 2, testClusterID, 0)
	c := startMember(t, 3, testClusterID, 0)
	connect(t, a, b, c)
	const n = 300
	for i := uint64(0); i < n; i++ {
		a.tr.Send([]*raftpb.Message{appMsg(1, 2, i, 100), appMsg(1, 3, 5000+i, 10)})
		b.tr.Send([]*raftpb.Message{appMsg(2, 1, 1000+i, 100)})
		c.tr.Send([]*raftpb.Message{appMsg(3, 1, 2000+i, 100)})
	}
	checkInOrder(t, b.rec.waitMsgs(t, n), 1, 2, 0, 100)
	checkInOrder(t, c.rec.waitMsgs(t, n), 1, 3, 5000, 10)
	got := a.rec.waitMsgs(t, 2*n)
	var from2, from3 []*raftpb.Message
	for _, m := range got {
		if m.GetFrom() == 2 {
			from2 = append(from2, m)
		} else {
			from3 = append(from3, m)
		}
	}
	checkInOrder(t, from2, 2, 1, 1000, 100)
	checkInOrder(t, from3, 3, 1, 2000, 100)
	if len(from2) != n || len(from3) != n {
		t.Fatalf("member 1 got %d from 2 and %d from 3, want %d each", len(from2), len(from3), n)
	}
	for _, m := range []*httpMember{a, b, c} {
		m.rec.mu.Lock()
		u := m.rec.unreachable
		m.rec.mu.Unlock()
		if len(u) != 0 {
			t.Errorf("member %d got unreachable reports %v, want none", m.id, u)
		}
	}
}

func TestHTTPLargeBatchArrivesCompleteAndOrdered(t *testing.T) {
	const n = 10000
	a := startMember(t, 1, testClusterID, 2*n)
	b := startMember(t, 2, testClusterID, 0)
	connect(t, a, b)
	batch := make([]*raftpb.Message, n)
	for i := range batch {
		batch[i] = appMsg(1, 2, uint64(i), 100)
	}
	a.tr.Send(batch)
	got := b.rec.waitMsgs(t, n)
	if len(got) != n {
		t.Fatalf("got %d messages, want %d", len(got), n)
	}
	checkInOrder(t, got, 1, 2, 0, 100)
}

func TestHTTPLargeSnapshotArrivesIntactAndReportsFinish(t *testing.T) {
	a := startMember(t, 1, testClusterID, 0)
	b := startMember(t, 2, testClusterID, 0)
	connect(t, a, b)
	data := make([]byte, 20<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, data)})
	got := b.rec.waitMsgs(t, 1)
	if got[0].GetType() != raftpb.MsgSnap {
		t.Fatalf("got %v, want MsgSnap", got[0].GetType())
	}
	if !bytes.Equal(got[0].GetSnapshot().GetData(), data) {
		t.Fatalf("snapshot data differs: got %d bytes, want %d", len(got[0].GetSnapshot().GetData()), len(data))
	}
	if idx := got[0].GetSnapshot().GetMetadata().GetIndex(); idx != 1000 {
		t.Fatalf("snapshot index %d, want 1000", idx)
	}
	snaps := a.rec.waitSnap(t, 1)
	if want := (snapReport{2, raft.SnapshotFinish}); len(snaps) != 1 || snaps[0] != want {
		t.Fatalf("snapshot reports %v, want [%v]", snaps, want)
	}
	// Size and progress are logged on both sides.
	sent := waitLog(t, a.logs, "sent snapshot")
	recv := waitLog(t, b.logs, "received snapshot")
	size := sent.ContextMap()["size-bytes"].(int64)
	if size <= int64(len(data)) || recv.ContextMap()["size-bytes"].(int64) != size {
		t.Fatalf("logged sizes: sent %v, received %v; want equal and above %d", sent.ContextMap(), recv.ContextMap(), len(data))
	}
	for _, c := range []struct {
		logs  *observer.ObservedLogs
		msg   string
		field string
	}{{a.logs, "sending snapshot: progress", "sent-bytes"}, {b.logs, "receiving snapshot: progress", "received-bytes"}} {
		var marks []int64
		for _, e := range c.logs.FilterMessage(c.msg).All() {
			marks = append(marks, e.ContextMap()[c.field].(int64))
		}
		want := []int64{4 << 20, 8 << 20, 12 << 20, 16 << 20, 20 << 20, size}
		if !equalInts(marks, want) {
			t.Errorf("%q marks %v, want %v", c.msg, marks, want)
		}
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHTTPSnapshotRejectedByHandlerReportsFailure(t *testing.T) {
	a := startMember(t, 1, testClusterID, 0)
	b := startMember(t, 2, testClusterID, 0)
	connect(t, a, b)
	b.rec.mu.Lock()
	b.rec.processErr = errors.New("no space for snapshot")
	b.rec.mu.Unlock()
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, []byte("data"))})
	snaps := a.rec.waitSnap(t, 1)
	if want := (snapReport{2, raft.SnapshotFailure}); snaps[0] != want {
		t.Fatalf("snapshot report %v, want %v", snaps[0], want)
	}
	e := waitLog(t, a.logs, "failed to send snapshot")
	if !strings.Contains(e.ContextMap()["error"].(string), "no space for snapshot") {
		t.Fatalf("failure log %v does not carry the peer's reason", e.ContextMap())
	}
}

func TestHTTPClusterIDMismatchIsRejected(t *testing.T) {
	a := startMember(t, 1, testClusterID, 0)
	b := startMember(t, 2, testClusterID+1, 0)
	connect(t, a, b)
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 1, 10), snapMsg(1, 2, []byte("x"))})
	e := waitLog(t, a.logs, "stream to peer failed")
	if msg := e.ContextMap()["error"].(string); !strings.Contains(msg, "cluster ID mismatch") || !strings.Contains(msg, "412") {
		t.Fatalf("sender logged %q, want a 412 cluster ID mismatch", msg)
	}
	waitLog(t, b.logs, "refused request from a member of another cluster")
	snaps := a.rec.waitSnap(t, 1)
	if want := (snapReport{2, raft.SnapshotFailure}); snaps[0] != want {
		t.Fatalf("snapshot report %v, want %v", snaps[0], want)
	}
	a.rec.waitUnreachable(t, 2)
	// b refuses a's streams too, the other way round.
	b.tr.Send([]*raftpb.Message{appMsg(2, 1, 1, 10)})
	waitLog(t, b.logs, "stream to peer failed")

	// A raw request gets 412 with a clear message.
	req, _ := http.NewRequest(http.MethodPost, b.url()+StreamPath, strings.NewReader(""))
	req.Header.Set(HeaderClusterID, idString(testClusterID))
	req.Header.Set(HeaderFrom, "1")
	req.Header.Set(HeaderTo, "2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPreconditionFailed || resp.Header.Get(HeaderReject) != "cluster-id" {
		t.Fatalf("got %s with reject %q, want 412 cluster-id", resp.Status, resp.Header.Get(HeaderReject))
	}
	if c := a.rec.count() + b.rec.count(); c != 0 {
		t.Fatalf("%d messages delivered across clusters, want 0", c)
	}
}

func TestHTTPStreamErrorWrapsSentinel(t *testing.T) {
	a := startMember(t, 1, testClusterID, 0)
	b := startMember(t, 2, testClusterID+1, 0)
	c := startMember(t, 3, testClusterID, 0)
	connect(t, a, b)
	a.tr.mu.Lock()
	pb := a.tr.peers[2]
	a.tr.mu.Unlock()
	if _, err := pb.dial(b.url()); !errors.Is(err, ErrClusterIDMismatch) {
		t.Fatalf("dial to another cluster: %v, want ErrClusterIDMismatch", err)
	}
	// The URL of member 3 reached under the ID of member 2.
	if _, err := pb.dial(c.url()); !errors.Is(err, ErrMemberIDMismatch) {
		t.Fatalf("dial to another member: %v, want ErrMemberIDMismatch", err)
	}
}

func TestHTTPRestartedPeerOnNewURLGetsMessagesAgain(t *testing.T) {
	a := startMember(t, 1, testClusterID, 0)
	b := startMember(t, 2, testClusterID, 0)
	connect(t, a, b)
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 0, 10)})
	b.rec.waitMsgs(t, 1)

	b.close()
	b2 := startMember(t, 2, testClusterID, 0)
	b2.tr.AddPeer(1, []string{a.url()})
	a.tr.UpdatePeer(2, []string{b2.url()})
	// Messages sent while the stream moves may be lost; keep sending until
	// one arrives, then everything after it arrives in order.
	var i uint64 = 1
	eventually(t, waitLimit, "a message at the restarted peer", func() (bool, string) {
		if b2.rec.count() > 0 {
			return true, ""
		}
		a.tr.Send([]*raftpb.Message{appMsg(1, 2, i, 10)})
		i++
		return false, fmt.Sprintf("%d sent", i-1)
	})
	first := b2.rec.waitMsgs(t, 1)[0].GetIndex()
	for j := i; j < i+100; j++ {
		a.tr.Send([]*raftpb.Message{appMsg(1, 2, j, 10)})
	}
	got := b2.rec.waitMsgs(t, int(i+100-first))
	checkInOrder(t, got, 1, 2, first, 10)
	// And the other way.
	b2.tr.Send([]*raftpb.Message{appMsg(2, 1, 77, 10)})
	checkInOrder(t, a.rec.waitMsgs(t, 1), 2, 1, 77, 10)
}

func TestHTTPPeerURLFallsBackToSecondURL(t *testing.T) {
	a := startMember(t, 1, testClusterID, 0)
	b := startMember(t, 2, testClusterID, 0)
	a.tr.AddPeer(2, []string{deadURL(t), b.url()})
	b.tr.AddPeer(1, []string{a.url()})
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, []byte("s"))})
	a.rec.waitSnap(t, 1)
	// Until the stream to the second URL is up, messages may be dropped:
	// keep sending until some arrive.
	eventually(t, waitLimit, "messages at the peer behind its second URL", func() (bool, string) {
		if n := b.rec.count(); n < 2 {
			a.tr.Send([]*raftpb.Message{appMsg(1, 2, 1, 10)})
			return false, fmt.Sprintf("%d messages", n)
		}
		return true, ""
	})
	if snaps := a.rec.waitSnap(t, 1); snaps[0] != (snapReport{2, raft.SnapshotFinish}) {
		t.Fatalf("snapshot report %v, want finish", snaps[0])
	}
}

// deadURL returns the URL of a port that refuses connections.
func deadURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestHTTPDeadPeerReportsUnreachableWithoutBlocking(t *testing.T) {
	a := startMember(t, 1, testClusterID, 16)
	a.tr.AddPeer(2, []string{deadURL(t)})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := uint64(0); i < 10000; i++ {
			a.tr.Send([]*raftpb.Message{appMsg(1, 2, i, 100)})
		}
		a.tr.Send([]*raftpb.Message{snapMsg(1, 2, []byte("snap"))})
	}()
	select {
	case <-sent:
	case <-time.After(waitLimit):
		t.Fatalf("Send to a dead peer did not return within %v", waitLimit)
	}
	a.rec.waitUnreachable(t, 2)
	if snaps := a.rec.waitSnap(t, 1); snaps[0] != (snapReport{2, raft.SnapshotFailure}) {
		t.Fatalf("snapshot report %v, want failure", snaps[0])
	}
	// A message sent after the stream failed is dropped and reported too.
	a.rec.mu.Lock()
	a.rec.unreachable = nil
	a.rec.mu.Unlock()
	waitLog(t, a.logs, "stream to peer failed")
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 1, 1)})
	a.rec.waitUnreachable(t, 2)
}

func TestHTTPBlackholePeerDoesNotBlockSend(t *testing.T) {
	// A peer that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	a := startMember(t, 1, testClusterID, 8)
	a.tr.AddPeer(2, []string{"http://" + l.Addr().String()})
	for i := uint64(0); i < 100; i++ {
		a.tr.Send([]*raftpb.Message{appMsg(1, 2, i, 100)})
	}
	a.rec.waitUnreachable(t, 2)
	if err := a.tr.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPUnknownPeerIsUnreachable(t *testing.T) {
	a := startMember(t, 1, testClusterID, 0)
	a.tr.Send([]*raftpb.Message{appMsg(1, 9, 1, 1), snapMsg(1, 9, nil)})
	a.rec.waitUnreachable(t, 9)
	if snaps := a.rec.waitSnap(t, 1); snaps[0] != (snapReport{9, raft.SnapshotFailure}) {
		t.Fatalf("snapshot report %v, want failure for 9", snaps[0])
	}
}

func TestHTTPRemovePeerStopsSending(t *testing.T) {
	a := startMember(t, 1, testClusterID, 0)
	b := startMember(t, 2, testClusterID, 0)
	connect(t, a, b)
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 0, 10)})
	b.rec.waitMsgs(t, 1)
	a.tr.RemovePeer(2)
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 1, 10)})
	a.rec.waitUnreachable(t, 2)
	if c := b.rec.count(); c != 1 {
		t.Fatalf("removed peer got %d messages, want 1", c)
	}
	a.tr.mu.Lock()
	n := len(a.tr.peers)
	a.tr.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d peers left after RemovePeer, want 0", n)
	}
}

func TestHTTPRejectsBadRequests(t *testing.T) {
	b := startMember(t, 2, testClusterID, 0)
	b.tr.AddPeer(1, []string{deadURL(t)})
	for _, c := range []struct {
		name, method, path, to string
		want                   int
	}{
		{"get", http.MethodGet, StreamPath, "2", http.StatusMethodNotAllowed},
		{"no identity", http.MethodPost, StreamPath, "", http.StatusBadRequest},
		{"other member", http.MethodPost, SnapshotPath, "3", http.StatusPreconditionFailed},
		{"garbage snapshot", http.MethodPost, SnapshotPath, "2", http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(c.method, b.url()+c.path, strings.NewReader("\x01\x02garbage"))
		if c.to != "" {
			req.Header.Set(HeaderClusterID, idString(testClusterID))
			req.Header.Set(HeaderFrom, "1")
			req.Header.Set(HeaderTo, c.to)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: got %s, want %d", c.name, resp.Status, c.want)
		}
	}
	if c := b.rec.count(); c != 0 {
		t.Fatalf("%d bad requests delivered, want 0", c)
	}
}

func TestHTTPCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		a := startMember(t, 1, testClusterID, 0)
		b := startMember(t, 2, testClusterID, 0)
		c := startMember(t, 3, testClusterID, 0)
		connect(t, a, b, c)
		a.tr.AddPeer(4, []string{deadURL(t)})
		for i := uint64(0); i < 50; i++ {
			a.tr.Send([]*raftpb.Message{appMsg(1, 2, i, 10), appMsg(1, 3, i, 10), appMsg(1, 4, i, 10)})
			b.tr.Send([]*raftpb.Message{appMsg(2, 1, i, 10)})
		}
		a.tr.Send([]*raftpb.Message{snapMsg(1, 3, make([]byte, 1<<20))})
		b.rec.waitMsgs(t, 50)
		a.rec.waitMsgs(t, 50)
		a.rec.waitSnap(t, 1)
		for _, m := range []*httpMember{a, b, c} {
			if err := m.tr.Close(); err != nil {
				t.Fatal(err)
			}
			if err := m.tr.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			// After Close: dropped silently, nothing reported.
			m.tr.Send([]*raftpb.Message{appMsg(m.id, 1, 0, 1)})
			m.tr.AddPeer(9, []string{deadURL(t)})
			m.srv.CloseClientConnections()
			m.srv.Close()
		}
	}()
	buf := make([]byte, 1<<20)
	eventually(t, waitLimit, fmt.Sprintf("the goroutines to settle to the %d before", before), func() (bool, string) {
		if n := runtime.NumGoroutine(); n > before {
			return false, fmt.Sprintf("%d after Close:\n%s", n, buf[:runtime.Stack(buf, true)])
		}
		return true, ""
	})
}

func TestHTTPCloseEndsInboundStreams(t *testing.T) {
	a := startMember(t, 1, testClusterID, 0)
	b := startMember(t, 2, testClusterID, 0)
	connect(t, a, b)
	a.tr.Send([]*raftpb.Message{appMsg(1, 2, 0, 10)})
	b.rec.waitMsgs(t, 1)
	// b's handler is serving a's stream; Close must end it and return.
	if err := b.tr.Close(); err != nil {
		t.Fatal(err)
	}
	// The server has no request left in flight, so Close returns without
	// forcing connections shut.
	b.srv.Close()
	// a notices and reconnects, and b (closed) answers 503.
	e := waitLog(t, a.logs, "stream to peer failed")
	if msg := e.ContextMap()["error"].(string); !strings.Contains(msg, "ended the stream") && !strings.Contains(msg, "503") && !strings.Contains(msg, "refused") {
		t.Fatalf("unexpected failure %q", msg)
	}
}

func TestHTTPSendDoesNotCallHandler(t *testing.T) {
	// A Handler that would deadlock if called from within Send.
	var mu sync.Mutex
	h := &lockingHandler{mu: &mu, reports: make(chan uint64, 100)}
	tr := NewHTTP(HTTPConfig{ID: 1, ClusterID: testClusterID, Handler: h, QueueSize: 1})
	defer tr.Close()
	mu.Lock()
	tr.Send([]*raftpb.Message{appMsg(1, 5, 0, 1)}) // unknown peer
	mu.Unlock()
	select {
	case id := <-h.reports:
		if id != 5 {
			t.Fatalf("reported %d, want 5", id)
		}
	case <-time.After(waitLimit):
		t.Fatal("no unreachable report")
	}
}

type lockingHandler struct {
	mu      *sync.Mutex
	reports chan uint64
}

func (h *lockingHandler) Process(context.Context, *raftpb.Message) error { return nil }
func (h *lockingHandler) ProcessSnapshot(ctx context.Context, m *raftpb.Message, db io.Reader) error {
	return ProcessInline(ctx, h, m, db)
}
func (h *lockingHandler) ReportSnapshot(uint64, raft.SnapshotStatus) {}
func (h *lockingHandler) ReportRemoved(uint64)                       {}
func (h *lockingHandler) ReportUnreachable(id uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reports <- id
}

func TestNewHTTPPanicsOnInvalidConfig(t *testing.T) {
	for _, cfg := range []HTTPConfig{{ID: 0, Handler: newRecorder()}, {ID: 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewHTTP(%+v) did not panic", cfg)
				}
			}()
			NewHTTP(cfg)
		}()
	}
}
