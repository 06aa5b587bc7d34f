// Package chart lays out the dashboard's bar charts: where each bar goes
// in an SVG drawing, the y axis's round tick values with their labels, and
// the x axis's labels. It draws nothing itself (the page template writes
// the SVG elements) and knows nothing of HTTP or the store.
package chart

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Geometry of every chart, in SVG user units (the drawing scales to its
// box on the page).
const (
	Width  = 520
	Height = 230
	// The plot area's margins: room for the unit above, the y labels on
	// the left and the x labels under it.
	left   = 68
	right  = 10
	top    = 28
	bottom = 26
)

// Point is one bucket's value.
type Point struct {
	Time  time.Time
	Value float64
}

// Bar is one bar of the drawing, with the text its tooltip shows.
type Bar struct {
	X, Y, W, H float64
	Title      string
}

// Tick is a labelled position on an axis; Pos is x for the x axis, y for
// the y axis.
type Tick struct {
	Pos   float64
	Label string
}

// Chart is a laid-out bar chart.
type Chart struct {
	Title string
	Unit  string // for the y axis's caption: "USD", "requests", "tokens", "%"
	Total string // the sum (or, for a rate, the overall value) as text
	Width, Height,
	PlotLeft, PlotRight, PlotTop, PlotBottom float64
	Bars   []Bar
	YTicks []Tick
	XTicks []Tick
	// Empty is true when every value is zero: the page says so instead of
	// drawing a flat line.
	Empty bool
}

// Format writes a value of one chart's unit.
type Format func(float64) string

// Bars lays out points (oldest first, one per bucket, evenly spaced) as
// bars from zero. label names each bucket on the x axis; at most about
// eight labels are shown, evenly spread.
func Bars(title, unit string, points []Point, format Format, label func(time.Time) string) Chart {
	c := Chart{
		Title: title, Unit: unit,
		Width: Width, Height: Height,
		PlotLeft: left, PlotRight: Width - right, PlotTop: top, PlotBottom: Height - bottom,
		Empty: true,
	}
	peak := 0.0
	for _, p := range points {
		if p.Value > peak {
			peak = p.Value
		}
		if p.Value != 0 {
			c.Empty = false
		}
	}
	ticks := NiceTicks(peak, 4)
	axisMax := ticks[len(ticks)-1]
	plotH := c.PlotBottom - c.PlotTop
	for _, v := range ticks {
		c.YTicks = append(c.YTicks, Tick{Pos: round(c.PlotBottom - v/axisMax*plotH), Label: format(v)})
	}
	if len(points) == 0 {
		return c
	}
	slot := (c.PlotRight - c.PlotLeft) / float64(len(points))
	gap := math.Min(slot*0.2, 4)
	every := max(1, int(math.Ceil(float64(len(points))/8)))
	for i, p := range points {
		h := 0.0
		if p.Value > 0 {
			h = math.Max(p.Value/axisMax*plotH, 1) // a tiny value stays visible
		}
		x := c.PlotLeft + float64(i)*slot
		c.Bars = append(c.Bars, Bar{
			X: round(x + gap/2), Y: round(c.PlotBottom - h), W: round(slot - gap), H: round(h),
			Title: label(p.Time) + ": " + format(p.Value),
		})
		if i%every == 0 {
			c.XTicks = append(c.XTicks, Tick{Pos: round(x + slot/2), Label: label(p.Time)})
		}
	}
	return c
}

// NiceTicks returns n+1 round values from 0 up to at least peak (0, 1, 2…
// or 0, 0.25, 0.5… or 0, 200, 400…), for the y axis. A peak of zero gets
// the axis 0..1.
func NiceTicks(peak float64, n int) []float64 {
	if n < 1 {
		n = 1
	}
	if !(peak > 0) || math.IsInf(peak, 0) {
		peak = 1
	}
	raw := peak / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw*(1-1e-9) {
			step = m * mag
			break
		}
	}
	ticks := make([]float64, n+1)
	for i := range ticks {
		ticks[i] = cleanFloat(float64(i) * step)
	}
	return ticks
}

// cleanFloat removes float noise such as 0.30000000000000004.
func cleanFloat(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 12, 64), 64)
	return v
}

func round(f float64) float64 { return math.Round(f*10) / 10 }

// USD writes an amount of dollars: "$0", "$0.0042", "$1.50", "$1,234".
func USD(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "$0"
	case a < 0.01:
		return "$" + trimZeros(strconv.FormatFloat(v, 'f', 6, 64))
	case a < 1000:
		return "$" + strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return "$" + Count(v)
	}
}

// Count writes a count: "7", "1,234", "1.2M".
func Count(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trimZeros(strconv.FormatFloat(v/1e9, 'f', 1, 64)) + "G"
	case a >= 1e6:
		return trimZeros(strconv.FormatFloat(v/1e6, 'f', 1, 64)) + "M"
	case a != math.Trunc(a):
		return trimZeros(strconv.FormatFloat(v, 'f', 2, 64))
	}
	s := strconv.FormatInt(int64(math.Abs(v)), 10)
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Percent writes a percentage given as 0..100: "0%", "2.5%", "100%".
func Percent(v float64) string {
	return trimZeros(strconv.FormatFloat(v, 'f', 2, 64)) + "%"
}

func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// Range is a period of the overview: its buckets and how they are named.
type Range struct {
	Name     string        // "24h", "7d", "30d"
	Label    string        // "Last 24 hours"
	Interval string        // the summary's interval: "hour" or "day"
	Step     time.Duration // one bucket
	Buckets  int
}

// Ranges are the overview's periods, the default first.
var Ranges = []Range{
	{Name: "24h", Label: "Last 24 hours", Interval: "hour", Step: time.Hour, Buckets: 24},
	{Name: "7d", Label: "Last 7 days", Interval: "day", Step: 24 * time.Hour, Buckets: 7},
	{Name: "30d", Label: "Last 30 days", Interval: "day", Step: 24 * time.Hour, Buckets: 30},
}

// FindRange returns the range called name, or the default.
func FindRange(name string) Range {
	for _, r := range Ranges {
		if r.Name == name {
			return r
		}
	}
	return Ranges[0]
}

// Timeline returns the starts of r's buckets up to and including the one
// that holds now, oldest first, in UTC: whole hours, or whole days
// (midnight UTC).
func (r Range) Timeline(now time.Time) []time.Time {
	last := now.UTC().Truncate(time.Hour)
	if r.Interval == "day" {
		y, m, d := now.UTC().Date()
		last = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	out := make([]time.Time, r.Buckets)
	for i := range out {
		out[i] = last.Add(-time.Duration(r.Buckets-1-i) * r.Step)
	}
	return out
}

// BucketLabel names a bucket on the x axis: "15:00" for hours, "Jan 2" for
// days.
func (r Range) BucketLabel(t time.Time) string {
	if r.Interval == "hour" {
		return t.UTC().Format("15:04")
	}
	return t.UTC().Format("Jan 2")
}
