package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// maint against a real cairn: 5,000 versions of 200 keys, a physical
// compaction and a defragmentation under a steady load. The compaction
// really happened (a read below it is refused, from outside the tool too),
// the defragmentation really shrank the file, and the load went on
// through both without an error.
func TestMaintCompactsAndDefragsUnderLoad(t *testing.T) {
	srv := startCairn(t)
	ep := srv.endpoints[0]
	rep := bench(t, "-endpoints", ep, "-clients", "4", "-conns", "2", "-json", "-progress=false",
		"-server-pid", fmt.Sprint(srv.pids[0]), "-settle", "1ms",
		"maint", "-keys", "200", "-revisions", "5000", "-rate", "200", "-baseline", "300ms", "-gap", "200ms")
	if rep["compacted"] != true {
		t.Fatalf("maint: a read below the compaction was not refused: %v", rep)
	}
	if _, ok := rep["maint_error"]; ok {
		t.Fatalf("maint: %v", rep["maint_error"])
	}
	for _, k := range []string{"errors", "timeouts", "compact_errors", "defrag_errors", "maint_errors"} {
		if num(t, rep, k) != 0 {
			t.Errorf("%s = %v (first error %v)", k, rep[k], rep["first_error"])
		}
	}
	for _, k := range []string{"compact_seconds", "defrag_seconds", "baseline_p99_ms", "compact_max_ms", "defrag_max_ms",
		"rss_after_prefill_mib", "server_rss_peak_mib", "compact_p99_ratio", "defrag_p99_ratio"} {
		if num(t, rep, k) <= 0 {
			t.Errorf("%s = %v", k, rep[k])
		}
	}
	// The load ran all along: before, during and around both operations.
	if n := num(t, rep, "baseline_load_ops"); n < 10 {
		t.Errorf("baseline: %v operations", n)
	}
	if n, b := num(t, rep, "load_load_ops"), num(t, rep, "baseline_load_ops"); n <= b {
		t.Errorf("load: %v operations in all, %v of them in the baseline", n, b)
	}
	// 5,000 versions in transactions of 100 puts: at least 50 revisions.
	rev := int64(num(t, rep, "compact_revision"))
	if rev < 51 {
		t.Fatalf("compacted at revision %d", rev)
	}
	// Physically: the file held every version (5,000 of 144 bytes and
	// more) until the defragmentation, which left room for 200 keys.
	written := 5000 * 144.0 / (1 << 20)
	before, after := num(t, rep, "after_compact_db_size_mib"), num(t, rep, "after_defrag_db_size_in_use_mib")
	if before < written || after > written/4 {
		t.Errorf("%v MiB of versions written; the file %v MiB after the compaction, %v in use after the defragmentation", written, before, after)
	}

	c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Get(ctx, keyName(keyPrefix, 16, 0), clientv3.WithRev(rev-1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("read at revision %d, below the compaction at %d: %v, want ErrCompacted", rev-1, rev, err)
	}
	r, err := c.Get(ctx, keyPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || r.Count != 200 {
		t.Fatalf("keys after maint: %v, %v", r, err)
	}
}

// restart against a real cairn: the process is stopped and a new one
// started on the same data, and the time measured ends at a read the new
// process answered.
func TestRestartRestartsTheServer(t *testing.T) {
	srv := startCairn(t)
	oldPID := srv.pids[0]
	g, _, err := parseGlobal([]string{"-clients", "4", "-conns", "2", "-progress=false", "restart"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := runRestart(attach(g, srv), []string{"-keys", "3000", "-rss-wait", "10ms"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	newPID := srv.pids[0]
	if newPID == oldPID || newPID == 0 {
		t.Fatalf("server pid %d before the restart, %d after", oldPID, newPID)
	}
	// The old process is gone (and reaped), the new one runs.
	if err := syscall.Kill(oldPID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("old server process %d: signal 0 answered %v, want ESRCH", oldPID, err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", newPID)); err != nil {
		t.Fatalf("new server process: %v", err)
	}
	if v, _ := rep.get("restarted"); v != true {
		t.Errorf("restarted = %v", v)
	}
	for _, k := range []string{"restart_seconds", "rss_after_prefill_mib", "rss_after_restart_mib", "rss_settled_after_restart_mib", "db_size_mib"} {
		if v, ok := rep.number(k); !ok || v <= 0 {
			t.Errorf("%s = %v", k, v)
		}
	}
	if v, _ := rep.number("keys_after_restart"); v != 3000 {
		t.Errorf("keys_after_restart = %v", v)
	}
	// The new process serves the data written before the restart.
	c, err := clientv3.New(clientv3.Config{Endpoints: srv.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Get(ctx, keyName(keyPrefix, 16, 2999))
	if err != nil || len(r.Kvs) != 1 || len(r.Kvs[0].Value) != 128 {
		t.Fatalf("last key after the restart: %v, %v", r, err)
	}
}

// restart needs a server bench started: against running endpoints it
// says so rather than measuring nothing.
func TestRestartNeedsAStartedServer(t *testing.T) {
	var out, errb strings.Builder
	code := run([]string{"-endpoints", "127.0.0.1:1", "-progress=false", "restart", "-keys", "10"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "needs a server that bench starts") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

// The comparison table of maint and restart has their own columns.
func TestMaintTableColumns(t *testing.T) {
	c := &comparison{Workload: "maint", A: "etcd (x)", B: "cairn (y)", Rounds: []roundResult{
		{Round: 1, Target: "a", Report: report{{"baseline_p99_ms", 2.0}, {"compact_seconds", 3.5}, {"compact_p99_ms", 4.0}, {"timeouts", int64(0)}}},
		{Round: 1, Target: "b", Report: report{{"baseline_p99_ms", 1.0}, {"compact_seconds", 7.0}, {"compact_p99_ms", 9.0}, {"timeouts", int64(2)}}},
	}}
	c.summarize()
	md := c.markdown()
	for _, want := range []string{"| round | target | base p99 ms | compact s | compact p99 ms |", "| 1 | etcd | 2 | 3.5 | 4 |",
		"| compact_seconds | 3.5 | 7 | 2.00 |", "| timeouts | 0 | 2 | - |"} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}
