package storetest

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/usagesum"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// summaryFixture records traffic over several hours, days and months, by
// several users, keys, models, providers and end users, with errors, and
// returns the records.
func summaryFixture(t *testing.T, s Store) []*storage.UsageRecord {
	t.Helper()
	type row struct {
		user, key, provider, model, endUser, status string
		ts                                          time.Time
		prompt, completion                          int64
		cost                                        storage.Money
	}
	day := 24 * time.Hour
	rows := []row{
		{"u1", "k1", "openai", "gpt-4o-mini", "", "success", at(0), 10, 5, storage.Dollars(0.001)},
		{"u1", "k1", "openai", "gpt-4o-mini", "e1", "success", at(10 * time.Minute), 20, 7, storage.Dollars(0.002)},
		{"u1", "k1", "openai", "gpt-4o", "e1", "error", at(50 * time.Minute), 3, 0, 0},
		{"u1", "", "anthropic", "claude", "", "success", at(70 * time.Minute), 100, 50, storage.Dollars(0.01)},
		{"u2", "k2", "openai", "gpt-4o-mini", "e2", "success", at(3 * time.Hour), 1, 1, storage.Dollars(0.0001)},
		{"u2", "k2", "anthropic", "claude", "e1", "success", at(day + time.Hour), 40, 40, storage.Dollars(0.004)},
		{"u2", "k3", "anthropic", "claude", "", "error", at(day + 2*time.Hour), 0, 0, 0},
		{"u1", "k1", "openai", "gpt-4o-mini", "", "success", at(2*day + 13*time.Hour), 8, 8, storage.Dollars(0.0008)},
		{"u3", "k4", "mylocal", "llama:8b", "e3", "success", at(5*day + 20*time.Hour), 9, 9, storage.Dollars(0.0009)},
		{"u2", "k2", "openai", "gpt-4o-mini", "e2", "success", at(31 * day), 11, 12, storage.Dollars(0.0011)},
		{"u1", "k1", "openai", "gpt-4o", "", "success", at(40*day + 30*time.Minute), 1000, 2000, storage.Dollars(0.03)},
	}
	var recs []*storage.UsageRecord
	for _, r := range rows {
		rec := record(r.user, r.key, r.ts, r.cost)
		rec.Provider, rec.Model, rec.EndUser, rec.Status = r.provider, r.model, r.endUser, r.status
		rec.PromptTokens, rec.CompletionTokens, rec.TotalTokens = r.prompt, r.completion, r.prompt+r.completion
		if r.status != "success" {
			rec.StatusCode = 502
		}
		mustRecord(t, s, rec)
		recs = append(recs, rec)
	}
	return recs
}

// expectedSummary computes a summary from records directly: the oracle
// the stores' kept totals are checked against.
func expectedSummary(recs []*storage.UsageRecord, q usagesum.Query) []usagesum.Bucket {
	type key struct {
		start time.Time
		group string
		named bool
	}
	sums := map[key]*usagesum.Totals{}
	var order []key
	for _, r := range recs {
		if !q.Start.IsZero() && r.Timestamp.Before(q.Start.Truncate(time.Hour)) {
			continue
		}
		if !q.End.IsZero() && r.Timestamp.Truncate(time.Hour).After(q.End) {
			continue
		}
		f := q.Filter
		if (f.UserID != "" && r.UserID != f.UserID) || (f.APIKeyID != "" && r.APIKeyID != f.APIKeyID) ||
			(f.EndUser != "" && r.EndUser != f.EndUser) ||
			(f.Model != "" && r.Model != f.Model && r.Provider+":"+r.Model != f.Model) {
			continue
		}
		ts := r.Timestamp.UTC()
		var start time.Time
		switch q.Interval {
		case usagesum.Hour:
			start = time.Date(ts.Year(), ts.Month(), ts.Day(), ts.Hour(), 0, 0, 0, time.UTC)
		case usagesum.Month:
			start = time.Date(ts.Year(), ts.Month(), 1, 0, 0, 0, 0, time.UTC)
		default:
			start = time.Date(ts.Year(), ts.Month(), ts.Day(), 0, 0, 0, 0, time.UTC)
		}
		k := key{start: start}
		switch q.GroupBy {
		case usagesum.Model:
			k.group, k.named = r.Provider+":"+r.Model, true
		case usagesum.Provider:
			k.group, k.named = r.Provider, true
		case usagesum.UserID:
			k.group, k.named = r.UserID, true
		case usagesum.APIKeyID:
			k.group, k.named = r.APIKeyID, r.APIKeyID != ""
		case usagesum.EndUser:
			k.group, k.named = r.EndUser, r.EndUser != ""
		}
		sum, ok := sums[k]
		if !ok {
			sum = &usagesum.Totals{}
			sums[k] = sum
			order = append(order, k)
		}
		sum.Requests++
		if r.Status != "success" {
			sum.Errors++
		}
		sum.PromptTokens += r.PromptTokens
		sum.CompletionTokens += r.CompletionTokens
		sum.TotalTokens += r.TotalTokens
		sum.Cost += int64(r.Cost)
	}
	out := []usagesum.Bucket{}
	for _, k := range order {
		b := usagesum.Bucket{Start: k.start, Totals: *sums[k]}
		if k.named {
			b.Group = &k.group
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b usagesum.Bucket) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		if a.Group == nil || b.Group == nil {
			return cmp.Compare(boolInt(a.Group != nil), boolInt(b.Group != nil))
		}
		return cmp.Compare(*a.Group, *b.Group)
	})
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// summaryQueries are the queries checked against the oracle: every
// interval and grouping, each filter, and ranges that start and end
// inside days (partial days come from hourly rows, whole ones from daily).
func summaryQueries() []usagesum.Query {
	var qs []usagesum.Query
	ranges := []struct{ start, end time.Time }{
		{},
		{at(30 * time.Minute), time.Time{}},
		{at(-2 * time.Hour), at(24*time.Hour + 90*time.Minute)},
		{at(12 * time.Hour), at(6 * 24 * time.Hour)},
		{time.Time{}, at(2 * time.Hour)},
		{at(24 * time.Hour), at(24 * time.Hour)},
		{at(100 * 24 * time.Hour), time.Time{}},
	}
	filters := []usagesum.Filter{
		{},
		{UserID: "u1"},
		{APIKeyID: "k2"},
		{Model: "gpt-4o-mini"},
		{Model: "anthropic:claude"},
		{Model: "mylocal:llama:8b"},
		{EndUser: "e1"},
		{UserID: "u2", Model: "claude"},
	}
	for _, iv := range []usagesum.Interval{usagesum.Hour, usagesum.Day, usagesum.Month} {
		for _, g := range []usagesum.GroupBy{usagesum.None, usagesum.Model, usagesum.Provider, usagesum.UserID, usagesum.APIKeyID, usagesum.EndUser} {
			for _, r := range ranges {
				for _, f := range filters {
					qs = append(qs, usagesum.Query{Interval: iv, GroupBy: g, Filter: f, Start: r.start, End: r.end})
				}
			}
		}
	}
	return qs
}

func checkSummaries(t *testing.T, s Store, recs []*storage.UsageRecord) {
	t.Helper()
	failures := 0
	for _, q := range summaryQueries() {
		got, err := s.SummarizeUsage(q)
		if err != nil {
			t.Fatalf("SummarizeUsage(%+v): %v", q, err)
		}
		want := expectedSummary(recs, q)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("SummarizeUsage(%+v):\n got %s\nwant %s", q, formatBuckets(got), formatBuckets(want))
			if failures++; failures > 5 {
				t.FailNow()
			}
		}
	}
}

func formatBuckets(bs []usagesum.Bucket) string {
	s := "["
	for _, b := range bs {
		g := "null"
		if b.Group != nil {
			g = *b.Group
		}
		s += fmt.Sprintf("{%s %s %+v} ", b.Start.Format(time.RFC3339), g, b.Totals)
	}
	return s + "]"
}

func testSummaryMatchesRecords(t *testing.T, s Store) {
	recs := summaryFixture(t, s)
	checkSummaries(t, s, recs)
}

func testSummaryOfEmptyStore(t *testing.T, s Store) {
	got, err := s.SummarizeUsage(usagesum.Query{Interval: usagesum.Day})
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || len(got) != 0 {
		t.Fatalf("summary of an empty store = %#v, want an empty non-nil list", got)
	}
}

// testSummaryCountsRedeliveryAsSpendDoes checks that a record delivered
// again changes the summary exactly as it changes spend: the stores differ
// there (Badger adds a record stored again, PostgreSQL skips a known id),
// and the summary must agree with spend either way.
func testSummaryCountsRedeliveryAsSpendDoes(t *testing.T, s Store) {
	rec := record("u-redeliver", "", at(time.Hour), storage.Dollars(0.5))
	rec.UserPeriod = T0
	mustRecord(t, s, rec)
	again := *rec
	mustRecord(t, s, &again)
	spend, err := s.GetSpend(storage.SpendOfUser, "u-redeliver", T0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.SummarizeUsage(usagesum.Query{Interval: usagesum.Day, Filter: usagesum.Filter{UserID: "u-redeliver"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Cost != int64(spend) {
		t.Fatalf("summary %s, spend %s: the summary must count what spend counts", formatBuckets(got), spend)
	}
}
