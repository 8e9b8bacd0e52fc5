// Command bench is a load generator that speaks clientv3, so it runs the
// same workload against Cairn and etcd alike and their numbers can stand
// side by side.
//
//	bench [global flags] WORKLOAD [workload flags]
//	bench [global flags] compare [compare flags] WORKLOAD [workload flags]
//	bench [global flags] sweep [sweep flags] WORKLOAD [workload flags]
//	bench summary [-html FILE] COMPARE.json...
//
// The workloads are etcd's `benchmark` tool's (put, range, txn-put,
// txn-mixed, watch-latency, lease-keepalive, with its flag names) and the
// shapes Kubernetes' apiserver produces (list: paged lists of many keys;
// watch: fan-out to many watchers; update: optimistic-concurrency updates
// that retry on a conflict). Each prints its throughput, its latency
// (avg, p50, p90, p99, p99.9, max), its errors, the server's database size
// and, with -server-pid, the server's memory: a plain-text report, or one
// JSON object with -json. While it runs it prints its progress on stderr
// once a second.
//
// compare runs one workload against two targets, each an endpoint or a
// binary started fresh for every round, alternating A B A B, and prints
// every round, the medians and the B/A ratios as a markdown table. sweep
// runs one workload over a list of values of one parameter for one or two
// targets and writes the table and an HTML page of line charts. summary
// gathers the JSON of several comparisons into one headline table.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// global holds the flags every workload shares.
type global struct {
	endpoints  []string
	conns      int
	clients    int
	serverPIDs []int
	settle     time.Duration
	json       bool
	timeout    time.Duration
	// progress receives a line a second while a workload runs.
	progress io.Writer
	// restart, set when bench started the servers (compare, sweep),
	// stops them and starts them again on the same data: it returns when
	// the new processes were started, and their pids.
	restart func(ctx context.Context) (started time.Time, pids []int, err error)
}

// workload runs one benchmark with its own flags and returns its report.
type workload func(g global, args []string, stderr io.Writer) (report, error)

// workloads are the benchmarks by name.
var workloads = map[string]workload{
	"put":             runPut,
	"range":           runRange,
	"txn-put":         runTxnPut,
	"txn-mixed":       runTxnMixed,
	"watch-latency":   runWatchLatency,
	"lease-keepalive": runLeaseKeepAlive,
	"list":            runList,
	"watch":           runWatch,
	"update":          runUpdate,
	"maint":           runMaint,
	"restart":         runRestart,
}

func workloadNames() string {
	var names []string
	for n := range workloads {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// globalFlags declares the global flags into fs.
func globalFlags(fs *flag.FlagSet, g *global) (endpoints, pids *string, progress *bool) {
	endpoints = fs.String("endpoints", "127.0.0.1:2379", "comma-separated gRPC endpoints")
	fs.IntVar(&g.conns, "conns", 1, "gRPC connections")
	fs.IntVar(&g.clients, "clients", 1, "clients (spread over the connections)")
	pids = fs.String("server-pid", "", "comma-separated server processes whose memory to sample (Linux /proc); the report has the largest")
	fs.DurationVar(&g.settle, "settle", 8*time.Second, "with -server-pid: how long after the clients finish to sample memory again")
	fs.BoolVar(&g.json, "json", false, "print one JSON object")
	fs.DurationVar(&g.timeout, "timeout", 10*time.Minute, "give up after this long")
	progress = fs.Bool("progress", true, "print progress on stderr once a second")
	return
}

// parseGlobal parses the global flags; rest are the mode's or workload's
// arguments.
func parseGlobal(args []string, stderr io.Writer) (g global, rest []string, err error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoints, pids, progress := globalFlags(fs, &g)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bench [global flags] WORKLOAD [workload flags]\n"+
			"       bench [global flags] compare [compare flags] WORKLOAD [workload flags]\n"+
			"       bench [global flags] sweep [sweep flags] WORKLOAD [workload flags]\n"+
			"       bench summary [-html FILE] COMPARE.json...\n\n"+
			"workloads: %s\n`bench WORKLOAD -h` lists a workload's flags.\n\nglobal flags:\n", workloadNames())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return g, nil, err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return g, nil, fmt.Errorf("no workload")
	}
	g.endpoints = splitList(*endpoints)
	if len(g.endpoints) == 0 {
		return g, nil, fmt.Errorf("-endpoints is empty")
	}
	for _, p := range splitList(*pids) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return g, nil, fmt.Errorf("-server-pid: bad process id %q", p)
		}
		if n > 0 {
			g.serverPIDs = append(g.serverPIDs, n)
		}
	}
	if g.conns < 1 || g.clients < 1 {
		return g, nil, fmt.Errorf("-conns and -clients must be at least 1")
	}
	g.progress = io.Discard
	if *progress {
		g.progress = stderr
	}
	return g, fs.Args(), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func run(args []string, stdout, stderr io.Writer) int {
	g, rest, err := parseGlobal(args, stderr)
	if err != nil {
		if err != flag.ErrHelp {
			fmt.Fprintf(stderr, "bench: %v\n", err)
		}
		return 2
	}
	switch rest[0] {
	case "compare":
		return runCompare(g, rest[1:], stdout, stderr)
	case "sweep":
		return runSweep(g, rest[1:], stdout, stderr)
	case "summary":
		return runSummary(rest[1:], stdout, stderr)
	}
	w, ok := workloads[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "bench: unknown workload %q (have: %s; modes: compare, sweep)\n", rest[0], workloadNames())
		return 2
	}
	rep, err := w(g, rest[1:], stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return 2
		}
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if g.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintln(stdout, string(b))
	} else {
		rep.print(stdout)
	}
	return 0
}

// report is an ordered list of named values.
type report []field

type field struct {
	Name  string
	Value any
}

func (r report) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.Name)
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func (r report) print(w io.Writer) {
	width := 0
	for _, f := range r {
		width = max(width, len(f.Name))
	}
	for _, f := range r {
		fmt.Fprintf(w, "%-*s  %v\n", width, f.Name, f.Value)
	}
}

// get returns the value of the field name.
func (r report) get(name string) (any, bool) {
	for _, f := range r {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

// number returns the field name as a float64, if it is a number.
func (r report) number(name string) (float64, bool) {
	v, ok := r.get(name)
	if !ok {
		return 0, false
	}
	return toFloat(v)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// dial opens g.conns clients, one gRPC connection each.
func dial(g global) ([]*clientv3.Client, error) {
	var cs []*clientv3.Client
	for i := 0; i < g.conns; i++ {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   g.endpoints,
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
			DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
			// Large pages of a list come back whole.
			MaxCallRecvMsgSize: 512 << 20,
		})
		if err != nil {
			closeAll(cs)
			return nil, err
		}
		cs = append(cs, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cs[0].Get(ctx, "bench-ping"); err != nil {
		closeAll(cs)
		return nil, fmt.Errorf("endpoints %v do not answer: %w", g.endpoints, err)
	}
	return cs, nil
}

func closeAll(cs []*clientv3.Client) {
	for _, c := range cs {
		_ = c.Close()
	}
}
