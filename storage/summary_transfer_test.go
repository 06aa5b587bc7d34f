package storage_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/usagesum"
	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres/pgtest"
	"github.com/llmgateway/caddy-llm-gateway/storage/transfer"
)

// caddy llm-gateway migrate copies the summaries as they are: they count
// records the store no longer holds (deleted by retention), which copying
// the records cannot bring back, and the copied records must not count
// again. A second copy changes nothing.
func TestMigrateCarriesSummariesOfDeletedRecords(t *testing.T) {
	src, err := storage.Open(storage.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	record := func(i int) {
		t.Helper()
		rec := &storage.UsageRecord{ID: fmt.Sprintf("rec-%03d", i), RequestID: "r", UserID: fmt.Sprintf("u%d", i%2),
			APIKeyID: "k", EndUser: "e", Timestamp: t0.Add(time.Duration(i) * 10 * time.Minute), Model: "ok", Provider: "mock",
			PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, Cost: storage.Money(1000), Status: "success", StatusCode: 200}
		if err := src.RecordUsage(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		record(i)
	}
	if err := storage.DropUsageRecords(src); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 20; i++ { // the same hours and days as some deleted ones
		record(i)
	}
	dst, err := postgres.Open(context.Background(), postgres.Options{URL: pgtest.URL(t), Schema: pgtest.Schema(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	queries := []usagesum.Query{
		{Interval: usagesum.Day, GroupBy: usagesum.Model},
		{Interval: usagesum.Hour, GroupBy: usagesum.UserID},
		{Interval: usagesum.Month, GroupBy: usagesum.APIKeyID, Filter: usagesum.Filter{UserID: "u1"}},
		{Interval: usagesum.Hour, GroupBy: usagesum.EndUser},
	}
	for _, when := range []string{"after the copy", "after a second copy"} {
		if _, err := transfer.FromBadger(src, dst); err != nil {
			t.Fatal(err)
		}
		for _, q := range queries {
			from, err := src.SummarizeUsage(q)
			if err != nil {
				t.Fatal(err)
			}
			to, err := dst.SummarizeUsage(q)
			if err != nil {
				t.Fatal(err)
			}
			var requests int64
			for _, b := range from {
				requests += b.Requests
			}
			want := int64(20) // every record, the deleted ones too
			if q.Filter.UserID != "" {
				want = 10
			}
			if requests != want || !reflect.DeepEqual(from, to) {
				t.Errorf("%s, summary %+v: copied %+v, source %+v (%d requests)", when, q, to, from, requests)
			}
		}
	}
}
