package api

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cairnkv/cairn/internal/testutil"
	"github.com/cairnkv/cairn/mvcc"
)

// The watch send loop is timed as etcd times it: each response of the
// watch stream (and per event), each control response (a failed create),
// each round of progress notifications.
func TestWatchSendLoopMetrics(t *testing.T) {
	st, err := mvcc.Open(mvcc.Config{Path: filepath.Join(t.TempDir(), "db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := startServer(t, newMemBackend(t), func(c *Config) {
		c.Watch = NewWatchServer(StoreWatchBackend(st, testMember{}), WatchConfig{ProgressNotifyInterval: 20 * time.Millisecond})
	})
	count := func(name string) float64 {
		code, body, _ := httpDo(t, http.MethodGet, "http://"+ts.addr+"/metrics", "")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		if !strings.Contains(body, "# TYPE "+name+" histogram\n") {
			t.Fatalf("/metrics has no histogram %s", name)
		}
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, name+"_count "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
		}
		t.Fatalf("/metrics has no %s_count", name)
		return 0
	}
	const (
		stream   = "etcd_debugging_server_watch_send_loop_watch_stream_duration_seconds"
		perEvent = "etcd_debugging_server_watch_send_loop_watch_stream_duration_per_event_seconds"
		control  = "etcd_debugging_server_watch_send_loop_control_stream_duration_seconds"
		progress = "etcd_debugging_server_watch_send_loop_progress_duration_seconds"
	)
	for _, name := range []string{stream, perEvent, control, progress} {
		if v := count(name); v != 0 {
			t.Errorf("%s count = %v before any watch, want 0", name, v)
		}
	}

	cc, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ws, err := pb.NewWatchClient(cc).Watch(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	create := &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("k"), WatchId: 7}}}
	if err := ws.Send(create); err != nil {
		t.Fatal(err)
	}
	if r, err := ws.Recv(); err != nil || !r.GetCreated() {
		t.Fatalf("create: %v %v", r, err)
	}
	if _, err := st.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if r, err := ws.Recv(); err != nil || len(r.GetEvents()) != 1 {
		t.Fatalf("event: %v %v", r, err)
	}
	// The same watch ID again: refused, on the control stream.
	if err := ws.Send(create); err != nil {
		t.Fatal(err)
	}
	if r, err := ws.Recv(); err != nil || !r.GetCanceled() {
		t.Fatalf("duplicate create: %v %v", r, err)
	}
	testutil.Eventually(t, 5*time.Second, "the send loop is timed", func() (bool, string) {
		s, e, c, p := count(stream), count(perEvent), count(control), count(progress)
		// stream: the created response and the event; per event: the event.
		return s >= 2 && e == 1 && c == 1 && p >= 1, fmt.Sprintf("stream %v, per event %v, control %v, progress %v", s, e, c, p)
	})
}
