package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// targetFlags declare one target of compare or sweep: -X (endpoints) or
// -X-bin (a binary to start), -X-name and -X-flags.
type targetFlags struct {
	letter                     string
	endpoints, bin, name, args *string
}

func declareTarget(fs *flag.FlagSet, letter string) targetFlags {
	return targetFlags{
		letter:    letter,
		endpoints: fs.String(letter, "", "target "+letter+": comma-separated endpoints of a running server"),
		bin:       fs.String(letter+"-bin", "", "target "+letter+": a cairn or etcd binary, started fresh (new data dir, free ports) for every run"),
		name:      fs.String(letter+"-name", "", "target "+letter+"'s name in the tables (default: the binary's name, or "+strings.ToUpper(letter)+")"),
		args:      fs.String(letter+"-flags", "", "target "+letter+": extra server flags, space-separated"),
	}
}

// target returns the target the flags describe; nil if none is set.
func (tf targetFlags) target(members int, keep bool) (*target, error) {
	if *tf.endpoints != "" && *tf.bin != "" {
		return nil, fmt.Errorf("-%s and -%s-bin: give one", tf.letter, tf.letter)
	}
	t := &target{name: *tf.name, endpoints: splitList(*tf.endpoints), bin: *tf.bin, members: members, flags: strings.Fields(*tf.args), keep: keep}
	switch {
	case t.bin != "":
		if _, err := os.Stat(t.bin); err != nil {
			return nil, fmt.Errorf("-%s-bin: %w", tf.letter, err)
		}
		if t.name == "" {
			t.name = filepath.Base(t.bin)
		}
	case len(t.endpoints) > 0:
		if t.name == "" {
			t.name = strings.ToUpper(tf.letter)
		}
	default:
		return nil, nil
	}
	return t, nil
}

// runOnce starts t (if it is a binary), runs the workload w with args
// against it and stops it.
func runOnce(g global, t *target, w workload, args []string, stderr io.Writer) (report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	srv, err := t.start(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := w(attach(g, srv), args, stderr)
	if serr := srv.stop(); serr != nil && err == nil {
		err = fmt.Errorf("stopping %s: %w", t.name, serr)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	return rep, nil
}

// attach points g at srv: its endpoints, its processes, and (for servers
// bench started) how to restart them.
func attach(g global, srv *servers) global {
	g.endpoints = srv.endpoints
	if len(srv.pids) > 0 {
		g.serverPIDs = srv.pids
	}
	if len(srv.members) > 0 {
		g.restart = func(ctx context.Context) (time.Time, []int, error) {
			t0, err := srv.restart(ctx)
			return t0, append([]int(nil), srv.pids...), err
		}
	}
	return g
}

// roundResult is one run of a comparison or a sweep.
type roundResult struct {
	Round  int    `json:"round"`
	Target string `json:"target"`
	Report report `json:"report"`
}

// comparison is the outcome of compare.
type comparison struct {
	Label    string        `json:"label,omitempty"`
	Workload string        `json:"workload"`
	Args     []string      `json:"args"`
	Clients  int           `json:"clients"`
	Conns    int           `json:"conns"`
	Members  int           `json:"members"`
	A        string        `json:"a"`
	B        string        `json:"b"`
	Rounds   []roundResult `json:"rounds"`
	// Metrics are the measured fields, in the reports' order.
	Metrics []string `json:"metrics"`
	// Medians are each metric's median over the rounds, of A and of B.
	MediansA map[string]float64 `json:"medians_a"`
	MediansB map[string]float64 `json:"medians_b"`
	// Ratios are B's median over A's, where that means something.
	Ratios map[string]float64 `json:"ratios"`
}

// isMetric says whether a report field is a measurement (rather than the
// workload's configuration): those are what medians and ratios are of.
func isMetric(name string) bool {
	if name == "errors" || name == "conflicts" || name == "timeouts" {
		return true
	}
	for _, suf := range []string{"_per_second", "_ms", "_seconds", "_mib", "_errors", "_timeouts", "_ratio", "_per_op"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return name == "seconds"
}

// metricsOf returns the metric fields of the reports, in order of first
// appearance.
func metricsOf(reps []report) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range reps {
		for _, f := range r {
			if _, ok := toFloat(f.Value); ok && isMetric(f.Name) && !seen[f.Name] {
				seen[f.Name] = true
				out = append(out, f.Name)
			}
		}
	}
	return out
}

// medians returns each metric's median over reps (metrics missing from
// every report are left out).
func medians(reps []report, metrics []string) map[string]float64 {
	m := map[string]float64{}
	for _, name := range metrics {
		var xs []float64
		for _, r := range reps {
			if v, ok := r.number(name); ok {
				xs = append(xs, v)
			}
		}
		if len(xs) > 0 {
			m[name] = median(xs)
		}
	}
	return m
}

// summarizeComparison fills c's metrics, medians and ratios from its rounds.
func (c *comparison) summarize() {
	var as, bs []report
	for _, r := range c.Rounds {
		if r.Target == "a" {
			as = append(as, r.Report)
		} else {
			bs = append(bs, r.Report)
		}
	}
	c.Metrics = metricsOf(append(append([]report{}, as...), bs...))
	c.MediansA, c.MediansB = medians(as, c.Metrics), medians(bs, c.Metrics)
	c.Ratios = map[string]float64{}
	for _, name := range c.Metrics {
		a, aok := c.MediansA[name]
		b, bok := c.MediansB[name]
		if !aok || !bok {
			continue
		}
		if r, ok := ratio(b, a); ok {
			c.Ratios[name] = round(r, 3)
		}
	}
}

type column struct{ field, title string }

// roundColumns are the columns of the per-round table.
var roundColumns = []column{
	{"ops_per_second", "ops/s"},
	{"latency_avg_ms", "avg ms"},
	{"latency_p50_ms", "p50 ms"},
	{"latency_p99_ms", "p99 ms"},
	{"latency_max_ms", "max ms"},
	{"errors", "errors"},
	{"server_rss_peak_mib", "RSS peak MiB"},
	{"db_size_mib", "db MiB"},
}

// workloadColumns are the per-round columns of workloads that do not
// report a throughput.
var workloadColumns = map[string][]column{
	"maint": {
		{"baseline_p99_ms", "base p99 ms"},
		{"compact_seconds", "compact s"},
		{"compact_p99_ms", "compact p99 ms"},
		{"compact_max_ms", "compact max ms"},
		{"defrag_seconds", "defrag s"},
		{"defrag_p99_ms", "defrag p99 ms"},
		{"defrag_max_ms", "defrag max ms"},
		{"maint_errors", "op failed"},
		{"errors", "errors"},
		{"timeouts", "timeouts"},
		{"rss_after_prefill_mib", "RSS MiB"},
		{"prefill_db_size_mib", "db MiB"},
	},
	"restart": {
		{"restart_seconds", "restart s"},
		{"rss_after_prefill_mib", "RSS prefill MiB"},
		{"rss_after_restart_mib", "RSS restart MiB"},
		{"rss_settled_after_restart_mib", "RSS settled MiB"},
		{"db_size_mib", "db MiB"},
	},
}

// columns returns the per-round columns of c's workload.
func (c *comparison) columns() []column {
	if cols, ok := workloadColumns[c.Workload]; ok {
		return cols
	}
	return roundColumns
}

// fmtNum formats a table number: integers plainly, others to three
// decimals (one from 100 on), without trailing zeros.
func fmtNum(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "-"
	}
	digits := 3
	if math.Abs(x) >= 100 {
		digits = 1
	}
	return strconv.FormatFloat(round(x, digits), 'f', -1, 64)
}

// markdown renders c: a heading, every round and then the medians and
// ratios.
func (c *comparison) markdown() string {
	var b strings.Builder
	if c.Label != "" {
		fmt.Fprintf(&b, "### %s: %s %s\n\n", c.Label, c.Workload, strings.Join(c.Args, " "))
	} else {
		fmt.Fprintf(&b, "### %s %s\n\n", c.Workload, strings.Join(c.Args, " "))
	}
	fmt.Fprintf(&b, "%d clients over %d connections; A = %s, B = %s; %d rounds, alternating A B.\n\n",
		c.Clients, c.Conns, c.A, c.B, len(c.Rounds)/2)
	cols := c.columns()
	b.WriteString("| round | target |")
	for _, col := range cols {
		fmt.Fprintf(&b, " %s |", col.title)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---:|", len(cols)) + "\n")
	for _, r := range c.Rounds {
		name := c.nameOf(r.Target)
		fmt.Fprintf(&b, "| %d | %s |", r.Round, name)
		for _, col := range cols {
			if v, ok := r.Report.number(col.field); ok {
				fmt.Fprintf(&b, " %s |", fmtNum(v))
			} else {
				b.WriteString(" - |")
			}
		}
		b.WriteString("\n")
	}
	an, bn := c.nameOf("a"), c.nameOf("b")
	fmt.Fprintf(&b, "\n| median | %s | %s | %s / %s |\n|---|---:|---:|---:|\n", an, bn, bn, an)
	for _, name := range c.Metrics {
		b.WriteString("| " + name + " |")
		for _, m := range []map[string]float64{c.MediansA, c.MediansB} {
			if v, ok := m[name]; ok {
				fmt.Fprintf(&b, " %s |", fmtNum(v))
			} else {
				b.WriteString(" - |")
			}
		}
		if r, ok := c.Ratios[name]; ok {
			fmt.Fprintf(&b, " %.2f |\n", r)
		} else {
			b.WriteString(" - |\n")
		}
	}
	return b.String()
}

// nameOf returns the table name of target "a" or "b".
func (c *comparison) nameOf(t string) string {
	full := c.A
	if t == "b" {
		full = c.B
	}
	name, _, _ := strings.Cut(full, " (")
	return name
}

// runCompare is `bench compare`.
func runCompare(g global, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("compare", stderr)
	a, b := declareTarget(fs, "a"), declareTarget(fs, "b")
	members := fs.Int("members", 1, "members of each cluster started from a binary (1 or 3)")
	rounds := fs.Int("rounds", 3, "rounds: each runs A then B")
	mdOut := fs.String("md", "", "also write the markdown table to this file")
	jsonOut := fs.String("json-out", "", "also write the JSON result to this file")
	settle := fs.Duration("settle", 0, "with server processes: how long after a run to sample their memory again")
	keep := fs.Bool("keep", false, "keep the data dirs and logs of started servers")
	label := fs.String("label", "", "the comparison's name in `bench summary` (default: the workload and its flags)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bench [global flags] compare [flags] WORKLOAD [workload flags]\n\n"+
			"Runs WORKLOAD against A and B alternately, -rounds times, and prints every round, the medians and B/A.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, err := compareSetup(fs, a, b, *members, *rounds, *keep)
	if err != nil {
		fmt.Fprintf(stderr, "bench compare: %v\n", err)
		return 2
	}
	defer stopOnInterrupt(stderr)()
	ta, tb, w, wargs := c.ta, c.tb, c.w, fs.Args()[1:]
	g.settle = *settle
	res := &comparison{Label: *label, Workload: fs.Arg(0), Args: wargs, Clients: g.clients, Conns: g.conns, Members: *members, A: ta.String(), B: tb.String()}
	for r := 1; r <= *rounds; r++ {
		for _, t := range []struct {
			id string
			t  *target
		}{{"a", ta}, {"b", tb}} {
			fmt.Fprintf(stderr, "compare: round %d/%d: %s\n", r, *rounds, t.t.name)
			rep, err := runOnce(g, t.t, w, wargs, stderr)
			if err != nil {
				fmt.Fprintf(stderr, "bench compare: round %d: %v\n", r, err)
				return 1
			}
			var parts []string
			for _, col := range res.columns()[:3] {
				if v, ok := rep.number(col.field); ok {
					parts = append(parts, col.title+" "+fmtNum(v))
				}
			}
			fmt.Fprintf(stderr, "compare: round %d: %s: %s\n", r, t.t.name, strings.Join(parts, ", "))
			res.Rounds = append(res.Rounds, roundResult{Round: r, Target: t.id, Report: rep})
		}
	}
	res.summarize()
	md := res.markdown()
	js, _ := json.MarshalIndent(res, "", "  ")
	if g.json {
		fmt.Fprintln(stdout, string(js))
	} else {
		fmt.Fprint(stdout, md)
	}
	if err := writeOut(*mdOut, []byte(md)); err != nil {
		fmt.Fprintf(stderr, "bench compare: %v\n", err)
		return 1
	}
	if err := writeOut(*jsonOut, append(js, '\n')); err != nil {
		fmt.Fprintf(stderr, "bench compare: %v\n", err)
		return 1
	}
	return 0
}

type compareConfig struct {
	ta, tb *target
	w      workload
}

// compareSetup checks compare's flags: two targets, a workload.
func compareSetup(fs *flag.FlagSet, a, b targetFlags, members, rounds int, keep bool) (compareConfig, error) {
	var c compareConfig
	if members < 1 || rounds < 1 {
		return c, fmt.Errorf("-members and -rounds must be at least 1")
	}
	var err error
	if c.ta, err = a.target(members, keep); err != nil {
		return c, err
	}
	if c.tb, err = b.target(members, keep); err != nil {
		return c, err
	}
	if c.ta == nil || c.tb == nil {
		return c, fmt.Errorf("need two targets: -a or -a-bin, and -b or -b-bin")
	}
	if c.ta.name == c.tb.name {
		c.ta.name, c.tb.name = c.ta.name+"-A", c.tb.name+"-B"
	}
	if fs.NArg() == 0 {
		return c, fmt.Errorf("no workload (have: %s)", workloadNames())
	}
	var ok bool
	if c.w, ok = workloads[fs.Arg(0)]; !ok {
		return c, fmt.Errorf("unknown workload %q (have: %s)", fs.Arg(0), workloadNames())
	}
	return c, nil
}

// writeOut writes b to path, unless path is empty.
func writeOut(path string, b []byte) error {
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
