package storage

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/llmgateway/caddy-llm-gateway/internal/usagesum"
)

var summaryT0 = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

// recordSummaryTraffic records n records, an hour apart in turn over a
// few users, keys, models and end users.
func recordSummaryTraffic(t *testing.T, s *Store, n int) {
	t.Helper()
	for i := range n {
		rec := &UsageRecord{
			ID: newID(t), RequestID: newID(t), UserID: fmt.Sprintf("u%d", i%3), APIKeyID: fmt.Sprintf("k%d", i%4),
			EndUser: fmt.Sprintf("e%d", i%5), Timestamp: summaryT0.Add(time.Duration(i) * 37 * time.Minute),
			Model: fmt.Sprintf("m%d", i%2), Provider: "openai", PromptTokens: int64(i), CompletionTokens: 2,
			TotalTokens: int64(i) + 2, Cost: Money(1000 + i), Status: "success", StatusCode: 200,
		}
		if i%7 == 0 {
			rec.Status, rec.StatusCode = "error", 502
		}
		if err := s.RecordUsage(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
}

// summaryQueriesForTest are a few queries that read daily and hourly rows.
var summaryQueriesForTest = []usagesum.Query{
	{Interval: usagesum.Day},
	{Interval: usagesum.Hour, GroupBy: usagesum.EndUser},
	{Interval: usagesum.Month, GroupBy: usagesum.Model, Start: summaryT0.Add(5 * time.Hour), End: summaryT0.Add(50 * time.Hour)},
	{Interval: usagesum.Day, GroupBy: usagesum.APIKeyID, Filter: usagesum.Filter{UserID: "u1"}},
}

func summarize(t *testing.T, s *Store) [][]usagesum.Bucket {
	t.Helper()
	var out [][]usagesum.Bucket
	for _, q := range summaryQueriesForTest {
		b, err := s.SummarizeUsage(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Fatalf("SummarizeUsage(%+v) is empty", q)
		}
		out = append(out, b)
	}
	return out
}

func openDir(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSummariesSurviveARestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openDir(t, dir)
	recordSummaryTraffic(t, s, 100)
	before := summarize(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir)
	defer s.Close()
	if after := summarize(t, s); !reflect.DeepEqual(before, after) {
		t.Fatalf("summaries changed over a restart:\nbefore %v\nafter  %v", before, after)
	}
}

// A store written before summaries existed gets them built from its
// records at Open, equal to those kept as the records were written.
func TestSummariesAreBuiltForAnOlderStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openDir(t, dir)
	recordSummaryTraffic(t, s, 100)
	kept := summarize(t, s)
	// Make it an older store: no summaries, no mark.
	err := s.update(func(txn *badger.Txn) error {
		for _, p := range []string{prefixSummaryModel, prefixSummaryHour, prefixSummaryDay} {
			if err := deletePrefix(txn, []byte(p)); err != nil {
				return err
			}
		}
		return txn.Delete(summaryBuiltKey)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir)
	defer s.Close()
	if built := summarize(t, s); !reflect.DeepEqual(kept, built) {
		t.Fatalf("built summaries differ from kept ones:\nkept  %v\nbuilt %v", kept, built)
	}
	// Records written after the build add to it once.
	recordSummaryTraffic(t, s, 1)
	got, err := s.SummarizeUsage(usagesum.Query{Interval: usagesum.Month})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Requests != 101 {
		t.Fatalf("month summary %+v, want 101 requests", got)
	}
}

// Deleting usage records (as retention does) leaves the summaries as
// they were.
func TestSummariesOutliveDeletedRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openDir(t, dir)
	recordSummaryTraffic(t, s, 50)
	before := summarize(t, s)
	err := s.update(func(txn *badger.Txn) error {
		for _, p := range []string{prefixUsageTime, prefixUsageUser, prefixUsageKey, prefixUsageModel} {
			if err := deletePrefix(txn, []byte(p)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir)
	defer s.Close()
	if recs, _ := s.ListUsage(UsageFilter{}, 0, 10); len(recs) != 0 {
		t.Fatalf("%d records left", len(recs))
	}
	if after := summarize(t, s); !reflect.DeepEqual(before, after) {
		t.Fatalf("summaries changed when records were deleted:\nbefore %v\nafter  %v", before, after)
	}
}

func TestSummaryCodecRoundTrips(t *testing.T) {
	t.Parallel()
	dims := usagesum.Dims{Provider: "p\x00", Model: "m:\x01x", UserID: "", APIKeyID: "k", EndUser: "e\x00\x00"}
	key := summaryHourKey(summaryT0, dims)
	got, err := decodeDims(key[len(prefixSummaryHour)+timestampKeySize:], 5)
	if err != nil || got != dims {
		t.Fatalf("decodeDims = %+v, %v; want %+v", got, err, dims)
	}
	if _, err := decodeDims(key[len(prefixSummaryHour)+timestampKeySize:len(key)-1], 5); err == nil {
		t.Fatal("a truncated key decoded")
	}
	tot := usagesum.Totals{Requests: 1, Errors: 2, PromptTokens: 1 << 40, CompletionTokens: 4, TotalTokens: 5, Cost: 1 << 62}
	if back, err := decodeTotals(encodeTotals(tot)); err != nil || back != tot {
		t.Fatalf("decodeTotals = %+v, %v; want %+v", back, err, tot)
	}
}
