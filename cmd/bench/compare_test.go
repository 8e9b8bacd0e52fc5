package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func rep(ops, p99, rss float64) report {
	return report{
		{"workload", "put"}, {"clients", 10}, {"ops", int64(1000)}, {"errors", int64(0)},
		{"ops_per_second", ops}, {"latency_p99_ms", p99}, {"server_rss_peak_mib", rss}, {"server_rss_mib", rss},
	}
}

func TestComparisonMediansAndRatios(t *testing.T) {
	c := &comparison{Workload: "put", Args: []string{"-total", "1000"}, Clients: 10, Conns: 2,
		A: "cairn (bin/cairn, 1 member)", B: "etcd (etcd, 1 member)"}
	// A: 100, 300, 200 ops/s -> median 200; B: 250, 500, 400 -> 400.
	for i, pair := range [][2]report{
		{rep(100, 10, 50), rep(250, 4, 100)},
		{rep(300, 30, 60), rep(500, 5, 90)},
		{rep(200, 20, 40), rep(400, 6, 80)},
	} {
		c.Rounds = append(c.Rounds, roundResult{i + 1, "a", pair[0]}, roundResult{i + 1, "b", pair[1]})
	}
	c.summarize()
	if got := strings.Join(c.Metrics, ","); got != "errors,ops_per_second,latency_p99_ms,server_rss_peak_mib,server_rss_mib" {
		t.Fatalf("metrics %s: configuration fields (clients, ops) must not be metrics", got)
	}
	for name, want := range map[string][3]float64{
		"ops_per_second":      {200, 400, 2},
		"latency_p99_ms":      {20, 5, 0.25},
		"server_rss_peak_mib": {50, 90, 1.8},
	} {
		if c.MediansA[name] != want[0] || c.MediansB[name] != want[1] || c.Ratios[name] != want[2] {
			t.Errorf("%s: medians %v %v ratio %v, want %v", name, c.MediansA[name], c.MediansB[name], c.Ratios[name], want)
		}
	}
	if _, ok := c.Ratios["errors"]; ok {
		t.Errorf("a ratio of 0 errors over 0: %v", c.Ratios)
	}
	md := c.markdown()
	for _, want := range []string{
		"### put -total 1000",
		"| round | target | ops/s |",
		"| 2 | cairn | 300 | - | - | 30 | - | 0 | 60 | - |",
		"| median | cairn | etcd | etcd / cairn |",
		"| ops_per_second | 200 | 400 | 2.00 |",
		"| latency_p99_ms | 20 | 5 | 0.25 |",
		"| errors | 0 | 0 | - |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, js)
	}
	if r := back["ratios"].(map[string]any)["ops_per_second"]; r != 2.0 {
		t.Fatalf("JSON ratio %v", r)
	}
	if n := len(back["rounds"].([]any)); n != 6 {
		t.Fatalf("JSON has %d rounds", n)
	}
}

func TestIsMetric(t *testing.T) {
	for name, want := range map[string]bool{
		"ops_per_second": true, "latency_p99_ms": true, "db_size_mib": true, "seconds": true, "deliver_seconds": true,
		"errors": true, "conflicts": true, "server_cpu_us_per_op": true, "clients": false, "ops": false, "key_size": false, "limit": false,
	} {
		if isMetric(name) != want {
			t.Errorf("isMetric(%s) = %v", name, !want)
		}
	}
}

func TestSweepTableHasRatiosOfTheSecondTarget(t *testing.T) {
	s := &sweepResult{Workload: "put", Param: "clients", Values: []string{"1", "10"}, Targets: []string{"cairn", "etcd"}}
	s.Points = []sweepPoint{
		{Value: "1", Target: "cairn", Rounds: []report{rep(100, 2, 30)}},
		{Value: "1", Target: "etcd", Rounds: []report{rep(150, 1, 40)}},
		{Value: "10", Target: "cairn", Rounds: []report{rep(1000, 8, 35), rep(800, 10, 36), rep(900, 9, 37)}},
		{Value: "10", Target: "etcd", Rounds: []report{rep(500, 16, 45)}},
	}
	s.summarize()
	md := s.markdown()
	for _, want := range []string{
		"| clients | target | ops/s | p50 ms | p99 ms | errors | RSS MiB | RSS peak MiB | db MiB | ops/s etcd/cairn | p99 etcd/cairn |",
		"| 1 | etcd | 150 | - | 1 | 0 | 40 | 40 | - | 1.50 | 0.50 |",
		"| 10 | cairn | 900 | - | 9 | 0 | 36 | 36 | - |  |  |",
		"| 10 | etcd | 500 | - | 16 | 0 | 45 | 45 | - | 0.56 | 1.78 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("sweep table lacks %q:\n%s", want, md)
		}
	}
}

func TestSummaryGathersComparisons(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, c := range []struct {
		label   string
		members int
		a, b    float64
	}{{"put, 100 clients", 1, 1000, 1500}, {"put, 100 clients", 3, 800, 600}} {
		cmp := &comparison{Label: c.label, Workload: "put", Clients: 100, Members: c.members,
			A: "etcd (etcd, 1 member)", B: "cairn (bin/cairn, 1 member)"}
		cmp.Rounds = []roundResult{{1, "a", rep(c.a, 10, 50)}, {1, "b", rep(c.b, 5, 40)}}
		cmp.summarize()
		js, err := json.Marshal(cmp)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Join(dir, fmt.Sprintf("%d.json", i)))
		if err := os.WriteFile(files[i], js, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	html := filepath.Join(dir, "summary.html")
	var out, errb bytes.Buffer
	if code := run(append([]string{"summary", "-html", html}, files...), &out, &errb); code != 0 {
		t.Fatalf("summary: exit %d: %s", code, errb.String())
	}
	md := out.String()
	for _, want := range []string{
		"| workload | clients | members | rounds | etcd ops/s | cairn ops/s | cairn/etcd |",
		"| put, 100 clients | 100 | 1 | 1 | 1000 | 1500 | 1.50 | - | - | - | 10 | 5 | 0.50 | - | - | - | 50 | 40 | 0.80 | - | - | - |",
		"| put, 100 clients | 100 | 3 | 1 | 800 | 600 | 0.75 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	svgShapes(t, string(b)) // well-formed
	if n := strings.Count(string(b), `class="bar"`); n != 2 {
		t.Fatalf("%d bars, want one per comparison", n)
	}
	if code := run([]string{"summary", html}, &out, &errb); code == 0 {
		t.Fatal("summary read an HTML file as a comparison")
	}
}
