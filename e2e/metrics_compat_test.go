package e2e

import (
	"bufio"
	"context"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdMetricsFixture is what etcd 3.7.3 served on /metrics (see its header).
const etcdMetricsFixture = "testdata/etcd-3.7.3-metrics.txt"

// metricsLeftOut are the etcd families Cairn does not export, each with
// the reason docs/monitoring.md ("What Cairn leaves out") gives.
var metricsLeftOut = map[string]string{
	"etcd_snap_fsync_duration_seconds":                      "no raft snapshot file",
	"etcd_debugging_snap_save_total_duration_seconds":       "no raft snapshot file",
	"etcd_debugging_snap_save_marshalling_duration_seconds": "no raft snapshot file",
}

// leftOut tells whether docs/monitoring.md says why Cairn does not export
// etcd's family name: one of metricsLeftOut, the v2 store's (not exported
// yet) or the gRPC proxy's (Cairn has no proxy).
func leftOut(name string) bool {
	return metricsLeftOut[name] != "" || strings.HasPrefix(name, "etcd_debugging_store_") || strings.HasPrefix(name, "etcd_grpc_proxy_")
}

// metricFamily is one family of a /metrics page: its help, type, the
// names of its series' labels and, for a histogram, its buckets.
type metricFamily struct {
	help, typ string
	labels    map[string]bool
	buckets   map[string]bool
}

// parseFamilies reads the families of a Prometheus text page whose names
// start with one of prefixes.
func parseFamilies(t *testing.T, page string, prefixes ...string) map[string]*metricFamily {
	t.Helper()
	want := func(name string) bool {
		return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) })
	}
	fams := map[string]*metricFamily{}
	get := func(name string) *metricFamily {
		f := fams[name]
		if f == nil {
			f = &metricFamily{labels: map[string]bool{}, buckets: map[string]bool{}}
			fams[name] = f
		}
		return f
	}
	var cur string // the family of the last TYPE line
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "# HELP "):
			name, help, _ := strings.Cut(strings.TrimPrefix(l, "# HELP "), " ")
			if want(name) {
				get(name).help = help
			}
		case strings.HasPrefix(l, "# TYPE "):
			name, typ, _ := strings.Cut(strings.TrimPrefix(l, "# TYPE "), " ")
			cur = name
			if want(name) {
				get(name).typ = typ
			}
		case l == "" || strings.HasPrefix(l, "#"):
		default:
			sm := sampleLine.FindStringSubmatch(l)
			if sm == nil {
				t.Fatalf("unparsable sample line %q", l)
			}
			if !want(cur) || !strings.HasPrefix(sm[1], cur) {
				continue
			}
			f := get(cur)
			for _, p := range labelPair.FindAllStringSubmatch(sm[2], -1) {
				if p[1] == "le" {
					f.buckets[p[2]] = true
				} else {
					f.labels[p[1]] = true
				}
			}
		}
	}
	return fams
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Every etcd_* and os_* family etcd 3.7.3 serves after the same requests
// is served by Cairn with etcd's help, type, label names and buckets,
// unless docs/monitoring.md says why Cairn leaves it out; and Cairn serves
// no etcd_* family etcd does not, but the peer metrics etcd creates at
// their first event (this member has no peers).
func TestMetricsMatchEtcd(t *testing.T) {
	t.Parallel()
	fixture, err := os.ReadFile(etcdMetricsFixture)
	if err != nil {
		t.Fatal(err)
	}
	etcd := parseFamilies(t, string(fixture), "etcd_", "os_")

	c := NewCluster(t, 1)
	m := c.Members[0]
	cli := c.Client(t)
	// What was done to etcd before the fixture was taken.
	for _, k := range []string{"k1", "k2", "k3", "k4", "k5", "k1"} {
		if _, err := cli.Put(ctx(t), k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	l, err := cli.Grant(ctx(t), 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.KeepAliveOnce(ctx(t), l.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke(ctx(t), l.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Txn(ctx(t)).Then(clientv3.OpPut("t1", "x"), clientv3.OpPut("t2", "y")).Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := cli.Get(ctx(t), "k1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx(t), r.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.HashKV(ctx(t), m.ClientURL, 0); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx(t))
	wch := cli.Watch(wctx, "k1")
	if _, err := cli.Put(ctx(t), "k1", "w"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wch:
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	cancel()
	rc, err := cli.Snapshot(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Defragment(ctx(t), m.ClientURL); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx(t), "k1", clientv3.WithSerializable()); err != nil {
		t.Fatal(err)
	}

	var cairn map[string]*metricFamily
	eventually(t, 10*time.Second, "Cairn serves etcd's metrics", func() (bool, string) {
		code, body := httpDo(t, m, "GET", "/metrics", "")
		if code != 200 {
			return false, "GET /metrics: " + body
		}
		cairn = parseFamilies(t, body, "etcd_", "os_")
		var missing []string
		for name := range etcd {
			if _, ok := cairn[name]; !ok && !leftOut(name) {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		return len(missing) == 0, "missing: " + strings.Join(missing, ", ")
	})
	for name, e := range etcd {
		g, ok := cairn[name]
		if !ok {
			continue // left out (checked above)
		}
		if g.help != e.help {
			t.Errorf("%s: help %q, etcd's is %q", name, g.help, e.help)
		}
		if g.typ != e.typ {
			t.Errorf("%s: type %s, etcd's is %s", name, g.typ, e.typ)
		}
		if len(g.labels) > 0 && len(e.labels) > 0 && !slices.Equal(sortedKeys(g.labels), sortedKeys(e.labels)) {
			t.Errorf("%s: labels %v, etcd's are %v", name, sortedKeys(g.labels), sortedKeys(e.labels))
		}
		if !slices.Equal(sortedKeys(g.buckets), sortedKeys(e.buckets)) {
			t.Errorf("%s: buckets %v, etcd's are %v", name, sortedKeys(g.buckets), sortedKeys(e.buckets))
		}
	}
	for name := range cairn {
		if _, ok := etcd[name]; !ok && !strings.HasPrefix(name, "etcd_network_") {
			t.Errorf("Cairn serves %s, which etcd 3.7.3 does not", name)
		}
	}
}
