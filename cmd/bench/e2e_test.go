package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/proc"
)

// envCairn names a prebuilt cairn binary for the end-to-end tests; without
// it TestMain builds one.
const envCairn = "CAIRN_BENCH_CAIRN"

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Getenv(envCairn) == "" {
		dir, err := os.MkdirTemp("", "bench-test-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "cairn")
		if err := proc.Build(bin, proc.CairnPackage, proc.BuildOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		os.Setenv(envCairn, bin)
	}
	return m.Run()
}

// startCairn starts a one-member cairn as compare does, and stops it when
// the test ends.
func startCairn(t *testing.T) *servers {
	t.Helper()
	tg := target{name: "cairn", bin: os.Getenv(envCairn), members: 1}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := tg.start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
			t.Errorf("data dir %s left behind (%v)", s.dir, err)
		}
	})
	if len(s.endpoints) != 1 || len(s.pids) != 1 {
		t.Fatalf("servers %+v", s)
	}
	return s
}

// bench runs bench with args in this process and returns its one JSON
// report.
func bench(t *testing.T, args ...string) map[string]any {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("bench %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("bench %s: not one JSON object: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return rep
}

func num(t *testing.T, rep map[string]any, name string) float64 {
	t.Helper()
	v, ok := rep[name].(float64)
	if !ok {
		t.Fatalf("report has no number %s: %v", name, rep)
	}
	return v
}

// sane checks what every workload's report must hold: ops as asked, no
// errors, ordered latencies, the database size and the server's memory.
func sane(t *testing.T, rep map[string]any, ops float64) {
	t.Helper()
	if got := num(t, rep, "ops"); got != ops {
		t.Errorf("%s: %v ops, want %v: %v", rep["workload"], got, ops, rep)
	}
	if e := num(t, rep, "errors"); e != 0 {
		t.Errorf("%s: %v errors (%v)", rep["workload"], e, rep["first_error"])
	}
	p50, p99, pmax := num(t, rep, "latency_p50_ms"), num(t, rep, "latency_p99_ms"), num(t, rep, "latency_max_ms")
	if !(p50 > 0 && p50 <= p99 && p99 <= pmax) {
		t.Errorf("%s: latencies p50 %v p99 %v max %v", rep["workload"], p50, p99, pmax)
	}
	for _, k := range []string{"ops_per_second", "db_size_mib", "server_rss_peak_mib", "server_rss_mib"} {
		if num(t, rep, k) <= 0 {
			t.Errorf("%s: %s = %v", rep["workload"], k, rep[k])
		}
	}
}

// keysByLength returns the keys under prefix, counted by their length,
// and their values by key.
func keysByLength(t *testing.T, c *clientv3.Client, prefix string) (map[int]int, map[string][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	n, vals := map[int]int{}, map[string][]byte{}
	for _, kv := range r.Kvs {
		n[len(kv.Key)]++
		vals[string(kv.Key)] = kv.Value
	}
	return n, vals
}

// Every workload, small, against a real cairn: the counts are as asked,
// nothing fails, and what the writes wrote is there when read back.
func TestWorkloadsAgainstCairn(t *testing.T) {
	srv := startCairn(t)
	ep := srv.endpoints[0]
	g := []string{"-endpoints", ep, "-clients", "4", "-conns", "2", "-json", "-progress=false",
		"-server-pid", fmt.Sprint(srv.pids[0]), "-settle", "1ms"}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := func(args ...string) map[string]any { return bench(t, append(append([]string{}, g...), args...)...) }

	// put: 200 sequential keys of 10 bytes, values of 16.
	rep := w("put", "-total", "200", "-key-size", "10", "-val-size", "16", "-key-space-size", "200", "-sequential-keys")
	sane(t, rep, 200)
	n, vals := keysByLength(t, c, "b")
	if n[10] != 200 {
		t.Fatalf("put wrote %d keys of 10 bytes, want 200", n[10])
	}
	for i := int64(0); i < 200; i++ {
		if v, ok := vals[keyName("b", 10, i)]; !ok || len(v) != 16 {
			t.Fatalf("key %d: %q, %v", i, v, ok)
		}
	}

	// put for a time rather than a count.
	rep = w("put", "-duration", "300ms", "-key-size", "10", "-key-space-size", "200")
	if num(t, rep, "ops") < 1 || num(t, rep, "errors") != 0 || num(t, rep, "seconds") < 0.3 {
		t.Fatalf("put -duration: %v", rep)
	}

	// range: 300 keys of 8 bytes, then counted over the whole prefix
	// (with the 200 of put), and read with a limit.
	rep = w("range", "-prefill", "300", "-key", "b", "-prefix", "-count-only", "-total", "40")
	sane(t, rep, 40)
	if num(t, rep, "range_count") != 500 || num(t, rep, "range_kvs") != 0 {
		t.Fatalf("range -count-only over 500 keys: %v", rep)
	}
	rep = w("range", "-prefill", "0", "-key", "b", "-end", "c", "-keys-only", "-limit", "10", "-consistency", "s", "-total", "40")
	sane(t, rep, 40)
	if num(t, rep, "range_count") != 500 || num(t, rep, "range_kvs") != 10 {
		t.Fatalf("range -limit 10: %v", rep)
	}
	rep = w("range", "-prefill", "0", "-total", "30") // one key, etcd's usual shape
	sane(t, rep, 30)
	if num(t, rep, "range_kvs") != 1 {
		t.Fatalf("range of one key: %v", rep)
	}

	// txn-put: 100 transactions of 2 puts, keys of 12 bytes in order.
	rep = w("txn-put", "-total", "100", "-txn-ops", "2", "-key-size", "12", "-key-space-size", "1000", "-sequential-keys")
	sane(t, rep, 100)
	if n, _ := keysByLength(t, c, "b"); n[12] != 200 {
		t.Fatalf("txn-put wrote %d keys of 12 bytes, want 200", n[12])
	}

	// txn-mixed: 4 reads to a write.
	rep = w("txn-mixed", "-total", "100", "-rw-ratio", "4", "-key-size", "9", "-key-space-size", "1000", "-sequential-keys", "-limit", "10")
	sane(t, rep, 100)
	if num(t, rep, "reads") != 80 || num(t, rep, "writes") != 20 {
		t.Fatalf("txn-mixed: %v", rep)
	}
	if n, _ := keysByLength(t, c, "b"); n[9] != 20 {
		t.Fatalf("txn-mixed wrote %d keys of 9 bytes, want 20", n[9])
	}

	// lease-keepalive: each client's lease is renewed, and revoked after.
	rep = w("lease-keepalive", "-total", "100")
	sane(t, rep, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ls, err := c.Leases(ctx); err != nil || len(ls.Leases) != 0 {
		t.Fatalf("leases left: %v %v", ls, err)
	}

	// watch-latency: 6 watchers see each of 20 puts.
	rep = w("watch-latency", "-streams", "2", "-watchers-per-stream", "3", "-put-total", "20", "-put-rate", "0")
	sane(t, rep, 120)
	if num(t, rep, "events") != 120 {
		t.Fatalf("watch-latency: %v", rep)
	}

	// watch fan-out.
	rep = w("watch", "-streams", "2", "-watch-per-stream", "5", "-put-total", "20")
	if num(t, rep, "events") != 200 || num(t, rep, "events_per_second") <= 0 {
		t.Fatalf("watch: %v", rep)
	}

	// list: 1,050 keys in pages of 100 is 11 pages a list.
	rep = w("list", "-keys", "1050", "-limit", "100", "-val-size", "64", "-total", "5")
	sane(t, rep, 5)
	if num(t, rep, "pages_per_list") != 11 {
		t.Fatalf("list: %v", rep)
	}
	if n, _ := keysByLength(t, c, "/registry/pods/bench/"); n[len("/registry/pods/bench/obj-00000000")] != 1050 {
		t.Fatalf("list wrote %v", n)
	}

	// update: 4 clients on 3 keys conflict; every update lands once.
	rep = w("update", "-keys", "3", "-total", "200", "-val-size", "32")
	sane(t, rep, 200)
	_, vals = keysByLength(t, c, "/registry/configmaps/bench/")
	sum := int64(0)
	for k, v := range vals {
		cnt, err := parseCounter(v)
		if err != nil || len(v) != 32 {
			t.Fatalf("%s = %q: %v", k, v, err)
		}
		sum += cnt
	}
	if len(vals) != 3 || sum != 200 {
		t.Fatalf("update: %d keys counting %d updates, want 3 and 200 (%v)", len(vals), sum, rep)
	}
	t.Logf("update: %v conflicts", rep["conflicts"])
}

// compare of cairn against cairn, two rounds: four fresh servers, A B A B,
// and a table of medians and ratios.
func TestCompareCairnWithCairn(t *testing.T) {
	bin := os.Getenv(envCairn)
	dir := t.TempDir()
	md, js := filepath.Join(dir, "out", "put.md"), filepath.Join(dir, "out", "put.json")
	var out, errb bytes.Buffer
	code := run([]string{"-clients", "4", "-conns", "2", "-progress=false", "compare",
		"-a-bin", bin, "-b-bin", bin, "-b-name", "cairn2", "-rounds", "2", "-md", md, "-json-out", js,
		"put", "-total", "100", "-key-space-size", "50"}, &out, &errb)
	if code != 0 {
		t.Fatalf("compare: exit %d\n%s%s", code, out.String(), errb.String())
	}
	table := out.String()
	for _, want := range []string{"| 1 | cairn |", "| 1 | cairn2 |", "| 2 | cairn |", "| 2 | cairn2 |",
		"| median | cairn | cairn2 | cairn2 / cairn |", "| ops_per_second |", "| latency_p99_ms |", "| server_rss_peak_mib |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if b, err := os.ReadFile(md); err != nil || string(b) != table {
		t.Errorf("-md file differs from the printed table: %v", err)
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Rounds []struct {
			Round  int
			Target string
			Report map[string]any
		}
		Ratios map[string]float64
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	var order []string
	for _, r := range res.Rounds {
		order = append(order, fmt.Sprint(r.Round, r.Target))
		if r.Report["ops"] != 100.0 || r.Report["errors"] != 0.0 {
			t.Errorf("round %d %s: %v", r.Round, r.Target, r.Report)
		}
	}
	if strings.Join(order, " ") != "1a 1b 2a 2b" {
		t.Errorf("rounds ran %v, want A B A B", order)
	}
	for _, m := range []string{"ops_per_second", "latency_p99_ms", "server_rss_peak_mib", "db_size_mib"} {
		if r, ok := res.Ratios[m]; !ok || r <= 0 {
			t.Errorf("ratio of %s = %v, %v", m, r, ok)
		}
	}
}

// sweep over clients against one cairn: a row per value, an HTML page
// with a line per chart.
func TestSweepClients(t *testing.T) {
	html := filepath.Join(t.TempDir(), "sweep.html")
	var out, errb bytes.Buffer
	code := run([]string{"-progress=false", "sweep", "-a-bin", os.Getenv(envCairn), "-param", "clients", "-values", "1,4",
		"-html", html, "put", "-total", "60"}, &out, &errb)
	if code != 0 {
		t.Fatalf("sweep: exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"| clients | target |", "| 1 | cairn |", "| 4 | cairn |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	lines, points := svgShapes(t, string(b))
	if len(lines) != 5 { // ops/s, p99, RSS, RSS peak, db size
		t.Fatalf("%d charts: %v", len(lines), lines)
	}
	for i, p := range points {
		if len(p) != 2 || lines[i] != 1 {
			t.Fatalf("chart %d: %d lines, points %v", i, lines[i], p)
		}
	}
}
