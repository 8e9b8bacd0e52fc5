package monitoring

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// The files under test, in the repository's monitoring/ directory.
const (
	dashboardFile = "../../monitoring/grafana-dashboard.json"
	rulesFile     = "../../monitoring/alerts.yaml"
)

// promql is Prometheus' own PromQL parser, with its default options (what
// a Prometheus server accepts without feature flags).
var promql = parser.NewParser(parser.Options{})

// query is one PromQL expression and where it was found.
type query struct {
	where string
	expr  string
}

// grafanaVariables are the Grafana variables whose values PromQL must
// see to parse (a range); the others ($job, $instance) only appear inside
// label values, which are strings to PromQL.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h")

// labelValues is Grafana's label_values(selector, label) variable query.
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// dashboardJSON is the part of a Grafana dashboard the queries live in.
type dashboardJSON struct {
	Panels     []panelJSON `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panelJSON struct {
	Title   string      `json:"title"`
	Panels  []panelJSON `json:"panels"` // a collapsed row's
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// dashboardQueries returns every PromQL expression of the dashboard: its
// panels' targets, and the selectors its template variables read
// (label_values(selector, label)).
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboardJSON
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []query
	var walk func(ps []panelJSON)
	walk = func(ps []panelJSON) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("dashboard panel %q target %s has no expression", p.Title, tg.RefID)
					continue
				}
				out = append(out, query{fmt.Sprintf("dashboard panel %q target %s", p.Title, tg.RefID), grafanaVariables.Replace(tg.Expr)})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			// Older dashboards give the query as a plain string.
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Fatalf("dashboard variable %s: query %s: %v", v.Name, v.Query, err)
			}
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("dashboard variable %s: query %q is not label_values(selector, label)", v.Name, q.Query)
			continue
		}
		out = append(out, query{fmt.Sprintf("dashboard variable %s", v.Name), m[1]})
	}
	if len(out) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	return out
}

// parseRules reads the rule file with Prometheus' rule parser, which
// validates it as `promtool check rules` and the Prometheus server do:
// YAML structure and known fields, every expression, label and annotation
// templates, duplicate-free group names.
func parseRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, promql, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Errorf("rule file: %v", err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return groups
}

func ruleQueries(t *testing.T) []query {
	t.Helper()
	var out []query
	for _, g := range parseRules(t).Groups {
		for i, r := range g.Rules {
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			out = append(out, query{fmt.Sprintf("rule group %s rule %d (%s)", g.Name, i, name), r.Expr})
		}
	}
	if len(out) == 0 {
		t.Fatal("the rule file has no rules")
	}
	return out
}

// allQueries are the dashboard's and the rules' expressions.
func allQueries(t *testing.T) []query {
	return append(dashboardQueries(t), ruleQueries(t)...)
}

// metricNames parses expr with Prometheus' parser and returns the metric
// names its selectors read, sorted. A selector without a metric name is an
// error: the test could not check what it reads.
func metricNames(expr string) ([]string, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var errs []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		var ms []*labels.Matcher
		var name string
		switch n := n.(type) {
		case *parser.VectorSelector:
			name, ms = n.Name, n.LabelMatchers
		case *parser.MatrixSelector:
			return nil // its VectorSelector is visited too
		default:
			return nil
		}
		if name == "" {
			for _, m := range ms {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name == "" {
			errs = append(errs, fmt.Sprintf("selector %s names no metric", n))
			return nil
		}
		seen[name] = true
		return nil
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// selectorNames is metricNames for a bare selector (a variable's).
func selectorNames(sel string) ([]string, error) {
	ms, err := promql.ParseMetricSelector(sel)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			return []string{m.Value}, nil
		}
	}
	return nil, fmt.Errorf("selector %s names no metric", sel)
}

// queriedMetrics maps every metric name the dashboard and the rules read
// to where they read it.
func queriedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, q := range allQueries(t) {
		var names []string
		var err error
		if strings.HasPrefix(q.where, "dashboard variable") {
			names, err = selectorNames(q.expr)
		} else {
			names, err = metricNames(q.expr)
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, q.expr)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s reads no metric: %s", q.where, q.expr)
		}
		for _, n := range names {
			out[n] = append(out[n], q.where)
		}
	}
	return out
}

// Every expression of the dashboard and the rules parses, and reads at
// least one metric by name.
func TestQueriesParse(t *testing.T) {
	ms := queriedMetrics(t)
	names := make([]string, 0, len(ms))
	for n := range ms {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d metrics read: %s", len(names), strings.Join(names, " "))
}

// The rule file is valid for Prometheus: its own rule parser accepts it
// (parseRules), every alert has a severity, a summary and a description;
// and promtool, when it is on PATH (Debian's prometheus package ships it),
// agrees.
func TestRulesAreValid(t *testing.T) {
	groups := parseRules(t)
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if r.Labels["severity"] == "" {
				t.Errorf("alert %s has no severity label", r.Alert)
			}
			for _, a := range []string{"summary", "description"} {
				if r.Annotations[a] == "" {
					t.Errorf("alert %s has no %s annotation", r.Alert, a)
				}
			}
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Logf("promtool is not on PATH: the rules were checked with Prometheus' rule parser only")
		return
	}
	out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("promtool check rules:\n%s", out)
}

// The extractor finds the metrics of selectors anywhere in an expression
// (functions, subqueries, binary operations, __name__ matchers), and no
// label names, function names or keywords.
func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string
	}{
		{`up`, "up"},
		{`sum without (instance) (rate(a_total{job=~".*x.*"}[5m])) / on (job) group_left b`, "a_total b"},
		{`increase((max without (instance) (c) or 0*absent(c))[15m:1m]) >= 4`, "c"},
		{`{__name__="d", job="x"} and histogram_quantile(0.99, sum by (le) (rate(e_bucket[1m])))`, "d e_bucket"},
		{`predict_linear(f[4h], 4*60*60) > g offset 1h`, "f g"},
	} {
		got, err := metricNames(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("metricNames(%s) = %v, want %s", tc.expr, got, tc.want)
		}
	}
	if _, err := metricNames(`{job="x"}`); err == nil {
		t.Error("a selector without a metric name was accepted")
	}
	if _, err := metricNames(`sum(rate(x[5m])`); err == nil {
		t.Error("a malformed expression was accepted")
	}
}

// The dashboard is well formed for Grafana: unique panel IDs, every panel
// placed on the grid and reading the data source variable, unique target
// IDs within a panel.
func TestDashboardIsWellFormed(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		ID         int                 `json:"id"`
		Type       string              `json:"type"`
		Title      string              `json:"title"`
		GridPos    *struct{ W, H int } `json:"gridPos"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			RefID string `json:"refId"`
		} `json:"targets"`
		Panels []panel `json:"panels"`
	}
	var d struct {
		UID    string  `json:"uid"`
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q, title %q", d.UID, d.Title)
	}
	ids := map[int]string{}
	var check func(ps []panel)
	check = func(ps []panel) {
		for _, p := range ps {
			if prev, ok := ids[p.ID]; ok || p.ID == 0 {
				t.Errorf("panel %q has id %d (also %q)", p.Title, p.ID, prev)
			}
			ids[p.ID] = p.Title
			if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Errorf("panel %q has no place on the grid", p.Title)
			}
			if p.Type != "row" && (p.Datasource == nil || p.Datasource.UID != "${datasource}") {
				t.Errorf("panel %q does not read the data source variable", p.Title)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("panel %q: target refId %q empty or repeated", p.Title, tg.RefID)
				}
				refs[tg.RefID] = true
			}
			check(p.Panels)
		}
	}
	check(d.Panels)
}
