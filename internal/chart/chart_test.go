package chart

import (
	"slices"
	"testing"
	"time"
)

func TestNiceTicks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		peak float64
		want []float64
	}{
		{0, []float64{0, 0.25, 0.5, 0.75, 1}},
		{1, []float64{0, 0.25, 0.5, 0.75, 1}},
		{7, []float64{0, 2, 4, 6, 8}},
		{10, []float64{0, 2.5, 5, 7.5, 10}},
		{11, []float64{0, 5, 10, 15, 20}},
		{0.0003, []float64{0, 0.0001, 0.0002, 0.0003, 0.0004}},
		{1234, []float64{0, 500, 1000, 1500, 2000}},
		{3, []float64{0, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		got := NiceTicks(tt.peak, 4)
		if !slices.Equal(got, tt.want) {
			t.Errorf("NiceTicks(%v) = %v, want %v", tt.peak, got, tt.want)
		}
		if top := got[len(got)-1]; top < tt.peak {
			t.Errorf("NiceTicks(%v) tops out at %v, under the peak", tt.peak, top)
		}
	}
}

func TestFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f    Format
		v    float64
		want string
	}{
		{USD, 0, "$0"},
		{USD, 0.000025, "$0.000025"},
		{USD, 0.0042, "$0.0042"},
		{USD, 1.5, "$1.50"},
		{USD, 1234, "$1,234"},
		{Count, 0, "0"},
		{Count, 7, "7"},
		{Count, 1234567, "1.2M"},
		{Count, 123456, "123,456"},
		{Count, 2.5, "2.5"},
		{Count, 3e9, "3G"},
		{Percent, 0, "0%"},
		{Percent, 2.5, "2.5%"},
		{Percent, 100, "100%"},
	}
	for _, tt := range tests {
		if got := tt.f(tt.v); got != tt.want {
			t.Errorf("format(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 14, 35, 0, 0, time.FixedZone("X", 3600))
	hours := FindRange("24h").Timeline(now)
	if len(hours) != 24 || !hours[23].Equal(time.Date(2026, 3, 10, 13, 0, 0, 0, time.UTC)) ||
		!hours[0].Equal(time.Date(2026, 3, 9, 14, 0, 0, 0, time.UTC)) {
		t.Fatalf("24h timeline = %v … %v", hours[0], hours[len(hours)-1])
	}
	days := FindRange("30d").Timeline(now)
	if len(days) != 30 || !days[29].Equal(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)) ||
		!days[0].Equal(time.Date(2026, 2, 9, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("30d timeline = %v … %v", days[0], days[len(days)-1])
	}
	if FindRange("nonsense").Name != "24h" {
		t.Fatal("an unknown range is not the default")
	}
}

func TestBarsAreProportionalAndInsideThePlot(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var pts []Point
	for i, v := range []float64{0, 3, 6, 0.001} {
		pts = append(pts, Point{Time: start.Add(time.Duration(i) * time.Hour), Value: v})
	}
	c := Bars("Requests", "requests", pts, Count, FindRange("24h").BucketLabel)
	if c.Empty {
		t.Fatal("a chart with values is marked empty")
	}
	if len(c.Bars) != 4 || len(c.XTicks) != 4 || len(c.YTicks) != 5 {
		t.Fatalf("bars %d, x ticks %d, y ticks %d", len(c.Bars), len(c.XTicks), len(c.YTicks))
	}
	if c.Bars[0].H != 0 {
		t.Errorf("a zero bar has height %v", c.Bars[0].H)
	}
	if c.Bars[3].H < 1 {
		t.Errorf("a tiny value's bar is invisible (%v)", c.Bars[3].H)
	}
	if r := c.Bars[2].H / c.Bars[1].H; r < 1.99 || r > 2.01 {
		t.Errorf("bar 6 is %v times bar 3, want 2", r)
	}
	for _, b := range c.Bars {
		if b.Y < c.PlotTop || b.Y+b.H > c.PlotBottom+0.01 || b.X < c.PlotLeft || b.X+b.W > c.PlotRight+0.01 {
			t.Errorf("bar %+v outside the plot", b)
		}
	}
	if c.Bars[2].Title != "02:00: 6" {
		t.Errorf("tooltip = %q", c.Bars[2].Title)
	}
	if c.YTicks[0].Label != "0" || c.YTicks[4].Label != "8" || c.YTicks[4].Pos != c.PlotTop {
		t.Errorf("y ticks = %+v", c.YTicks)
	}
}

func TestBarsEmptyAndManyBuckets(t *testing.T) {
	t.Parallel()
	r := FindRange("30d")
	var pts []Point
	for _, tm := range r.Timeline(time.Now()) {
		pts = append(pts, Point{Time: tm})
	}
	c := Bars("Spend", "USD", pts, USD, r.BucketLabel)
	if !c.Empty {
		t.Fatal("an all-zero chart is not marked empty")
	}
	if len(c.XTicks) > 8 || len(c.XTicks) < 4 {
		t.Fatalf("%d x labels for 30 buckets", len(c.XTicks))
	}
}
