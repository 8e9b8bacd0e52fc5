package console

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The console's charts are drawn from the member's own registry (what
// /metrics serves, unauthenticated, in etcd too), sampled every interval
// and kept for the last minutes in memory: no Prometheus needed.

// A chartSeries is one line of a chart, computed from one sample of the
// registry and the sample before it.
type chartSeries struct {
	name string
	f    func(cur, prev *sample, dt float64) float64
}

// sample is one gathering of the registry, reduced to what the series read:
// the sum over every label set of each counter or gauge, and the summed
// buckets of each histogram.
type sample struct {
	at     time.Time
	values map[string]float64
	hists  map[string]histogram
}

type histogram struct {
	bounds []float64 // upper bounds, ascending, +Inf last
	counts []float64 // cumulative
}

var chartSeriesList = []chartSeries{
	{"requests_per_s", rateOf("grpc_server_handled_total")},
	{"request_p50_ms", quantileOf("etcd_server_request_duration_seconds", 0.5, 1000)},
	{"request_p99_ms", quantileOf("etcd_server_request_duration_seconds", 0.99, 1000)},
	{"proposals_committed_per_s", rateOf("etcd_server_proposals_committed_total")},
	{"proposals_applied_per_s", rateOf("etcd_server_proposals_applied_total")},
	{"proposals_failed_per_s", rateOf("etcd_server_proposals_failed_total")},
	{"proposals_pending", gaugeOf("etcd_server_proposals_pending")},
	{"wal_fsync_p50_ms", quantileOf("etcd_disk_wal_fsync_duration_seconds", 0.5, 1000)},
	{"wal_fsync_p99_ms", quantileOf("etcd_disk_wal_fsync_duration_seconds", 0.99, 1000)},
	{"backend_commit_p50_ms", quantileOf("etcd_disk_backend_commit_duration_seconds", 0.5, 1000)},
	{"backend_commit_p99_ms", quantileOf("etcd_disk_backend_commit_duration_seconds", 0.99, 1000)},
	{"db_size_bytes", gaugeOf("etcd_mvcc_db_total_size_in_bytes")},
	{"db_in_use_bytes", gaugeOf("etcd_mvcc_db_total_size_in_use_in_bytes")},
	{"quota_bytes", gaugeOf("etcd_server_quota_backend_bytes")},
	{"watchers", gaugeOf("etcd_debugging_mvcc_watcher_total")},
	{"watch_streams", gaugeOf("etcd_debugging_mvcc_watch_stream_total")},
	{"leases_granted_per_s", rateOf("etcd_debugging_lease_granted_total")},
	{"leases_revoked_per_s", rateOf("etcd_debugging_lease_revoked_total")},
}

// metricNames are the families a sample keeps.
func metricNames() map[string]bool {
	return map[string]bool{
		"grpc_server_handled_total": true, "etcd_server_request_duration_seconds": true,
		"etcd_server_proposals_committed_total": true, "etcd_server_proposals_applied_total": true,
		"etcd_server_proposals_failed_total": true, "etcd_server_proposals_pending": true,
		"etcd_disk_wal_fsync_duration_seconds": true, "etcd_disk_backend_commit_duration_seconds": true,
		"etcd_mvcc_db_total_size_in_bytes": true, "etcd_mvcc_db_total_size_in_use_in_bytes": true,
		"etcd_server_quota_backend_bytes": true, "etcd_debugging_mvcc_watcher_total": true,
		"etcd_debugging_mvcc_watch_stream_total": true, "etcd_debugging_lease_granted_total": true,
		"etcd_debugging_lease_revoked_total": true,
	}
}

func gaugeOf(name string) func(cur, prev *sample, dt float64) float64 {
	return func(cur, _ *sample, _ float64) float64 {
		v, ok := cur.values[name]
		if !ok {
			return math.NaN()
		}
		return v
	}
}

// rateOf is a counter's increase per second since the previous sample
// (NaN for the first sample, or when the counter went back: a restart).
func rateOf(name string) func(cur, prev *sample, dt float64) float64 {
	return func(cur, prev *sample, dt float64) float64 {
		if prev == nil || dt <= 0 {
			return math.NaN()
		}
		c, ok1 := cur.values[name]
		p, ok2 := prev.values[name]
		if !ok1 || !ok2 || c < p {
			return math.NaN()
		}
		return (c - p) / dt
	}
}

// quantileOf is a histogram's q-quantile over the observations made since
// the previous sample, interpolated within its bucket as Prometheus'
// histogram_quantile does, times scale (1000: seconds to milliseconds).
// NaN when nothing was observed in between.
func quantileOf(name string, q, scale float64) func(cur, prev *sample, dt float64) float64 {
	return func(cur, prev *sample, _ float64) float64 {
		if prev == nil {
			return math.NaN()
		}
		c, ok1 := cur.hists[name]
		p, ok2 := prev.hists[name]
		if !ok1 || !ok2 || !slices.Equal(c.bounds, p.bounds) {
			return math.NaN()
		}
		delta := make([]float64, len(c.counts))
		for i := range c.counts {
			delta[i] = c.counts[i] - p.counts[i]
		}
		return histogramQuantile(q, c.bounds, delta) * scale
	}
}

// histogramQuantile of cumulative counts per upper bound (the last +Inf).
func histogramQuantile(q float64, bounds, cumulative []float64) float64 {
	if len(cumulative) == 0 {
		return math.NaN()
	}
	total := cumulative[len(cumulative)-1]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	for i, c := range cumulative {
		if c < rank {
			continue
		}
		if math.IsInf(bounds[i], 1) {
			if i == 0 {
				return math.NaN()
			}
			return bounds[i-1] // as Prometheus: the highest finite bound
		}
		lower, below := 0.0, 0.0
		if i > 0 {
			lower, below = bounds[i-1], cumulative[i-1]
		}
		inBucket := c - below
		if inBucket <= 0 {
			return bounds[i]
		}
		return lower + (bounds[i]-lower)*(rank-below)/inBucket
	}
	return math.NaN()
}

// gatherSample reads the registry once.
func gatherSample(g prometheus.Gatherer, at time.Time) (*sample, error) {
	fams, err := g.Gather()
	s := &sample{at: at, values: map[string]float64{}, hists: map[string]histogram{}}
	if err != nil && len(fams) == 0 {
		return nil, err
	}
	want := metricNames()
	for _, f := range fams {
		if !want[f.GetName()] {
			continue
		}
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.values[f.GetName()] += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.values[f.GetName()] += m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				s.values[f.GetName()] += m.GetUntyped().GetValue()
			case dto.MetricType_HISTOGRAM:
				addHistogram(s.hists, f.GetName(), m.GetHistogram())
			}
		}
	}
	return s, nil
}

func addHistogram(hs map[string]histogram, name string, h *dto.Histogram) {
	var bounds, counts []float64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
		counts = append(counts, float64(b.GetCumulativeCount()))
	}
	if len(bounds) == 0 || !math.IsInf(bounds[len(bounds)-1], 1) {
		bounds = append(bounds, math.Inf(1))
		counts = append(counts, float64(h.GetSampleCount()))
	}
	cur, ok := hs[name]
	if !ok {
		hs[name] = histogram{bounds: bounds, counts: counts}
		return
	}
	if !slices.Equal(cur.bounds, bounds) {
		return // label sets with other buckets are left out
	}
	for i := range counts {
		cur.counts[i] += counts[i]
	}
}

// history keeps the last n points of every series.
type history struct {
	mu     sync.Mutex
	n      int
	prev   *sample
	times  []int64 // unix milliseconds
	series map[string][]float64
}

func newHistory(n int) *history {
	return &history{n: n, series: map[string][]float64{}}
}

func (h *history) add(s *sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var dt float64
	if h.prev != nil {
		dt = s.at.Sub(h.prev.at).Seconds()
	}
	h.times = appendCapped(h.times, s.at.UnixMilli(), h.n)
	for _, cs := range chartSeriesList {
		h.series[cs.name] = appendCapped(h.series[cs.name], cs.f(s, h.prev, dt), h.n)
	}
	h.prev = s
}

func appendCapped[T any](xs []T, x T, n int) []T {
	xs = append(xs, x)
	if len(xs) > n {
		xs = slices.Delete(xs, 0, len(xs)-n)
	}
	return xs
}

// nullableFloats encodes NaN and infinities as null.
type nullableFloats []float64

func (fs nullableFloats) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
	}
	return append(b, ']'), nil
}

type metricsBody struct {
	IntervalMs int64                     `json:"interval_ms"`
	Times      []int64                   `json:"times"`
	Series     map[string]nullableFloats `json:"series"`
}

func (h *history) body(interval time.Duration) metricsBody {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := metricsBody{IntervalMs: interval.Milliseconds(), Times: slices.Clone(h.times), Series: map[string]nullableFloats{}}
	if b.Times == nil {
		b.Times = []int64{}
	}
	for _, cs := range chartSeriesList {
		b.Series[cs.name] = nullableFloats(slices.Clone(h.series[cs.name]))
		if b.Series[cs.name] == nil {
			b.Series[cs.name] = nullableFloats{}
		}
	}
	return b
}

var _ json.Marshaler = nullableFloats(nil)
