package llmgateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
)

// A spooled settlement comes back exactly as it went in: the cost to the
// nano-dollar, the periods it is charged to, the hold and its tokens.
func TestSpooledSettlementRoundTrips(t *testing.T) {
	at := time.Date(2026, 12, 2, 2, 30, 0, 123456000, time.UTC)
	in := spooledSettlement{
		Record: &storage.UsageRecord{
			ID: "01a2349a-7597-70ec-86d0-ef6d388b0e84", RequestID: "r1", UserID: "u1", APIKeyID: "k1",
			Timestamp: at, Model: "gpt-4o", Provider: "openai", Endpoint: "/v1/chat/completions",
			PromptTokens: 11, CompletionTokens: 7, TotalTokens: 18, Cost: storage.Money(1_234_567_891),
			Status: "success", StatusCode: 200, LatencyMS: 42, UsageSource: "provider",
			ExceededReservation: true, UserPeriod: at.Truncate(time.Hour), KeyPeriod: at.Truncate(24 * time.Hour),
		},
		HoldID: "hold-1",
		Tokens: 18,
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out spooledSettlement
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the settlement:\n%+v\n%+v", *in.Record, *out.Record)
	}
}

func TestSpoolableErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("committing usage: %w", postgres.ErrUnavailable), true},
		{context.DeadlineExceeded, true},
		{storage.ErrClosed, true},
		{errors.New("usage record x: invalid user id"), false},
	} {
		if got := spoolable(tc.err); got != tc.want {
			t.Errorf("spoolable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
