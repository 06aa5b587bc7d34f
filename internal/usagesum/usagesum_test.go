package usagesum

import (
	"reflect"
	"testing"
	"time"
)

func hour(d, h int) time.Time { return time.Date(2025, 3, d, h, 0, 0, 0, time.UTC) }

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		iv   Interval
		ivOK bool
		g    GroupBy
		gOK  bool
	}{
		{"", Day, true, None, true},
		{"hour", Hour, true, "", false},
		{"month", Month, true, "", false},
		{"model", "", false, Model, true},
		{"none", "", false, None, true},
		{"end_user", "", false, EndUser, true},
		{"Day", "", false, "", false},
		{"week", "", false, "", false},
	} {
		iv, ok := ParseInterval(tc.in)
		if ok != tc.ivOK || (ok && iv != tc.iv) {
			t.Errorf("ParseInterval(%q) = %q, %v", tc.in, iv, ok)
		}
		g, ok := ParseGroupBy(tc.in)
		if ok != tc.gOK || (ok && g != tc.g) {
			t.Errorf("ParseGroupBy(%q) = %q, %v", tc.in, g, ok)
		}
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	ts := time.Date(2025, 3, 31, 23, 59, 59, 999, time.FixedZone("+2", 7200))
	for iv, want := range map[Interval]time.Time{
		Hour:  time.Date(2025, 3, 31, 21, 0, 0, 0, time.UTC),
		Day:   time.Date(2025, 3, 31, 0, 0, 0, 0, time.UTC),
		Month: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got := iv.Truncate(ts); !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s.Truncate = %v, want %v", iv, got, want)
		}
	}
}

func TestPlanQuery(t *testing.T) {
	t.Parallel()
	byUser := Filter{UserID: "u"}
	tests := []struct {
		name string
		q    Query
		want Plan
	}{
		{"models only: one range of model rows", Query{Interval: Day, GroupBy: Model, Start: hour(1, 5).Add(30 * time.Minute), End: hour(3, 7)},
			Plan{Models: HourRange{hour(1, 5), hour(3, 8)}}},
		{"whole days from daily rows, partial ones from hourly", Query{Interval: Day, Filter: byUser, Start: hour(1, 5), End: hour(4, 2).Add(time.Minute)},
			Plan{Days: HourRange{hour(2, 0), hour(4, 0)}, Hours: []HourRange{{hour(1, 5), hour(2, 0)}, {hour(4, 0), hour(4, 3)}}}},
		{"aligned days need no hours", Query{Interval: Month, Filter: byUser, Start: hour(1, 0), End: hour(2, 23)},
			Plan{Days: HourRange{hour(1, 0), hour(3, 0)}}},
		{"less than a whole day", Query{Interval: Day, Filter: byUser, Start: hour(1, 5), End: hour(2, 3)},
			Plan{Hours: []HourRange{{hour(1, 5), hour(2, 4)}}}},
		{"hour buckets", Query{Interval: Hour, Filter: byUser, Start: hour(1, 0), End: hour(9, 0)},
			Plan{Hours: []HourRange{{hour(1, 0), hour(9, 1)}}}},
		{"end users are in hourly rows only", Query{Interval: Day, GroupBy: EndUser, Start: hour(1, 0), End: hour(9, 0)},
			Plan{Hours: []HourRange{{hour(1, 0), hour(9, 1)}}}},
		{"unbounded", Query{Interval: Day, GroupBy: UserID},
			Plan{Days: HourRange{Earliest, Latest}}},
		{"nothing before 1970", Query{Interval: Day, End: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)}, Plan{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := PlanQuery(tc.q); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("PlanQuery = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRollupFiltersGroupsAndOrders(t *testing.T) {
	t.Parallel()
	r := NewRollup(Query{Interval: Day, GroupBy: APIKeyID, Filter: Filter{Model: "openai:gpt"}})
	one := Totals{Requests: 1, Errors: 1, PromptTokens: 2, CompletionTokens: 3, TotalTokens: 5, Cost: 7}
	r.Add(hour(2, 1), Dims{Provider: "openai", Model: "gpt", APIKeyID: "k2"}, one)
	r.Add(hour(2, 5), Dims{Provider: "openai", Model: "gpt", APIKeyID: "k2"}, one)
	r.Add(hour(2, 5), Dims{Provider: "openai", Model: "gpt"}, one)
	r.Add(hour(1, 5), Dims{Provider: "openai", Model: "gpt", APIKeyID: "k1"}, one)
	r.Add(hour(1, 5), Dims{Provider: "azure", Model: "gpt", APIKeyID: "k1"}, one) // another provider's gpt
	k1, k2 := "k1", "k2"
	two := one
	two.Add(one)
	want := []Bucket{
		{Start: hour(1, 0), Group: &k1, Totals: one},
		{Start: hour(2, 0), Group: nil, Totals: one},
		{Start: hour(2, 0), Group: &k2, Totals: two},
	}
	if got := r.Buckets(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Buckets = %+v, want %+v", got, want)
	}
}

func TestFilterModelMatchesNameOrModelKey(t *testing.T) {
	t.Parallel()
	d := Dims{Provider: "ollama", Model: "llama3:8b"}
	for model, want := range map[string]bool{
		"": true, "llama3:8b": true, "ollama:llama3:8b": true, "ollama": false, "llama3": false, "other:llama3:8b": false,
	} {
		if got := (Filter{Model: model}).Match(d); got != want {
			t.Errorf("Filter{Model: %q}.Match = %v, want %v", model, got, want)
		}
	}
}
