package storage

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
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

// BenchmarkRecordUsageDisk commits records through the usage writer on
// disk in each durability mode, from as many goroutines as
// -cpu × RunParallel gives: os returns once the record is in the
// operating system, fsync once its batch is synced.
func BenchmarkRecordUsageDisk(b *testing.B) {
	for _, d := range []Durability{DurabilityOS, DurabilityFsync} {
		b.Run(d.String(), func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), Durability: d})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				rec := *benchRecord()
				for pb.Next() {
					id, err := uuid.NewV7()
					if err != nil {
						b.Fatal(err)
					}
					rec.ID = id.String()
					if err := s.RecordUsage(context.Background(), &rec); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkRecordUsageSerial commits one record at a time through the
// usage writer on disk, as a client at concurrency 1 does: with fsync,
// each record waits for its own sync, to be compared with
// BenchmarkFdatasync (a bare fdatasync of a write into a preallocated
// file, as the store's log is).
func BenchmarkRecordUsageSerial(b *testing.B) {
	for _, d := range []Durability{DurabilityOS, DurabilityFsync} {
		b.Run(d.String(), func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), Durability: d})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			rec := *benchRecord()
			for b.Loop() {
				id, err := uuid.NewV7()
				if err != nil {
					b.Fatal(err)
				}
				rec.ID = id.String()
				if err := s.RecordUsage(context.Background(), &rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
