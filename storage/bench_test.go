package storage

import (
	"encoding/json"
	"testing"
	"time"
)

// benchRecord is a typical usage record.
func benchRecord() *UsageRecord {
	return &UsageRecord{
		ID: "0199a6f0-7c1e-7d3a-9b1e-3f6a5c2d1e0f", RequestID: "4b2f5f86-cc06-4766-b9bf-8b3a889fb914",
		UserID: "user-123", APIKeyID: "01a219b7-b8a0-70b9-9ee6-d48087e8f2b0", Timestamp: time.Now().UTC(),
		Model: "gpt-4o-mini", Provider: "openai", Endpoint: "/v1/chat/completions",
		PromptTokens: 11, CompletionTokens: 7, TotalTokens: 18, Cost: Dollars(0.0000123),
		Status: "success", StatusCode: 200, LatencyMS: 412, UsageSource: "provider",
	}
}

// BenchmarkEncodeUsageRecord measures turning a usage record into what the
// writer commits (its JSON and its keys).
func BenchmarkEncodeUsageRecord(b *testing.B) {
	rec := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := newUsageRequest(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUsageRecordJSON compares the record's hand encoder with
// encoding/json, which it replaced.
func BenchmarkUsageRecordJSON(b *testing.B) {
	rec := benchRecord()
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			var err error
			if buf, err = appendUsageRecord(buf[:0], rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
