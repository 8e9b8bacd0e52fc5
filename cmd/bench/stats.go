package main

import (
	"math"
	"slices"
	"time"
)

// latencyStats summarise the latencies of a run's operations.
type latencyStats struct {
	Count                         int
	Avg, P50, P90, P99, P999, Max time.Duration
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value at least p% of the values are
// at or below. It is 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The epsilon keeps float error (99.9/100*1000 = 999.0000000000001) from
	// moving the rank up.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// summarize sorts ds and returns their statistics.
func summarize(ds []time.Duration) latencyStats {
	slices.Sort(ds)
	s := latencyStats{Count: len(ds)}
	if len(ds) == 0 {
		return s
	}
	var sum float64
	for _, d := range ds {
		sum += float64(d)
	}
	s.Avg = time.Duration(sum / float64(len(ds)))
	s.P50 = percentile(ds, 50)
	s.P90 = percentile(ds, 90)
	s.P99 = percentile(ds, 99)
	s.P999 = percentile(ds, 99.9)
	s.Max = ds[len(ds)-1]
	return s
}

// fields are the statistics as report fields, in milliseconds, each named
// prefix_avg_ms and so on.
func (s latencyStats) fields(prefix string) report {
	return report{
		{prefix + "_avg_ms", ms(s.Avg)},
		{prefix + "_p50_ms", ms(s.P50)},
		{prefix + "_p90_ms", ms(s.P90)},
		{prefix + "_p99_ms", ms(s.P99)},
		{prefix + "_p999_ms", ms(s.P999)},
		{prefix + "_max_ms", ms(s.Max)},
	}
}

// ms is d in milliseconds to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// round returns x to digits decimal places.
func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// median returns the median of xs (the mean of the middle two of an even
// number), NaN for none. xs is left alone.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratio returns b/a, and false when it has no meaning (a is 0 or either
// is NaN).
func ratio(b, a float64) (float64, bool) {
	if a == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0, false
	}
	return b / a, true
}
