package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// comparisonSummary is what summary reads of a comparison's JSON.
type comparisonSummary struct {
	Label    string             `json:"label"`
	Workload string             `json:"workload"`
	Args     []string           `json:"args"`
	Clients  int                `json:"clients"`
	Members  int                `json:"members"`
	A        string             `json:"a"`
	B        string             `json:"b"`
	Rounds   []json.RawMessage  `json:"rounds"`
	MediansA map[string]float64 `json:"medians_a"`
	MediansB map[string]float64 `json:"medians_b"`
	Ratios   map[string]float64 `json:"ratios"`
}

func (c comparisonSummary) name() string {
	if c.Label != "" {
		return c.Label
	}
	return strings.TrimSpace(c.Workload + " " + strings.Join(c.Args, " "))
}

func shortName(full string) string {
	name, _, _ := strings.Cut(full, " (")
	return name
}

// summaryColumns are the headline metrics: each has A's median, B's and
// B/A.
var summaryColumns = []struct{ field, title string }{
	{"ops_per_second", "ops/s"},
	{"latency_avg_ms", "avg ms"},
	{"latency_p99_ms", "p99 ms"},
	{"server_cpu_us_per_op", "server CPU µs/op"},
	{"server_rss_mib", "RSS MiB"},
	{"db_size_mib", "db MiB"},
}

// summaryRows returns the headline table: a row per comparison.
func summaryRows(cs []comparisonSummary) [][]string {
	if len(cs) == 0 {
		return nil
	}
	an, bn := shortName(cs[0].A), shortName(cs[0].B)
	head := []string{"workload", "clients", "members", "rounds"}
	for _, col := range summaryColumns {
		head = append(head, an+" "+col.title, bn+" "+col.title, bn+"/"+an)
	}
	rows := [][]string{head}
	for _, c := range cs {
		row := []string{c.name(), fmt.Sprint(c.Clients), fmt.Sprint(c.Members), fmt.Sprint(len(c.Rounds) / 2)}
		for _, col := range summaryColumns {
			for _, m := range []map[string]float64{c.MediansA, c.MediansB} {
				if v, ok := m[col.field]; ok {
					row = append(row, fmtNum(v))
				} else {
					row = append(row, "-")
				}
			}
			if r, ok := c.Ratios[col.field]; ok {
				row = append(row, fmt.Sprintf("%.2f", r))
			} else {
				row = append(row, "-")
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func markdownTable(rows [][]string) string {
	var b strings.Builder
	for i, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
		if i == 0 {
			b.WriteString("|---|" + strings.Repeat("---:|", len(r)-1) + "\n")
		}
	}
	return b.String()
}

// ratioBars draws a horizontal bar per comparison: B's throughput over
// A's, with lines at 1 (parity) and 1.5.
func ratioBars(cs []comparisonSummary) string {
	const left, width, barH, top = 300.0, 360.0, 22.0, 30.0
	hi := 2.0
	for _, c := range cs {
		if r, ok := c.Ratios["ops_per_second"]; ok {
			hi = math.Max(hi, r)
		}
	}
	hi = niceMax(hi)
	h := top + float64(len(cs))*barH + 30
	x := func(r float64) float64 { return left + r/hi*width }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" font-family="sans-serif" font-size="12">`+"\n", left+width+40, h)
	if len(cs) > 0 {
		fmt.Fprintf(&b, `<text x="10" y="18" font-size="14" font-weight="bold">%s</text>`+"\n",
			esc("throughput, "+shortName(cs[0].B)+" / "+shortName(cs[0].A)))
	}
	for i, c := range cs {
		y := top + float64(i)*barH
		fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end">%s</text>`+"\n", left-6, y+15, esc(fmt.Sprintf("%s (%s)", c.name(), membersText(c.Members))))
		if r, ok := c.Ratios["ops_per_second"]; ok {
			colour := "#d62728"
			if r >= 1 {
				colour = "#1f77b4"
			}
			fmt.Fprintf(&b, `<rect class="bar" x="%g" y="%g" width="%.1f" height="%g" fill="%s"><title>%.2f</title></rect>`+"\n", left, y+3, x(r)-left, barH-6, colour, r)
			fmt.Fprintf(&b, `<text x="%.1f" y="%g">%.2f</text>`+"\n", x(r)+4, y+15, r)
		}
	}
	for _, ref := range []float64{1, 1.5} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#333" stroke-dasharray="4 3"/>`+"\n", x(ref), top-4, x(ref), h-26)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x(ref), h-10, esc(fmtNum(ref)))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func summaryHTML(cs []comparisonSummary) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>bench summary</title>\n")
	b.WriteString("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}th{background:#f4f4f4}</style>\n</head>\n<body>\n<h1>bench summary</h1>\n")
	if len(cs) > 0 {
		fmt.Fprintf(&b, "<p>A = %s; B = %s. Medians of alternating rounds.</p>\n", esc(cs[0].A), esc(cs[0].B))
	}
	b.WriteString("<div>\n" + ratioBars(cs) + "</div>\n<table>\n")
	for i, r := range summaryRows(cs) {
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

// runSummary is `bench summary`: the headline table of several
// comparisons' JSON files (compare -json-out), in markdown, and an HTML
// page with a bar chart of the throughput ratios.
func runSummary(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("summary", stderr)
	htmlOut := fs.String("html", "", "also write an HTML page with the table and a chart of the throughput ratios")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bench summary [-html FILE] COMPARE.json...\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "bench summary: no comparison files")
		return 2
	}
	var cs []comparisonSummary
	for _, path := range fs.Args() {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "bench summary: %v\n", err)
			return 1
		}
		var c comparisonSummary
		if err := json.Unmarshal(b, &c); err != nil || c.Workload == "" {
			fmt.Fprintf(stderr, "bench summary: %s is not the JSON of a comparison (%v)\n", path, err)
			return 1
		}
		cs = append(cs, c)
	}
	fmt.Fprint(stdout, markdownTable(summaryRows(cs)))
	if err := writeOut(*htmlOut, []byte(summaryHTML(cs))); err != nil {
		fmt.Fprintf(stderr, "bench summary: %v\n", err)
		return 1
	}
	return 0
}

// membersText is "1 member" or "N members".
func membersText(n int) string {
	if n == 1 {
		return "1 member"
	}
	return fmt.Sprintf("%d members", n)
}
