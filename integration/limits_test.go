package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startLimitGateway serves mock:ok at prices that make one call cost
// exactly $0.032 (11 prompt tokens at $1000/M, 7 completion at $3000/M).
func startLimitGateway(t *testing.T) *gateway {
	t.Helper()
	mock := newMockUpstream(t)
	return startGateway(t, gatewayConfig{Block: fmt.Sprintf(`provider mock {
			base_url %s
		}
		price mock:ok 1000 3000`, mock.BaseURL())})
}

const limitRequest = `{"model":"mock:ok","max_tokens":7,"messages":[{"role":"user","content":"hi"}]}`

// Issue #10.3: a key capped at 0.1 had spent 0.096; PATCH max_budget 0.05
// answered spend 0 and three more requests went through. Changing a limit
// must not change spend: only the schedule starts periods.
func TestChangingAKeyLimitKeepsItsSpend(t *testing.T) {
	t.Parallel()
	g := startLimitGateway(t)
	g.newUser(map[string]any{"user_id": "kim"})
	key := g.newKey(map[string]any{"user_id": "kim", "max_budget": 10})
	for range 3 {
		expect(t, g.do("POST", "/v1/chat/completions", limitRequest, bearer(key.Key)...), http.StatusOK)
	}
	path := "/v1/keys/" + key.ID
	before := expect(t, g.adminDo("GET", path, nil), http.StatusOK).Map(t)
	if before["spend"] != 0.096 {
		t.Fatalf("spend after three calls = %v, want 0.096", before["spend"])
	}

	after := expect(t, g.adminDo("PATCH", path, map[string]any{"max_budget": 0.05}), http.StatusOK).Map(t)
	if after["spend"] != 0.096 || after["max_budget"] != 0.05 || after["budget_started_at"] != before["budget_started_at"] {
		t.Fatalf("after lowering max_budget: spend %v, max_budget %v, budget_started_at %v (was %v)",
			after["spend"], after["max_budget"], after["budget_started_at"], before["budget_started_at"])
	}
	for range 3 {
		r := g.do("POST", "/v1/chat/completions", limitRequest, bearer(key.Key)...)
		expect(t, r, http.StatusForbidden)
		if msg := r.Map(t)["detail"].(string); !strings.HasPrefix(msg, "API key '"+key.ID+"' has exceeded budget limit") {
			t.Fatalf("refusal = %q", msg)
		}
	}

	// A duration given to a key that had none: the current period goes on
	// (same spend) and ends one duration after the change.
	patched := time.Now()
	after = expect(t, g.adminDo("PATCH", path, map[string]any{"budget_duration_sec": 86400}), http.StatusOK).Map(t)
	reset := apiTimeOf(t, after["next_budget_reset_at"])
	if after["spend"] != 0.096 || reset.Before(patched.Add(24*time.Hour-time.Minute)) || reset.After(time.Now().Add(24*time.Hour)) {
		t.Fatalf("after setting a duration: spend %v, next reset %v", after["spend"], reset)
	}
	// Another duration: the current period keeps its end as well.
	after = expect(t, g.adminDo("PATCH", path, map[string]any{"budget_duration_sec": 3600}), http.StatusOK).Map(t)
	if after["spend"] != 0.096 || !apiTimeOf(t, after["next_budget_reset_at"]).Equal(reset) {
		t.Fatalf("after changing the duration: spend %v, next reset %v (was %v)", after["spend"], after["next_budget_reset_at"], reset)
	}
	expect(t, g.do("POST", "/v1/chat/completions", limitRequest, bearer(key.Key)...), http.StatusForbidden)

	var sum float64
	var recs []usageRecord
	expect(t, g.adminDo("GET", "/v1/usage?api_key_id="+key.ID, nil), http.StatusOK).JSON(t, &recs)
	for _, r := range recs {
		sum += r.Cost
	}
	if len(recs) != 3 || sum > 0.0961 {
		t.Fatalf("%d records costing %v: more was served than the limit allowed", len(recs), sum)
	}
}

// The same rule on the user side: naming the budget a user is already on,
// and editing the budget template, keep the user's spend.
func TestChangingAUserBudgetKeepsItsSpend(t *testing.T) {
	t.Parallel()
	g := startLimitGateway(t)
	budget := g.newBudget(map[string]any{"max_budget": 10})
	g.newUser(map[string]any{"user_id": "uma", "budget_id": budget})
	key := g.newKey(map[string]any{"user_id": "uma"})
	for range 3 {
		expect(t, g.do("POST", "/v1/chat/completions", limitRequest, bearer(key.Key)...), http.StatusOK)
	}
	before := expect(t, g.adminDo("GET", "/v1/users/uma", nil), http.StatusOK).Map(t)
	if before["spend"] != 0.096 {
		t.Fatalf("spend after three calls = %v, want 0.096", before["spend"])
	}

	after := expect(t, g.adminDo("PATCH", "/v1/users/uma", map[string]any{"budget_id": budget}), http.StatusOK).Map(t)
	if after["spend"] != 0.096 || after["budget_started_at"] != before["budget_started_at"] {
		t.Fatalf("after PATCH of the same budget_id: spend %v, budget_started_at %v (was %v)",
			after["spend"], after["budget_started_at"], before["budget_started_at"])
	}

	expect(t, g.adminDo("PATCH", "/v1/budgets/"+budget, map[string]any{"max_budget": 0.05}), http.StatusOK)
	r := g.do("POST", "/v1/chat/completions", limitRequest, bearer(key.Key)...)
	expect(t, r, http.StatusForbidden)
	if msg := r.Map(t)["detail"].(string); !strings.HasPrefix(msg, "User 'uma' has exceeded budget limit") {
		t.Fatalf("refusal = %q", msg)
	}

	for _, d := range []int{86400, 3600} {
		expect(t, g.adminDo("PATCH", "/v1/budgets/"+budget, map[string]any{"budget_duration_sec": d}), http.StatusOK)
		u := expect(t, g.adminDo("GET", "/v1/users/uma", nil), http.StatusOK).Map(t)
		if u["spend"] != 0.096 || u["budget_started_at"] != before["budget_started_at"] || u["next_budget_reset_at"] == nil {
			t.Fatalf("after budget_duration_sec %d: spend %v, budget_started_at %v, next reset %v",
				d, u["spend"], u["budget_started_at"], u["next_budget_reset_at"])
		}
	}
	expect(t, g.do("POST", "/v1/chat/completions", limitRequest, bearer(key.Key)...), http.StatusForbidden)

	// Another budget is another budget: its period starts now.
	other := g.newBudget(map[string]any{"max_budget": 10})
	moved := expect(t, g.adminDo("PATCH", "/v1/users/uma", map[string]any{"budget_id": other}), http.StatusOK).Map(t)
	if moved["spend"] != 0.0 {
		t.Fatalf("spend on a newly assigned budget = %v, want 0", moved["spend"])
	}
}
