package integration

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Worst case of a budget test request: the prompt is bounded by the
// body's bytes (no tokenizer makes more tokens than bytes) and max_tokens
// is 10; the mock then reports 11 prompt and 7 completion tokens.
const (
	budgetRequest   = `{"model":"mock:ok","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	budgetInPrice   = 1_000_000.0                  // $1 per prompt token
	budgetOutPrice  = 10_000_000.0                 // $10 per completion token
	reservedCost    = len(budgetRequest)*1 + 10*10 // held while a request is in flight
	actualCost      = 11*1 + 7*10                  // $81 charged when it settles
	allowedRequests = 10
)

func startBudgetGateway(t *testing.T) *inferenceGateway {
	t.Helper()
	mock := newMockUpstream(t)
	g := startGateway(t, gatewayConfig{Block: fmt.Sprintf(`provider mock {
			base_url %s
		}
		price mock:ok %v %v
		price mock:free 0 0
		price mock:err-500 %v %v`, mock.BaseURL(), budgetInPrice, budgetOutPrice, budgetInPrice, budgetOutPrice)})
	return &inferenceGateway{gateway: g, mock: mock}
}

func (ig *inferenceGateway) newKey(t *testing.T, body map[string]any) (id, secret string) {
	t.Helper()
	var k struct{ ID, Key string }
	expect(t, ig.adminDo("POST", "/v1/keys", body), 200).JSON(t, &k)
	return k.ID, k.Key
}

// hammer sends n concurrent budget requests, spread over the keys, and
// returns how many succeeded; every refusal must be a 403 with one of the
// two budget messages of who.
func hammer(t *testing.T, ig *inferenceGateway, n int, who string, keys ...string) int {
	t.Helper()
	return concurrently(n, func(i int) *response {
		return ig.do("POST", "/v1/chat/completions", budgetRequest, "Authorization", "Bearer "+keys[i%len(keys)])
	}, func(_ int, r *response) {
		if r.Status != 403 {
			t.Errorf("status %d: %s", r.Status, r.Body)
			return
		}
		m := r.Map(t)
		// The contract's message, then the numbers (left, needed, reset).
		msg, _ := m["detail"].(string)
		if !strings.HasPrefix(msg, who+" has exceeded budget limit: $") && !strings.HasPrefix(msg, who+" has insufficient budget for this request: $") {
			t.Errorf("refusal message %q", m["detail"])
		}
	})
}

// concurrently makes n requests at once (send makes the i-th) and returns
// how many were answered 200; every other answer goes to other, with i.
func concurrently(n int, send func(i int) *response, other func(i int, r *response)) int {
	var mu sync.Mutex
	successes := 0
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := send(i)
			if r.Status != 200 {
				other(i, r)
				return
			}
			mu.Lock()
			successes++
			mu.Unlock()
		})
	}
	wg.Wait()
	return successes
}

func TestConcurrentRequestsNeverOverspendUserBudget(t *testing.T) {
	t.Parallel()
	ig := startBudgetGateway(t)
	maxBudget := float64(allowedRequests * actualCost)
	key := ig.userOnBudget(t, "carol", maxBudget, nil)

	successes := hammer(t, ig, 8*allowedRequests, "User 'carol'", key)
	spend := ig.spend(t, "/v1/users/carol")
	if successes > allowedRequests || spend > maxBudget || spend != float64(successes*actualCost) {
		t.Fatalf("%d successes, spend %v; budget %v allows %d", successes, spend, maxBudget, allowedRequests)
	}
	if successes == 0 {
		t.Fatal("no request succeeded")
	}
	assertSpendIsSumOfRecords(t, ig, "user_id=carol", spend)
}

func TestConcurrentRequestsNeverOverspendKeyBudget(t *testing.T) {
	t.Parallel()
	ig := startBudgetGateway(t)
	maxBudget := float64(allowedRequests * actualCost)
	expect(t, ig.adminDo("POST", "/v1/users", map[string]any{"user_id": "dave"}), 200)
	id, key := ig.newKey(t, map[string]any{"user_id": "dave", "max_budget": maxBudget})

	successes := hammer(t, ig, 8*allowedRequests, "API key '"+id+"'", key)
	spend := ig.spend(t, "/v1/keys/"+id)
	if successes > allowedRequests || spend > maxBudget || spend != float64(successes*actualCost) || successes == 0 {
		t.Fatalf("%d successes, key spend %v; budget %v allows %d", successes, spend, maxBudget, allowedRequests)
	}
	assertSpendIsSumOfRecords(t, ig, "api_key_id="+id, spend)
}

func TestTwoKeysOfOneUserShareTheUserBudget(t *testing.T) {
	t.Parallel()
	ig := startBudgetGateway(t)
	maxBudget := float64(allowedRequests * actualCost)
	k1 := ig.userOnBudget(t, "erin", maxBudget, nil)
	_, k2 := ig.newKey(t, map[string]any{"user_id": "erin"})

	successes := hammer(t, ig, 8*allowedRequests, "User 'erin'", k1, k2)
	spend := ig.spend(t, "/v1/users/erin")
	if successes > allowedRequests || spend > maxBudget || successes == 0 {
		t.Fatalf("%d successes, spend %v; budget %v allows %d", successes, spend, maxBudget, allowedRequests)
	}
	assertSpendIsSumOfRecords(t, ig, "user_id=erin", spend)
}

func assertSpendIsSumOfRecords(t *testing.T, ig *inferenceGateway, query string, spend float64) {
	t.Helper()
	var sum float64
	for _, r := range ig.usage(t, query+"&limit=1000") {
		sum += r.Cost
	}
	if math.Abs(sum-spend) > 1e-9 {
		t.Fatalf("spend %v but records sum to %v", spend, sum)
	}
}

func TestBudgetRules(t *testing.T) {
	t.Parallel()
	ig := startBudgetGateway(t)
	chat := func(key, model string) *response {
		return ig.do("POST", "/v1/chat/completions",
			`{"model":"`+model+`","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+key)
	}
	var zero struct {
		BudgetID string `json:"budget_id"`
	}
	expect(t, ig.adminDo("POST", "/v1/budgets", map[string]any{"max_budget": 0}), 200).JSON(t, &zero)
	expect(t, ig.adminDo("POST", "/v1/users", map[string]any{"user_id": "frank", "budget_id": zero.BudgetID}), 200)
	_, key := ig.newKey(t, map[string]any{"user_id": "frank"})

	// max_budget 0 blocks every paid model, but a model priced at zero is
	// always allowed, and an unpriced model is refused to a user with a budget.
	expectError(t, chat(key, "mock:ok"), 403, "User 'frank' has exceeded budget limit: $0 spent of $0; this budget does not reset")
	expect(t, chat(key, "mock:free"), 200)
	expectError(t, chat(key, "mock:no-usage"), 403, "No price is configured for model 'mock:no-usage'; it cannot be billed to the budget of User 'frank'")

	// Settlement: one request's reservation does not fit twice in the
	// budget, but its real cost ($81) leaves room for the next at once.
	var b struct {
		BudgetID string `json:"budget_id"`
	}
	expect(t, ig.adminDo("POST", "/v1/budgets", map[string]any{"max_budget": actualCost + reservedCost + 1}), 200).JSON(t, &b)
	expect(t, ig.adminDo("POST", "/v1/users", map[string]any{"user_id": "gina", "budget_id": b.BudgetID}), 200)
	_, gk := ig.newKey(t, map[string]any{"user_id": "gina"})
	expect(t, chat(gk, "mock:ok"), 200)
	expect(t, chat(gk, "mock:ok"), 200) // 81 + reservation ≤ budget < 2 × reservation
	if spend := ig.spend(t, "/v1/users/gina"); spend != 2*actualCost {
		t.Fatalf("spend = %v, want %v", spend, 2*actualCost)
	}
	expectError(t, chat(gk, "mock:ok"), 403, fmt.Sprintf("User 'gina' has insufficient budget for this request: $%d left, this request may cost up to $%d; this budget does not reset", reservedCost+1-actualCost, reservedCost))
	var history []struct {
		PeriodStart string  `json:"period_start"`
		PeriodEnd   *string `json:"period_end"`
		Spend       float64 `json:"spend"`
	}
	expect(t, ig.adminDo("GET", "/v1/users/gina/budget-history", nil), 200).JSON(t, &history)
	if len(history) != 1 || history[0].Spend != 2*actualCost || history[0].PeriodEnd != nil || history[0].PeriodStart == "" {
		t.Fatalf("budget history = %+v", history)
	}
	expectError(t, ig.adminDo("GET", "/v1/users/nobody/budget-history", nil), 404, "User with id 'nobody' not found")

	// An upstream failure frees the whole reservation and charges nothing.
	expect(t, ig.adminDo("POST", "/v1/users", map[string]any{"user_id": "hal", "budget_id": b.BudgetID}), 200)
	_, hk := ig.newKey(t, map[string]any{"user_id": "hal"})
	for range 3 {
		expect(t, chat(hk, "mock:err-500"), 502)
	}
	if spend := ig.spend(t, "/v1/users/hal"); spend != 0 {
		t.Fatalf("failed calls charged %v", spend)
	}
	expect(t, chat(hk, "mock:ok"), 200)
}

func TestRateLimitsPerKey(t *testing.T) {
	t.Parallel()
	ig := startBudgetGateway(t)
	expect(t, ig.adminDo("POST", "/v1/users", map[string]any{"user_id": "ivy"}), 200)
	_, key := ig.newKey(t, map[string]any{"user_id": "ivy", "rpm_limit": 2})
	for i := range 2 {
		r := expect(t, ig.do("POST", "/v1/chat/completions", budgetRequest, "Authorization", "Bearer "+key), 200)
		if r.Header.Get("X-RateLimit-Limit") != "2" || r.Header.Get("X-RateLimit-Remaining") != strconv.Itoa(1-i) || r.Header.Get("X-RateLimit-Reset") == "" {
			t.Fatalf("rate-limit headers: %v", r.Header)
		}
	}
	r := ig.do("POST", "/v1/chat/completions", budgetRequest, "Authorization", "Bearer "+key)
	expectError(t, r, 429, "Rate limit exceeded")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After = %q", r.Header.Get("Retry-After"))
	}
	// A rate-limited request reaches no upstream and writes no record.
	if n := len(ig.usage(t, "user_id=ivy")); n != 2 {
		t.Fatalf("%d records, want 2", n)
	}
}

// Issue #12.5: a budget refusal says when the period resets (and, above,
// what is left and what the request needed).
func TestBudgetRefusalSaysWhenItResets(t *testing.T) {
	t.Parallel()
	ig := startBudgetGateway(t)
	var b struct {
		BudgetID string `json:"budget_id"`
	}
	expect(t, ig.adminDo("POST", "/v1/budgets", map[string]any{"max_budget": 0, "budget_duration_sec": 3600}), 200).JSON(t, &b)
	u := expect(t, ig.adminDo("POST", "/v1/users", map[string]any{"user_id": "rita", "budget_id": b.BudgetID}), 200).Map(t)
	_, key := ig.newKey(t, map[string]any{"user_id": "rita"})
	r := ig.do("POST", "/v1/chat/completions", budgetRequest, "Authorization", "Bearer "+key)
	expect(t, r, 403)
	msg, _ := r.Map(t)["detail"].(string)
	head, when, ok := strings.Cut(msg, "; resets at ")
	if !ok || head != "User 'rita' has exceeded budget limit: $0 spent of $0" {
		t.Fatalf("refusal = %q", msg)
	}
	if got, want := apiTimeOf(t, when), apiTimeOf(t, u["next_budget_reset_at"]); !got.Equal(want) {
		t.Fatalf("refusal says resets at %v, the user's next_budget_reset_at is %v", got, want)
	}
}
