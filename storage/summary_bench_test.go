package storage

import (
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/llmgateway/caddy-llm-gateway/internal/usagesum"
)

// summaryBenchRecords is the size of the store the summary benchmark
// queries: 1M records over 30 days.
const (
	summaryBenchRecords = 1_000_000
	summaryBenchDays    = 30
	summaryBenchUsers   = 1000
	summaryBenchKeys    = 10_000
	summaryBenchModels  = 10
)

// BenchmarkSummarize30Days answers 30-day-by-day summaries on an on-disk
// store of 1M usage records written by the usage writer's own code
// (applyUsage, in batches of maxUsageBatch): 1,000 users, 10,000 keys,
// 10 models of 3 providers, an end user on 40% of the records out of
// 20,000, 3% errors. Sub-benchmarks: the dashboard's totals and per-model
// split (model rows), one user's (daily rows), and per user (daily rows of
// every user).
func BenchmarkSummarize30Days(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	end := time.Date(2025, 3, 31, 0, 0, 0, 0, time.UTC)
	begin := end.AddDate(0, 0, -summaryBenchDays)
	step := end.Sub(begin) / summaryBenchRecords
	batch := make([]*usageRequest, 0, maxUsageBatch)
	flush := func() {
		if err := s.update(func(txn *badger.Txn) error { return applyUsage(txn, batch) }); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range summaryBenchRecords {
		key := (i * 7919) % summaryBenchKeys
		rec := &UsageRecord{
			ID: fmt.Sprintf("rec-%08d", i), RequestID: fmt.Sprintf("req-%08d", i),
			UserID: fmt.Sprintf("user-%04d", key%summaryBenchUsers), APIKeyID: fmt.Sprintf("key-%05d", key),
			Timestamp: begin.Add(time.Duration(i) * step), Provider: []string{"openai", "anthropic", "mylocal"}[i%3],
			Model: fmt.Sprintf("model-%d", (key+i%2)%summaryBenchModels), Endpoint: "/v1/chat/completions",
			PromptTokens: 100, CompletionTokens: 50, TotalTokens: 150, Cost: Money(1234), Status: "success",
			StatusCode: 200, UsageSource: "provider",
		}
		if i%5 < 2 {
			rec.EndUser = fmt.Sprintf("end-%05d", (i*31)%20_000)
		}
		if i%33 == 0 {
			rec.Status, rec.StatusCode = "error", 502
		}
		req, err := newUsageRequest(rec)
		if err != nil {
			b.Fatal(err)
		}
		if batch = append(batch, req); len(batch) == maxUsageBatch {
			flush()
		}
	}
	flush()

	start := end.AddDate(0, 0, -summaryBenchDays)
	for _, bc := range []struct {
		name string
		q    usagesum.Query
	}{
		{"Totals", usagesum.Query{Interval: usagesum.Day, Start: start, End: end}},
		{"ByModel", usagesum.Query{Interval: usagesum.Day, GroupBy: usagesum.Model, Start: start, End: end}},
		{"OneUserByModel", usagesum.Query{Interval: usagesum.Day, GroupBy: usagesum.Model, Filter: usagesum.Filter{UserID: "user-0042"}, Start: start, End: end}},
		{"ByUser", usagesum.Query{Interval: usagesum.Day, GroupBy: usagesum.UserID, Start: start, End: end}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var rows, requests int64
			for b.Loop() {
				buckets, err := s.SummarizeUsage(bc.q)
				if err != nil {
					b.Fatal(err)
				}
				rows, requests = int64(len(buckets)), 0
				for _, bk := range buckets {
					requests += bk.Requests
				}
			}
			b.ReportMetric(float64(rows), "buckets")
			b.ReportMetric(float64(requests), "requests")
		})
	}
}
