// Package svgchart draws time-series line charts as SVG on the server:
// axes with ticks and labels, grid lines, one line per series, horizontal
// reference lines (such as a 95th percentile) and a legend. The dashboard
// needs nothing more, and SVG made in Go is small, testable with golden
// files and needs no JavaScript library.
package svgchart

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"time"
)

// Series is one line. A NaN value leaves a gap.
type Series struct {
	Name   string
	Values []float64 // one per Chart.Times
	Color  string
}

// HLine is a horizontal reference line.
type HLine struct {
	Name  string
	Value float64
	Color string
}

// Chart is a line chart over time.
type Chart struct {
	Times  []time.Time // bucket starts, ascending
	Series []Series
	HLines []HLine
	// YFormat formats axis labels; nil prints plain numbers with k/M/G.
	YFormat func(float64) string
	// Width and Height in pixels; 0 means 720 x 260.
	Width, Height int
	// NoData is drawn when there is nothing to plot.
	NoData string
	// Label is the chart's accessible name (aria-label).
	Label string
	// Loc is the time zone of the x axis labels; nil is UTC.
	Loc *time.Location
}

// Palette is the default series colours (readable on white, distinct for
// the common kinds of colour blindness).
var Palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

const (
	padLeft   = 64
	padRight  = 16
	padTop    = 30
	padBottom = 28
)

// SVG renders the chart.
func (c Chart) SVG() []byte {
	w, h := c.Width, c.Height
	if w == 0 {
		w = 720
	}
	if h == 0 {
		h = 260
	}
	yf := c.YFormat
	if yf == nil {
		yf = SI
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" font-family="sans-serif" font-size="11">`,
		w, h, w, h, html.EscapeString(c.Label))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`, w, h)
	x0, x1 := float64(padLeft), float64(w-padRight)
	y0, y1 := float64(h-padBottom), float64(padTop)

	maxY := 0.0
	points := 0
	for _, s := range c.Series {
		for _, v := range s.Values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				maxY = math.Max(maxY, v)
				points++
			}
		}
	}
	for _, l := range c.HLines {
		maxY = math.Max(maxY, l.Value)
	}
	if len(c.Times) == 0 || points == 0 {
		msg := c.NoData
		if msg == "" {
			msg = "no data"
		}
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#999"/>`, x0, y0, x1, y0)
		fmt.Fprintf(&b, `<text class="nodata" x="%g" y="%g" text-anchor="middle" fill="#666" font-size="14">%s</text></svg>`,
			(x0+x1)/2, (y0+y1)/2, html.EscapeString(msg))
		return b.Bytes()
	}
	ticks := NiceTicks(maxY, 5)
	top := ticks[len(ticks)-1]
	sy := func(v float64) float64 { return y0 - (v/top)*(y0-y1) }
	t0, t1 := c.Times[0], c.Times[len(c.Times)-1]
	span := t1.Sub(t0)
	if span <= 0 {
		span = time.Minute
	}
	sx := func(t time.Time) float64 { return x0 + float64(t.Sub(t0))/float64(span)*(x1-x0) }

	// Grid and y axis.
	b.WriteString(`<g class="yaxis">`)
	for _, v := range ticks {
		y := sy(v)
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#e5e5e5"/>`, x0, y, x1, y)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end" dominant-baseline="middle" fill="#444">%s</text>`, x0-6, y, html.EscapeString(yf(v)))
	}
	b.WriteString(`</g><g class="xaxis">`)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#888"/>`, x0, y0, x1, y0)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#888"/>`, x0, y0, x0, y1)
	step, layout := timeStep(span)
	loc := c.Loc
	if loc == nil {
		loc = time.UTC
	}
	// Ticks fall on round local times: shift by the zone's offset, round,
	// shift back.
	_, off := t0.In(loc).Zone()
	shift := time.Duration(off) * time.Second
	for t := t0.Add(shift).Truncate(step).Add(-shift); !t.After(t1); t = t.Add(step) {
		if t.Before(t0) {
			continue
		}
		x := sx(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#888"/>`, x, y0, x, y0+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle" fill="#444">%s</text>`, x, y0+16, t.In(loc).Format(layout))
	}
	b.WriteString(`</g>`)

	// Series.
	for i, s := range c.Series {
		color := s.Color
		if color == "" {
			color = Palette[i%len(Palette)]
		}
		var d bytes.Buffer
		pen := false
		for j, v := range s.Values {
			if j >= len(c.Times) {
				break
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				pen = false
				continue
			}
			cmd := 'L'
			if !pen {
				cmd = 'M'
			}
			fmt.Fprintf(&d, "%c%.1f %.1f", cmd, sx(c.Times[j]), sy(v))
			pen = true
		}
		fmt.Fprintf(&b, `<path class="series" data-name="%s" d="%s" fill="none" stroke="%s" stroke-width="1.6" stroke-linejoin="round"><title>%s</title></path>`,
			html.EscapeString(s.Name), d.String(), color, html.EscapeString(s.Name))
	}
	for _, l := range c.HLines {
		color := l.Color
		if color == "" {
			color = "#d62728"
		}
		y := sy(l.Value)
		fmt.Fprintf(&b, `<line class="hline" x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="%s" stroke-width="1.4" stroke-dasharray="6 4"><title>%s: %s</title></line>`,
			x0, y, x1, y, color, html.EscapeString(l.Name), html.EscapeString(yf(l.Value)))
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end" fill="%s">%s</text>`, x1, y-4, color, html.EscapeString(l.Name+" "+yf(l.Value)))
	}

	// Legend along the top.
	b.WriteString(`<g class="legend">`)
	lx := x0
	item := func(name, color string, dashed bool) {
		dash := ""
		if dashed {
			dash = ` stroke-dasharray="4 3"`
		}
		fmt.Fprintf(&b, `<line x1="%g" y1="14" x2="%g" y2="14" stroke="%s" stroke-width="3"%s/>`, lx, lx+16, color, dash)
		fmt.Fprintf(&b, `<text x="%g" y="18" fill="#222">%s</text>`, lx+20, html.EscapeString(name))
		lx += 20 + float64(textWidth(name)) + 16
	}
	for i, s := range c.Series {
		color := s.Color
		if color == "" {
			color = Palette[i%len(Palette)]
		}
		item(s.Name, color, false)
	}
	for _, l := range c.HLines {
		color := l.Color
		if color == "" {
			color = "#d62728"
		}
		item(l.Name, color, true)
	}
	b.WriteString(`</g></svg>`)
	return b.Bytes()
}

// textWidth estimates a label's width at 11px: wide for CJK characters.
func textWidth(s string) int {
	n := 0
	for _, r := range s {
		if r > 0x2e80 {
			n += 11
		} else {
			n += 6
		}
	}
	return n
}

// NiceTicks returns about n round tick values from 0 to at least maxY.
func NiceTicks(maxY float64, n int) []float64 {
	if maxY <= 0 || math.IsNaN(maxY) {
		maxY = 1
	}
	raw := maxY / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	mult := 10.0
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			mult = m
			break
		}
	}
	// i*mult scaled by the magnitude, dividing for small magnitudes so
	// that 3 x 0.2 is 0.6, not 0.6000000000000001.
	at := func(i int) float64 {
		if mag < 1 {
			return float64(i) * mult / math.Round(1/mag)
		}
		return float64(i) * mult * mag
	}
	var out []float64
	for i := 0; ; i++ {
		v := at(i)
		out = append(out, v)
		if v >= maxY {
			break
		}
	}
	return out
}

// timeStep picks the x tick interval for a span and the label layout.
func timeStep(span time.Duration) (time.Duration, string) {
	for _, s := range []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour} {
		if span/s <= 8 {
			return s, "15:04"
		}
	}
	for _, s := range []time.Duration{24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour} {
		if span/s <= 8 {
			return s, "01-02"
		}
	}
	return 30 * 24 * time.Hour, "2006-01-02"
}

// SI formats a number with k, M, G suffixes.
func SI(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trim(v/1e9) + "G"
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e3:
		return trim(v/1e3) + "k"
	}
	return trim(v)
}

// Bits formats a rate in bit/s.
func Bits(v float64) string { return SI(v) + "bit/s" }

func trim(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}
