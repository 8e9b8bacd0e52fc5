package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// sweepPoint is one target's runs at one value of the swept parameter.
type sweepPoint struct {
	Value   string             `json:"value"`
	Target  string             `json:"target"`
	Rounds  []report           `json:"rounds"`
	Medians map[string]float64 `json:"medians"`
}

// sweepResult is the outcome of sweep.
type sweepResult struct {
	Workload string       `json:"workload"`
	Args     []string     `json:"args"`
	Param    string       `json:"param"`
	Values   []string     `json:"values"`
	Targets  []string     `json:"targets"`
	Clients  int          `json:"clients"`
	Conns    int          `json:"conns"`
	Points   []sweepPoint `json:"points"`
	Metrics  []string     `json:"metrics"`
}

// point returns the point of target at value, nil if none.
func (s *sweepResult) point(target, value string) *sweepPoint {
	for i := range s.Points {
		if s.Points[i].Target == target && s.Points[i].Value == value {
			return &s.Points[i]
		}
	}
	return nil
}

// summarize fills the metrics and every point's medians.
func (s *sweepResult) summarize() {
	var all []report
	for _, p := range s.Points {
		all = append(all, p.Rounds...)
	}
	s.Metrics = metricsOf(all)
	for i := range s.Points {
		s.Points[i].Medians = medians(s.Points[i].Rounds, s.Metrics)
	}
}

// sweepColumns are the columns of the sweep table.
var sweepColumns = []struct{ field, title string }{
	{"ops_per_second", "ops/s"},
	{"latency_p50_ms", "p50 ms"},
	{"latency_p99_ms", "p99 ms"},
	{"errors", "errors"},
	{"server_rss_mib", "RSS MiB"},
	{"server_rss_peak_mib", "RSS peak MiB"},
	{"db_size_mib", "db MiB"},
}

// rows returns the table: a header and a row per value and target; with
// two targets, the second's rows end with its ops/s and p99 over the
// first's.
func (s *sweepResult) rows() [][]string {
	head := []string{s.Param, "target"}
	for _, c := range sweepColumns {
		head = append(head, c.title)
	}
	two := len(s.Targets) == 2
	if two {
		head = append(head, "ops/s "+s.Targets[1]+"/"+s.Targets[0], "p99 "+s.Targets[1]+"/"+s.Targets[0])
	}
	rows := [][]string{head}
	for _, v := range s.Values {
		for ti, t := range s.Targets {
			p := s.point(t, v)
			if p == nil {
				continue
			}
			row := []string{v, t}
			for _, c := range sweepColumns {
				if x, ok := p.Medians[c.field]; ok {
					row = append(row, fmtNum(x))
				} else {
					row = append(row, "-")
				}
			}
			if two {
				r1, r2 := "", ""
				if a := s.point(s.Targets[0], v); ti == 1 && a != nil {
					r1, r2 = "-", "-"
					if r, ok := ratio(p.Medians["ops_per_second"], a.Medians["ops_per_second"]); ok {
						r1 = fmt.Sprintf("%.2f", r)
					}
					if r, ok := ratio(p.Medians["latency_p99_ms"], a.Medians["latency_p99_ms"]); ok {
						r2 = fmt.Sprintf("%.2f", r)
					}
				}
				row = append(row, r1, r2)
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func (s *sweepResult) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s %s, over %s\n\n", s.Workload, strings.Join(s.Args, " "), s.Param)
	rows := s.rows()
	for i, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
		if i == 0 {
			b.WriteString("|---|---|" + strings.Repeat("---:|", len(r)-2) + "\n")
		}
	}
	return b.String()
}

// chartMetrics are the metrics drawn, when measured.
var chartMetrics = []struct{ field, title string }{
	{"ops_per_second", "throughput (ops/s)"},
	{"latency_p99_ms", "p99 latency (ms)"},
	{"server_rss_mib", "server RSS after the run (MiB)"},
	{"server_rss_peak_mib", "server RSS peak (MiB)"},
	{"db_size_mib", "database size (MiB)"},
}

// xValues returns the values as numbers for the x axis: the parameter's
// values if all are numbers, else their positions.
func (s *sweepResult) xValues() []float64 {
	xs := make([]float64, len(s.Values))
	for i, v := range s.Values {
		x, err := parseNumber(v)
		if err != nil {
			for j := range xs {
				xs[j] = float64(j + 1)
			}
			return xs
		}
		xs[i] = x
	}
	return xs
}

// parseNumber reads a number, allowing the suffixes k and m (thousand,
// million) that sweeps of key counts use.
func parseNumber(v string) (float64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(v, "k"):
		mult, v = 1e3, strings.TrimSuffix(v, "k")
	case strings.HasSuffix(v, "m"):
		mult, v = 1e6, strings.TrimSuffix(v, "m")
	}
	x, err := strconv.ParseFloat(v, 64)
	return x * mult, err
}

// html renders s as a self-contained page: a chart per measured metric
// (one line per target) and the table.
func (s *sweepResult) html(command string) string {
	var b strings.Builder
	title := fmt.Sprintf("bench sweep: %s over %s", s.Workload, s.Param)
	b.WriteString("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\n<head>\n<meta charset=\"utf-8\"/>\n")
	fmt.Fprintf(&b, "<title>%s</title>\n", esc(title))
	b.WriteString("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}code{background:#f4f4f4}td{white-space:nowrap}.charts{display:flex;flex-wrap:wrap}</style>\n</head>\n<body>\n")
	fmt.Fprintf(&b, "<h1>%s</h1>\n", esc(title))
	fmt.Fprintf(&b, "<p><code>%s</code></p>\n", esc(command))
	fmt.Fprintf(&b, "<p>workload flags: <code>%s</code>; %d clients over %d connections (unless swept); generated %s.</p>\n",
		esc(strings.Join(s.Args, " ")), s.Clients, s.Conns, time.Now().UTC().Format(time.RFC3339))
	xs := s.xValues()
	b.WriteString("<div class=\"charts\">\n")
	for _, m := range chartMetrics {
		var ss []series
		have := false
		for _, t := range s.Targets {
			sr := series{Name: t, Y: make([]float64, len(s.Values))}
			for i, v := range s.Values {
				sr.Y[i] = math.NaN()
				if p := s.point(t, v); p != nil {
					if y, ok := p.Medians[m.field]; ok {
						sr.Y[i], have = y, true
					}
				}
			}
			ss = append(ss, sr)
		}
		if have {
			b.WriteString("<div>\n" + svgChart(m.title, s.Param, m.title, xs, s.Values, ss) + "</div>\n")
		}
	}
	b.WriteString("</div>\n<table>\n")
	for i, r := range s.rows() {
		cell := "td"
		if i == 0 {
			cell = "th"
		}
		b.WriteString("<tr>")
		for _, c := range r {
			fmt.Fprintf(&b, "<%s>%s</%s>", cell, esc(c), cell)
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n</body>\n</html>\n")
	return b.String()
}

// sweepArgs returns the global options and workload arguments of one
// point: clients and conns are global flags, anything else is the
// workload's flag, set after its other flags so it wins.
func sweepArgs(g global, wargs []string, param, value string) (global, []string, error) {
	switch param {
	case "clients", "conns":
		n, err := parseNumber(value)
		if err != nil || n < 1 || n != math.Trunc(n) {
			return g, nil, fmt.Errorf("-%s %q: want a whole number at least 1", param, value)
		}
		if param == "clients" {
			g.clients = int(n)
			g.conns = min(g.conns, g.clients)
		} else {
			g.conns = int(n)
		}
		return g, wargs, nil
	}
	if x, err := parseNumber(value); err == nil && x == math.Trunc(x) && strings.ContainsAny(value, "km") {
		value = strconv.FormatInt(int64(x), 10)
	}
	return g, append(append([]string{}, wargs...), "-"+param+"="+value), nil
}

// runSweep is `bench sweep`.
func runSweep(g global, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sweep", stderr)
	a, b := declareTarget(fs, "a"), declareTarget(fs, "b")
	param := fs.String("param", "clients", "the parameter varied: clients, conns, or a flag of the workload (prefill, keys, val-size, streams, watch-per-stream, ...)")
	values := fs.String("values", "1,10,100", "comma-separated values of -param (k and m suffixes: thousands, millions)")
	members := fs.Int("members", 1, "members of each cluster started from a binary")
	rounds := fs.Int("rounds", 1, "runs per value and target (the tables have medians)")
	mdOut := fs.String("md", "", "also write the markdown table to this file")
	jsonOut := fs.String("json-out", "", "also write the JSON result to this file")
	htmlOut := fs.String("html", "", "write an HTML page with the charts and the table to this file")
	settle := fs.Duration("settle", 0, "with server processes: how long after a run to sample their memory again")
	keep := fs.Bool("keep", false, "keep the data dirs and logs of started servers")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bench [global flags] sweep [flags] WORKLOAD [workload flags]\n\n"+
			"Runs WORKLOAD for every value of -param against one or two targets.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "bench sweep: %v\n", err)
		return code
	}
	if *members < 1 || *rounds < 1 {
		return fail(2, fmt.Errorf("-members and -rounds must be at least 1"))
	}
	var targets []*target
	for _, tf := range []targetFlags{a, b} {
		t, err := tf.target(*members, *keep)
		if err != nil {
			return fail(2, err)
		}
		if t != nil {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return fail(2, fmt.Errorf("no target: -a or -a-bin (and optionally -b or -b-bin)"))
	}
	if len(targets) == 2 && targets[0].name == targets[1].name {
		targets[0].name, targets[1].name = targets[0].name+"-A", targets[1].name+"-B"
	}
	if fs.NArg() == 0 {
		return fail(2, fmt.Errorf("no workload (have: %s)", workloadNames()))
	}
	w, ok := workloads[fs.Arg(0)]
	if !ok {
		return fail(2, fmt.Errorf("unknown workload %q (have: %s)", fs.Arg(0), workloadNames()))
	}
	vals := splitList(*values)
	if len(vals) == 0 {
		return fail(2, fmt.Errorf("-values is empty"))
	}
	g.settle = *settle
	defer stopOnInterrupt(stderr)()
	res := &sweepResult{Workload: fs.Arg(0), Args: fs.Args()[1:], Param: *param, Values: vals, Clients: g.clients, Conns: g.conns}
	for _, t := range targets {
		res.Targets = append(res.Targets, t.name)
	}
	for _, v := range vals {
		pg, wargs, err := sweepArgs(g, res.Args, *param, v)
		if err != nil {
			return fail(2, err)
		}
		for r := 1; r <= *rounds; r++ {
			for _, t := range targets {
				fmt.Fprintf(stderr, "sweep: %s=%s, round %d/%d: %s\n", *param, v, r, *rounds, t.name)
				rep, err := runOnce(pg, t, w, wargs, stderr)
				if err != nil {
					return fail(1, fmt.Errorf("%s=%s: %w", *param, v, err))
				}
				p := res.point(t.name, v)
				if p == nil {
					res.Points = append(res.Points, sweepPoint{Value: v, Target: t.name})
					p = &res.Points[len(res.Points)-1]
				}
				p.Rounds = append(p.Rounds, rep)
			}
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
	command := "bench " + strings.Join(append([]string{"sweep"}, args...), " ")
	for _, out := range []struct {
		path string
		b    []byte
	}{{*mdOut, []byte(md)}, {*jsonOut, append(js, '\n')}, {*htmlOut, []byte(res.html(command))}} {
		if err := writeOut(out.path, out.b); err != nil {
			return fail(1, err)
		}
	}
	return 0
}
