package main

import (
	"math"
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{
		{50, 500 * time.Millisecond},
		{90, 900 * time.Millisecond},
		{99, 990 * time.Millisecond},
		{99.9, 999 * time.Millisecond},
		{100, 1000 * time.Millisecond},
		{0.01, 1 * time.Millisecond},
	} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("p%v of 1..1000 ms = %v, want %v", c.p, got, c.want)
		}
	}
	// Few values: p99 of 10 is the largest, p50 of 4 the second.
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if got := percentile(ten, 99); got != 10 {
		t.Errorf("p99 of 1..10 = %v, want 10", got)
	}
	if got := percentile([]time.Duration{1, 2, 3, 4}, 50); got != 2 {
		t.Errorf("p50 of 1..4 = %v, want 2", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v, want 0", got)
	}
}

func TestSummarizeSortsAndAverages(t *testing.T) {
	ds := []time.Duration{5 * time.Millisecond, 1 * time.Millisecond, 3 * time.Millisecond, 100 * time.Millisecond}
	s := summarize(ds)
	if s.Count != 4 || s.Max != 100*time.Millisecond || s.P50 != 3*time.Millisecond || s.P99 != 100*time.Millisecond {
		t.Fatalf("summary %+v", s)
	}
	if s.Avg != 27250*time.Microsecond {
		t.Fatalf("avg %v, want 27.25ms", s.Avg)
	}
	f := s.fields("latency")
	if v, _ := f.number("latency_avg_ms"); v != 27.25 {
		t.Fatalf("latency_avg_ms = %v, want 27.25: %v", v, f)
	}
	if v, _ := f.number("latency_max_ms"); v != 100 {
		t.Fatalf("latency_max_ms = %v, want 100", v)
	}
	if e := summarize(nil); e.Count != 0 || e.Max != 0 {
		t.Fatalf("summary of nothing %+v", e)
	}
}

func TestMedianAndRatio(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median(3,1,2) = %v", m)
	}
	xs := []float64{4, 1, 3, 2}
	if m := median(xs); m != 2.5 {
		t.Errorf("median(4,1,3,2) = %v", m)
	}
	if xs[0] != 4 {
		t.Errorf("median reordered its argument: %v", xs)
	}
	if m := median(nil); !math.IsNaN(m) {
		t.Errorf("median of nothing = %v, want NaN", m)
	}
	if r, ok := ratio(150, 100); !ok || r != 1.5 {
		t.Errorf("ratio(150, 100) = %v %v", r, ok)
	}
	if _, ok := ratio(1, 0); ok {
		t.Error("ratio over 0 has a meaning")
	}
	if _, ok := ratio(math.NaN(), 1); ok {
		t.Error("ratio of NaN has a meaning")
	}
}

func TestFmtNum(t *testing.T) {
	for x, want := range map[float64]string{3: "3", 28.3: "28.3", 0.1234: "0.123", 1234.56: "1234.6", 0: "0", math.NaN(): "-"} {
		if got := fmtNum(x); got != want {
			t.Errorf("fmtNum(%v) = %q, want %q", x, got, want)
		}
	}
}
