package svgchart

import (
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/internal/golden"
)

func times(n int, step time.Duration) []time.Time {
	t0 := time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)
	out := make([]time.Time, n)
	for i := range out {
		out[i] = t0.Add(time.Duration(i) * step)
	}
	return out
}

func wellFormed(t *testing.T, svg []byte) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		if _, err := d.Token(); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
	}
}

func TestGolden(t *testing.T) {
	ts := times(12, 5*time.Minute)
	a := []float64{100, 120, 130, 90, math.NaN(), 80, 150, 160, 140, 120, 110, 100}
	b := []float64{10, 12, 13, 9, 8, 8, 15, 16, 14, 12, 11, 10}
	for name, c := range map[string]Chart{
		"lines": {Times: ts, Series: []Series{{Name: "web-1 <a&b>", Values: a}, {Name: "web-2", Values: b}}, Label: "requests"},
		"bandwidth": {Times: ts, YFormat: Bits, Series: []Series{{Name: "出流量", Values: []float64{2e6, 3e6, 2.5e6, 4e6, 1e6, 2e6, 3e6, 2e6, 1e6, 2e6, 3e6, 2e6}}},
			HLines: []HLine{{Name: "95th percentile", Value: 3.5e6}}, Loc: time.FixedZone("CST", 8*3600)},
		"empty": {Times: ts, Series: []Series{{Name: "total", Values: make([]float64, 0)}}, NoData: "no data in this range"},
	} {
		t.Run(name, func(t *testing.T) {
			svg := c.SVG()
			wellFormed(t, svg)
			golden.Assert(t, "testdata/"+name+".svg", svg)
		})
	}
}

// TestShape checks what a reader relies on: a gap for a missing value, the
// axis labels, the reference line above the data it dominates.
func TestShape(t *testing.T) {
	ts := times(12, 5*time.Minute)
	a := []float64{100, 120, 130, 90, math.NaN(), 80, 150, 160, 140, 120, 110, 100}
	svg := string(Chart{Times: ts, Series: []Series{{Name: "a", Values: a}}, HLines: []HLine{{Name: "p95", Value: 500}}}.SVG())
	if n := strings.Count(svg, "M"); n < 2 {
		t.Errorf("the NaN leaves no gap: %d moves", n)
	}
	for _, want := range []string{">01:00<", ">01:30<", ">500<", `class="hline"`, ">p95 500<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %q", want)
		}
	}
	// A week: ticks by day.
	svg = string(Chart{Times: times(336, 30*time.Minute), Series: []Series{{Name: "a", Values: make([]float64, 336)}}}.SVG())
	if !strings.Contains(svg, ">11-26<") {
		t.Errorf("a week's axis lacks day labels")
	}
}

func TestNiceTicks(t *testing.T) {
	for _, c := range []struct {
		max  float64
		want string
	}{
		{0, "0 0.2 0.4 0.6 0.8 1"},
		{7, "0 2 4 6 8"},
		{160, "0 50 100 150 200"},
		{3.5e6, "0 1e+06 2e+06 3e+06 4e+06"},
	} {
		var got []string
		for _, v := range NiceTicks(c.max, 5) {
			got = append(got, strconvG(v))
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("NiceTicks(%g) = %v, want %s", c.max, got, c.want)
		}
	}
	for v, want := range map[float64]string{0: "0", 999: "999", 1500: "1.5k", 2.25e6: "2.25M", 3e9: "3G"} {
		if got := SI(v); got != want {
			t.Errorf("SI(%g) = %s, want %s", v, got, want)
		}
	}
}

func strconvG(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
