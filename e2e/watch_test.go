package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

const watchTimeout = 20 * time.Second

func recvWatch(t *testing.T, wc clientv3.WatchChan) clientv3.WatchResponse {
	t.Helper()
	select {
	case r, ok := <-wc:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return r
	case <-time.After(watchTimeout):
		t.Fatal("no watch response in time")
	}
	return clientv3.WatchResponse{}
}

// watchCreated receives the first response of a watch opened with
// clientv3.WithCreatedNotify and fails unless it is the creation: once it
// has arrived the server holds the watcher, and every later write reaches it.
func watchCreated(t *testing.T, wc clientv3.WatchChan) {
	t.Helper()
	if r := recvWatch(t, wc); !r.Created || r.Err() != nil || len(r.Events) != 0 {
		t.Fatalf("first watch response is not the creation: created=%v err=%v events=%d", r.Created, r.Err(), len(r.Events))
	}
}

func evsString(evs []*clientv3.Event) string {
	var parts []string
	for _, ev := range evs {
		s := fmt.Sprintf("%s %s=%s m%d", ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
		if ev.PrevKv != nil {
			s += " prev=" + string(ev.PrevKv.Value)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// collectEvents receives until n events arrived and renders them.
func collectEvents(t *testing.T, wc clientv3.WatchChan, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		r := recvWatch(t, wc)
		if err := r.Err(); err != nil {
			t.Fatalf("watch error after %d events: %v", len(out), err)
		}
		for _, ev := range r.Events {
			out = append(out, evsString([]*clientv3.Event{ev}))
		}
	}
	return out
}

func mustPutE(t *testing.T, cli *clientv3.Client, k, v string) int64 {
	t.Helper()
	r, err := cli.Put(ctx(t), k, v)
	if err != nil {
		t.Fatalf("put %s: %v", k, err)
	}
	return r.Header.Revision
}

func TestWatchEndToEnd(t *testing.T) {
	c := NewCluster(t, 1)
	cli := c.Client(t)
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := mustPutE(t, cli, "pre", "0")
	key := cli.Watch(wctx, "foo", clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	prefix := cli.Watch(wctx, "foo", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	rng := cli.Watch(wctx, "b", clientv3.WithRange("d"), clientv3.WithCreatedNotify())
	noDel := cli.Watch(wctx, "foo", clientv3.WithFilterDelete(), clientv3.WithCreatedNotify())
	noPut := cli.Watch(wctx, "foo", clientv3.WithFilterPut(), clientv3.WithCreatedNotify())
	for _, wc := range []clientv3.WatchChan{key, prefix, rng, noDel, noPut} {
		watchCreated(t, wc) // every write from here on reaches it
	}
	mustPutE(t, cli, "foo", "1")
	mustPutE(t, cli, "foo/x", "2")
	mustPutE(t, cli, "c", "3")
	mustPutE(t, cli, "d", "4")
	mustPutE(t, cli, "foo", "5")
	if _, err := cli.Delete(ctx(t), "foo"); err != nil {
		t.Fatal(err)
	}
	r := func(i int64) int64 { return base + i }
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Fatalf("%s:\ngot  %q\nwant %q", what, got, want)
		}
	}
	check("key", collectEvents(t, key, 3), fmt.Sprintf("PUT foo=1 m%d", r(1)), fmt.Sprintf("PUT foo=5 m%d prev=1", r(5)), fmt.Sprintf("DELETE foo= m%d prev=5", r(6)))
	check("prefix", collectEvents(t, prefix, 4), fmt.Sprintf("PUT foo=1 m%d", r(1)), fmt.Sprintf("PUT foo/x=2 m%d", r(2)), fmt.Sprintf("PUT foo=5 m%d", r(5)), fmt.Sprintf("DELETE foo= m%d", r(6)))
	check("range", collectEvents(t, rng, 1), fmt.Sprintf("PUT c=3 m%d", r(3)))
	check("nodelete", collectEvents(t, noDel, 2), fmt.Sprintf("PUT foo=1 m%d", r(1)), fmt.Sprintf("PUT foo=5 m%d", r(5)))
	check("noput", collectEvents(t, noPut, 1), fmt.Sprintf("DELETE foo= m%d", r(6)))

	// From an old revision: the history is replayed, then live events follow.
	old := cli.Watch(wctx, "foo", clientv3.WithPrefix(), clientv3.WithRev(r(2)))
	check("old", collectEvents(t, old, 3), fmt.Sprintf("PUT foo/x=2 m%d", r(2)), fmt.Sprintf("PUT foo=5 m%d", r(5)), fmt.Sprintf("DELETE foo= m%d", r(6)))
	mustPutE(t, cli, "foo", "7")
	check("old then live", collectEvents(t, old, 1), fmt.Sprintf("PUT foo=7 m%d", r(7)))

	// RequestProgress: a progress notification at the current revision.
	if err := cli.RequestProgress(wctx); err != nil {
		t.Fatal(err)
	}
	for {
		resp := recvWatch(t, rng)
		if resp.IsProgressNotify() {
			if resp.Header.Revision != r(7) {
				t.Fatalf("progress at %d, want %d", resp.Header.Revision, r(7))
			}
			break
		}
	}

	// Compacted start revision: canceled with the compact revision.
	if _, err := cli.Compact(ctx(t), r(5)); err != nil {
		t.Fatal(err)
	}
	cw := recvWatch(t, cli.Watch(wctx, "foo", clientv3.WithRev(r(3))))
	if !cw.Canceled || cw.CompactRevision != r(5) || cw.Err() != rpctypes.ErrCompacted {
		t.Fatalf("compacted watch: canceled=%v compact=%d err=%v", cw.Canceled, cw.CompactRevision, cw.Err())
	}

	// Cancel: the channel closes and the server forgets the watcher.
	cctx, ccancel := context.WithCancel(wctx)
	cwc := cli.Watch(cctx, "zzz", clientv3.WithCreatedNotify())
	recvWatch(t, cwc)
	ccancel()
	select {
	case _, ok := <-cwc:
		for ok {
			_, ok = <-cwc
		}
	case <-time.After(watchTimeout):
		t.Fatal("canceled watch channel not closed")
	}
}

func TestWatchManyWatchersAndStreams(t *testing.T) {
	c := NewCluster(t, 1)
	cli := c.Client(t)
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// 1,000 watchers on one stream (one clientv3 context = one stream).
	var one []clientv3.WatchChan
	for i := 0; i < 1000; i++ {
		one = append(one, cli.Watch(wctx, "hot", clientv3.WithCreatedNotify()))
	}
	for _, wc := range one {
		if r := recvWatch(t, wc); !r.Created {
			t.Fatalf("want created, got %+v", r)
		}
	}
	// 100 more streams: clientv3 opens one gRPC stream per distinct
	// outgoing metadata.
	var many []clientv3.WatchChan
	for i := 0; i < 100; i++ {
		sctx := metadata.AppendToOutgoingContext(wctx, "cairn-e2e-stream", fmt.Sprint(i))
		many = append(many, cli.Watch(sctx, "hot", clientv3.WithCreatedNotify()))
	}
	for _, wc := range many {
		if r := recvWatch(t, wc); !r.Created {
			t.Fatalf("want created, got %+v", r)
		}
	}
	var want []string
	for i := 0; i < 5; i++ {
		rev := mustPutE(t, cli, "hot", fmt.Sprint(i))
		want = append(want, fmt.Sprintf("PUT hot=%d m%d", i, rev))
	}
	for i, wc := range append(one, many...) {
		if got := collectEvents(t, wc, 5); strings.Join(got, ";") != strings.Join(want, ";") {
			t.Fatalf("watcher %d: %q, want %q", i, got, want)
		}
	}
}

func TestWatchSlowConsumerDoesNotStallWritersAndGetsEverything(t *testing.T) {
	c := NewCluster(t, 1)
	cli := c.Client(t)
	conn, err := grpc.NewClient(strings.TrimPrefix(c.Members[0].ClientURL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := pb.NewWatchClient(conn).Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("slow"), RangeEnd: []byte("slox")}}}); err != nil {
		t.Fatal(err)
	}
	if r, err := st.Recv(); err != nil || !r.Created {
		t.Fatalf("create: %v %v", r, err)
	}
	// A fast watcher on the same keys keeps up meanwhile.
	fast := cli.Watch(wctx, "slow", clientv3.WithPrefix())
	// Nobody reads st now: with 16 KiB values, gRPC's flow-control windows
	// fill after a few dozen events and the server's queue after that.
	// Writes must all complete regardless.
	const n = 4600 // > the gRPC windows (a few MiB) plus the server queue (4096)
	val := strings.Repeat("v", 16<<10)
	first := int64(0)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	var mu sync.Mutex
	revs := map[int64]bool{}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				r, err := cli.Put(context.Background(), fmt.Sprintf("slow/%d", i), val)
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				revs[r.Header.Revision] = true
				mu.Unlock()
			}
		}(w)
	}
	fastGot := 0
	for fastGot < n {
		r := recvWatch(t, fast)
		fastGot += len(r.Events)
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		t.Fatalf("a write failed while the slow consumer was stalled: %v", err)
	}
	for r := range revs {
		if first == 0 || r < first {
			first = r
		}
	}
	// Now the slow consumer reads: every event, in revision order, once.
	next := first
	for next < first+n {
		r, err := st.Recv()
		if err != nil {
			t.Fatalf("slow consumer after %d events: %v", next-first, err)
		}
		for _, ev := range r.Events {
			if ev.Kv.ModRevision != next || ev.Type != mvccpb.PUT {
				t.Fatalf("slow consumer: event at %d, want %d", ev.Kv.ModRevision, next)
			}
			next++
		}
	}
}

// ctlWatch runs `etcdctl watch args...`, calls act once it is watching,
// and returns its output once it holds want's number of lines. etcdctl
// tells nobody when its watch is created; the members' watcher gauge
// does, so the cluster must have no watchers but etcdctl's.
func ctlWatch(t *testing.T, c *Cluster, act func(), wantLines int, args ...string) string {
	t.Helper()
	watchers := func() int {
		n := 0
		for _, m := range c.Members {
			var v int
			if _, err := fmt.Sscan(metricValue(t, m, "etcd_debugging_mvcc_watcher_total"), &v); err != nil {
				t.Fatalf("etcd_debugging_mvcc_watcher_total of %s: %v", m.Name, err)
			}
			n += v
		}
		return n
	}
	// The server may still be releasing the watch of an etcdctl that has
	// just exited.
	eventually(t, watchTimeout, "no watchers before etcdctl watch", func() (bool, string) {
		n := watchers()
		return n == 0, fmt.Sprintf("%d watchers", n)
	})
	full := append([]string{"--endpoints", strings.Join(c.ClientURLs(), ","), "watch"}, args...)
	cctx, cancel := context.WithTimeout(context.Background(), watchTimeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, etcdctlBin(t), full...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	eventually(t, watchTimeout, "etcdctl watch "+strings.Join(args, " ")+" to create its watch", func() (bool, string) {
		n := watchers()
		return n == 1, fmt.Sprintf("%d watchers", n)
	})
	act()
	var lines []string
	sc := bufio.NewScanner(out)
	for len(lines) < wantLines && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < wantLines {
		t.Fatalf("etcdctl watch %v: got %q before it ended", args, lines)
	}
	go io.Copy(io.Discard, out)
	return strings.Join(lines, "\n") + "\n"
}

func TestEtcdctlWatch(t *testing.T) {
	c := NewCluster(t, 1)
	cli := c.Client(t)
	nop := func() {}
	put := func(k, v string) func() { return func() { mustPutE(t, cli, k, v) } }

	got := ctlWatch(t, c, put("foo", "bar"), 3, "foo")
	if got != "PUT\nfoo\nbar\n" {
		t.Fatalf("plain watch printed %q", got)
	}
	got = ctlWatch(t, c, func() { mustPutE(t, cli, "fop", "no"); mustPutE(t, cli, "foo/a", "1") }, 3, "--prefix", "foo")
	if got != "PUT\nfoo/a\n1\n" {
		t.Fatalf("--prefix watch printed %q", got)
	}
	rev := mustPutE(t, cli, "r", "1")
	mustPutE(t, cli, "r", "2")
	if _, err := cli.Delete(ctx(t), "r"); err != nil {
		t.Fatal(err)
	}
	got = ctlWatch(t, c, nop, 9, "--rev", fmt.Sprint(rev), "r")
	if got != "PUT\nr\n1\nPUT\nr\n2\nDELETE\nr\n\n" {
		t.Fatalf("--rev watch printed %q", got)
	}
	got = ctlWatch(t, c, nop, 10, "--prev-kv", "--rev", fmt.Sprint(rev+1), "r")
	if got != "PUT\nr\n1\nr\n2\nDELETE\nr\n2\nr\n\n" {
		t.Fatalf("--prev-kv watch printed %q", got)
	}
}
