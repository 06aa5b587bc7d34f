package money

import (
	"encoding/json"
	"math"
	"testing"
)

func TestMoneyWritesDollarsWithoutFloatNoise(t *testing.T) {
	t.Parallel()
	tests := []struct {
		m    Money
		want string
	}{
		{0, "0"},
		{60, "0.00000006"},
		{1, "0.000000001"},
		{1_500_000_000, "1.5"},
		{1_000_000_000, "1"},
		{123_456_789_012, "123.456789012"},
		{-250_000_000, "-0.25"},
		{Max, "9223372036.854775807"},
		{Money(math.MinInt64), "-9223372036.854775808"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("Money(%d).String() = %q, want %q", int64(tt.m), got, tt.want)
		}
		b, err := json.Marshal(struct {
			Cost Money `json:"cost"`
		}{tt.m})
		if err != nil || string(b) != `{"cost":`+tt.want+`}` {
			t.Errorf("json.Marshal(%d) = %s, %v", int64(tt.m), b, err)
		}
		back, err := Parse(tt.want)
		if err != nil || back != tt.m {
			t.Errorf("Parse(%q) = %d, %v; want %d", tt.want, back, err, tt.m)
		}
	}
}

func TestParseMoney(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Money
		ok   bool
	}{
		{"0.1", 100_000_000, true},
		{"5", 5_000_000_000, true},
		{"-2", -2_000_000_000, true},
		{"6e-8", 60, true},
		{"6.000000000000001e-08", 60, true}, // what format 1 stored
		{"0.096000000000000002", 96_000_000, true},
		{"1E3", 1_000_000_000_000, true},
		{"0.0000000005", 1, true},   // half a nano-dollar rounds away from zero
		{"-0.0000000005", -1, true}, // on both sides
		{"0.0000000004999", 0, true},
		{"9223372036.854775807", Max, true},
		{"9223372036.854775808", 0, false},
		{"1e30", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{".5", 0, false},
		{"1.", 0, false},
		{"01", 0, false},
		{"1/3", 0, false},
		{"0x10", 0, false},
		{`"1"`, 0, false},
		{"true", 0, false},
		{"NaN", 0, false},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestMoneyDecodesJSONNumbersOnly(t *testing.T) {
	t.Parallel()
	var v struct {
		Max *Money `json:"max_budget"`
	}
	if err := json.Unmarshal([]byte(`{"max_budget": 0.05}`), &v); err != nil || v.Max == nil || *v.Max != 50_000_000 {
		t.Fatalf("decoded %v, %v", v.Max, err)
	}
	for _, body := range []string{`{"max_budget":"0.05"}`, `{"max_budget":true}`, `{"max_budget":1e40}`} {
		err := json.Unmarshal([]byte(body), &v)
		var typeErr *json.UnmarshalTypeError
		if !asTypeError(err, &typeErr) || typeErr.Field != "max_budget" {
			t.Errorf("%s: err = %v, want an UnmarshalTypeError naming max_budget", body, err)
		}
	}
}

func asTypeError(err error, target **json.UnmarshalTypeError) bool {
	te, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*target = te
	}
	return ok
}

func TestTokenCostIsExact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		prompt, completion int64
		in, out            float64
		want               Money
	}{
		{"one token at 0.06/M", 1, 0, 0.06, 0, 60},
		{"0.15 and 0.60 per million", 12, 250, 0.15, 0.60, 1800 + 150000},
		{"binary-inexact prices", 1_000_000, 1_000_000, 0.1, 0.2, 300_000_000},
		{"rounds half up", 1, 0, 0.0000005, 0, 0},       // 0.0005 nano: rounds to 0
		{"rounds half up at .5", 1, 0, 0.0005, 0, 1},    // 0.5 nano: rounds up
		{"rounds to the nearest", 3, 0, 0.000333, 0, 1}, // 0.999 nano
		{"large counts do not overflow", 1e8, 1e8, 1000, 1000, 200_000 * nanosPerDollar},
		{"absurd counts saturate", math.MaxInt64, math.MaxInt64, 1e6, 1e6, Max},
		{"negative counts count as zero", -5, 10, 1, 1, 10_000},
		{"free", 1000, 1000, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TokenCost(tt.prompt, tt.completion, tt.in, tt.out); got != tt.want {
				t.Errorf("TokenCost = %d nano-dollars, want %d", got, tt.want)
			}
		})
	}
}

// A million requests of one token at 0.06 per million tokens cost exactly
// 0.06 dollars; in float64 the same sum drifts.
func TestManySmallCostsSumExactly(t *testing.T) {
	t.Parallel()
	var total Money
	for range 1_000_000 {
		total += TokenCost(1, 0, 0.06, 0)
	}
	if total.String() != "0.06" {
		t.Fatalf("total = %s, want 0.06", total)
	}
}

func TestDollars(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   float64
		want Money
	}{
		{0.1, 100_000_000}, {6.000000000000001e-08, 60}, {-1.5, -1_500_000_000},
		{1e30, Max}, {math.Inf(-1), Money(math.MinInt64)}, {math.NaN(), 0},
	} {
		if got := Dollars(tt.in); got != tt.want {
			t.Errorf("Dollars(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
