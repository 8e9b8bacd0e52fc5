package main

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// svgShapes parses page as XML and returns, per svg element, the number
// of polylines in it and the points of each.
func svgShapes(t *testing.T, page string) (polylines []int, points [][]string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict = true
	in := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, page)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			switch e.Name.Local {
			case "svg":
				in = true
				polylines = append(polylines, 0)
			case "polyline":
				if !in {
					t.Fatal("polyline outside an svg")
				}
				polylines[len(polylines)-1]++
				for _, a := range e.Attr {
					if a.Name.Local == "points" {
						points = append(points, strings.Fields(a.Value))
					}
				}
			}
		case xml.EndElement:
			if e.Name.Local == "svg" {
				in = false
			}
		}
	}
	return polylines, points
}

func TestSweepPageIsXMLWithALinePerTarget(t *testing.T) {
	s := &sweepResult{Workload: "put", Args: []string{"-total", "100", "-key-space-size", "<&>"}, Param: "keys",
		Values: []string{"1k", "10k", "1m"}, Targets: []string{"cairn & co", "etcd"}}
	for _, v := range s.Values {
		s.Points = append(s.Points,
			sweepPoint{Value: v, Target: "cairn & co", Rounds: []report{rep(100, 2, 30)}},
			sweepPoint{Value: v, Target: "etcd", Rounds: []report{rep(150, 1, 40)}})
	}
	// etcd has no point at 1m: its lines have two points.
	s.Points = s.Points[:len(s.Points)-1]
	s.summarize()
	page := s.html(`bench sweep -param keys "x<y"`)
	lines, points := svgShapes(t, page)
	// ops/s, p99 and RSS (after and peak) are measured, the db size is
	// not: four charts.
	if len(lines) != 4 {
		t.Fatalf("%d charts, want 4 (ops/s, p99, RSS, RSS peak)", len(lines))
	}
	for i, n := range lines {
		if n != 2 {
			t.Errorf("chart %d has %d polylines, want one per target (2)", i, n)
		}
	}
	for i, p := range points {
		want := 3
		if i%2 == 1 {
			want = 2
		}
		if len(p) != want {
			t.Errorf("polyline %d has %d points, want %d: %v", i, len(p), want, p)
		}
	}
	for _, want := range []string{"cairn &amp; co", "(log scale)", "<th>keys</th>", "x&lt;y"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestSvgChartScales(t *testing.T) {
	if !logScale([]float64{1, 10, 100}) || logScale([]float64{1, 2, 50}) || logScale([]float64{0, 10, 1000}) {
		t.Error("logScale: want log for positive values over two orders of magnitude only")
	}
	for hi, want := range map[float64]float64{0: 1, 0.7: 1, 3: 5, 120: 200, 2400: 2500, 1000: 1000} {
		if got := niceMax(hi); got != want {
			t.Errorf("niceMax(%v) = %v, want %v", hi, got, want)
		}
	}
	// A point at the top of the scale is at the top of the plot.
	svg := svgChart("t", "x", "y", []float64{1, 2}, nil, []series{{Name: "a", Y: []float64{0, 950}}, {Name: "b", Y: []float64{math.NaN(), 500}}})
	lines, points := svgShapes(t, svg)
	if len(lines) != 1 || lines[0] != 2 {
		t.Fatalf("polylines %v", lines)
	}
	if points[0][0] != "70.0,310.0" || points[0][1] != "520.0,47.8" || len(points[1]) != 1 {
		t.Fatalf("points %v", points)
	}
}
