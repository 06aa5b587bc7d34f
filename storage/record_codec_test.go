package storage

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestAppendUsageRecordDecodesAsEncodingJSON encodes records with the hand
// encoder and with encoding/json and checks that both are valid JSON that
// decode to the same record.
func TestAppendUsageRecordDecodesAsEncodingJSON(t *testing.T) {
	t.Parallel()
	base := UsageRecord{
		ID: "0199a6f0-7c1e-7d3a-9b1e-3f6a5c2d1e0f", RequestID: "req-1", UserID: "user-123",
		Timestamp: time.Date(2026, 12, 2, 4, 5, 6, 789123000, time.UTC),
		Model:     "gpt-4o-mini", Provider: "openai", Endpoint: "/v1/chat/completions",
		PromptTokens: 11, CompletionTokens: 7, TotalTokens: 18, Cost: Dollars(0.0000123),
		Status: "success", StatusCode: 200, LatencyMS: 412, UsageSource: "provider",
	}
	full := base
	full.APIKeyID, full.EndUser, full.ErrorMessage = "key-1", "end <user> & co", "upstream said \"no\"\n\t\x01\\ \u2028 é 日本"
	full.ExceededReservation = true
	full.UserPeriod, full.KeyPeriod = base.Timestamp.Add(-time.Hour), time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))
	full.Cost = -Dollars(12.5)
	invalid := base
	invalid.ErrorMessage, invalid.EndUser = "bad \xff\xfe utf-8 \xe2\x82", strings.Repeat("ü", 300)
	tests := map[string]UsageRecord{"minimal": base, "every field": full, "invalid utf-8": invalid, "zero": {}}

	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		r := base
		raw := make([]byte, rng.IntN(40))
		for j := range raw {
			raw[j] = byte(rng.IntN(256))
		}
		r.ErrorMessage, r.Model = string(raw), string(raw[:len(raw)/2])
		tests["random "+string(rune('a'+i%26))+strings.Repeat("!", i/26)] = r
	}

	for name, rec := range tests {
		got, err := appendUsageRecord(nil, &rec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := json.Marshal(&rec)
		if err != nil {
			t.Fatalf("%s: json.Marshal: %v", name, err)
		}
		if !json.Valid(got) {
			t.Fatalf("%s: invalid JSON %q", name, got)
		}
		var a, b UsageRecord
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: hand encoder decodes to\n%+v\nencoding/json to\n%+v", name, a, b)
		}
		// Same keys in the same order: the stored form does not change
		// shape with the encoder.
		var ka, kb map[string]json.RawMessage
		_ = json.Unmarshal(got, &ka)
		_ = json.Unmarshal(want, &kb)
		if len(ka) != len(kb) {
			t.Errorf("%s: %d fields, encoding/json writes %d", name, len(ka), len(kb))
		}
	}
}

func TestAppendUsageRecordRefusesYearsEncodingJSONRefuses(t *testing.T) {
	t.Parallel()
	rec := &UsageRecord{ID: "x", Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := appendUsageRecord(nil, rec); err == nil {
		t.Fatal("year 10000 encoded")
	}
}
