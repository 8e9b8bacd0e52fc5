package main

import (
	"encoding/xml"
	"fmt"
	"math"
	"strings"
)

// series is one line of a chart: a value per x (NaN: none).
type series struct {
	Name string
	Y    []float64
}

// palette colours the lines, in order.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// esc escapes s for XML text and attributes.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// logScale says whether xs are better drawn on a logarithmic axis: all
// positive and spanning two orders of magnitude or more.
func logScale(xs []float64) bool {
	if len(xs) < 2 {
		return false
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		if x <= 0 {
			return false
		}
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return hi/lo >= 100
}

// niceMax rounds hi up to 1, 2, 2.5 or 5 times a power of ten.
func niceMax(hi float64) float64 {
	if hi <= 0 || math.IsNaN(hi) || math.IsInf(hi, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(hi)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= hi {
			return m * p
		}
	}
	return 10 * p
}

// svgChart draws a line chart of ss against xs, one polyline per series,
// as a self-contained SVG element.
func svgChart(title, xLabel, yLabel string, xs []float64, labels []string, ss []series) string {
	const (
		w, h                     = 680.0, 360.0
		left, right, top, bottom = 70.0, 160.0, 34.0, 50.0
	)
	pw, ph := w-left-right, h-top-bottom
	logX := logScale(xs)
	fx := func(x float64) float64 { return x }
	if logX {
		fx = math.Log10
	}
	xlo, xhi := math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		xlo, xhi = math.Min(xlo, fx(x)), math.Max(xhi, fx(x))
	}
	if len(xs) == 0 {
		xlo, xhi = 0, 1
	}
	if xhi == xlo {
		xlo, xhi = xlo-1, xhi+1
	}
	ymax := 0.0
	for _, s := range ss {
		for _, y := range s.Y {
			if !math.IsNaN(y) {
				ymax = math.Max(ymax, y)
			}
		}
	}
	ymax = niceMax(ymax * 1.05)
	px := func(x float64) float64 { return left + (fx(x)-xlo)/(xhi-xlo)*pw }
	py := func(y float64) float64 { return top + ph - y/ymax*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<text x="%g" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left, esc(title))
	// Axes, grid and ticks.
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#999"/>`+"\n", left, top, pw, ph)
	for i := 0; i <= 5; i++ {
		y := ymax * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#eee"/>`+"\n", left, py(y), left+pw, py(y))
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, py(y)+4, esc(fmtNum(round(y, 3))))
	}
	for i, x := range xs {
		label := fmtNum(x)
		if i < len(labels) {
			label = labels[i]
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#999"/>`+"\n", px(x), top+ph, px(x), top+ph+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", px(x), top+ph+18, esc(label))
	}
	scale := ""
	if logX {
		scale = " (log scale)"
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", left+pw/2, h-8, esc(xLabel+scale))
	fmt.Fprintf(&b, `<text x="14" y="%g" text-anchor="middle" transform="rotate(-90 14 %g)">%s</text>`+"\n", top+ph/2, top+ph/2, esc(yLabel))
	// One polyline per series, a dot per point, and the legend.
	for i, s := range ss {
		colour := palette[i%len(palette)]
		var pts []string
		for j, y := range s.Y {
			if j < len(xs) && !math.IsNaN(y) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(xs[j]), py(y)))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>`+"\n", colour, strings.Join(pts, " "), esc(s.Name))
		for j, y := range s.Y {
			if j < len(xs) && !math.IsNaN(y) {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s</title></circle>`+"\n", px(xs[j]), py(y), colour, esc(s.Name), esc(fmtNum(y)))
			}
		}
		ly := top + 10 + float64(i)*18
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2"/>`+"\n", left+pw+12, ly, left+pw+32, ly, colour)
		fmt.Fprintf(&b, `<text x="%g" y="%g">%s</text>`+"\n", left+pw+38, ly+4, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}
