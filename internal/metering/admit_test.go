package metering

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/money"
)

func rateRefusal(t *testing.T, err error) *RateRefusal {
	t.Helper()
	var r *RateRefusal
	if !errors.As(err, &r) {
		t.Fatalf("error = %v, want a rate refusal", err)
	}
	return r
}

func TestRateLimiterSlidingWindow(t *testing.T) {
	t.Parallel()
	m := NewMemory(&spendBook{})
	rates := []Rate{{Account: userU, RPM: 3}}
	admit := func(at time.Duration) (*Hold, error) {
		return m.Admit(t.Context(), Request{Now: epoch.Add(at), Rates: rates, Tokens: 1})
	}
	for i := range 3 {
		h, err := admit(time.Duration(i) * time.Second)
		if err != nil {
			t.Fatalf("request %d refused: %v", i, err)
		}
		if h.RateStatus.Limit != 3 || h.RateStatus.Remaining != int64(2-i) || !h.RateStatus.Reset.Equal(epoch.Add(RateWindow)) {
			t.Fatalf("rate status %d = %+v", i, h.RateStatus)
		}
	}
	_, err := admit(10 * time.Second)
	if r := rateRefusal(t, err); r.RetryAfterSeconds() != 50 {
		t.Fatalf("4th request: Retry-After %d, want 50", r.RetryAfterSeconds())
	}
	// The first request leaves the window 60 s after it was made.
	if _, err := admit(60*time.Second + time.Millisecond); err != nil {
		t.Fatalf("after the window slid: %v", err)
	}
}

func TestRetryAfterIsWholeSecondsWithinTheWindow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		wait time.Duration
		want int64
	}{{0, 1}, {time.Millisecond, 1}, {1500 * time.Millisecond, 2}, {time.Hour, 60}} {
		if got := (&RateRefusal{RetryAfter: tt.wait}).RetryAfterSeconds(); got != tt.want {
			t.Errorf("RetryAfter %v: %d seconds, want %d", tt.wait, got, tt.want)
		}
	}
}

func TestRateLimiterTokensPerMinute(t *testing.T) {
	t.Parallel()
	m := NewMemory(&spendBook{})
	rates := []Rate{{Account: keyK, TPM: 1000}}
	admit := func(at time.Duration, tokens int64) (*Hold, error) {
		return m.Admit(t.Context(), Request{Now: epoch.Add(at), Rates: rates, Tokens: tokens})
	}
	h, err := admit(0, 900) // reserved as the worst case
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admit(time.Second, 200); err == nil {
		t.Fatal("tokens reserved by a request in flight not counted")
	}
	m.Settle(h, 0, 100) // the request used only 100 tokens
	if _, err := admit(2*time.Second, 200); err != nil {
		t.Fatalf("settled tokens not freed: %v", err)
	}
}

// A request refused by a rate limit holds no budget.
func TestRateRefusalHoldsNoBudget(t *testing.T) {
	t.Parallel()
	m := NewMemory(&spendBook{})
	req := Request{Now: epoch, Budgets: []Budget{limited(userU, 1)}, Cost: usd(0.5), Rates: []Rate{{Account: keyK, RPM: 1}}}
	if _, err := m.Admit(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	_, err := m.Admit(t.Context(), req)
	rateRefusal(t, err)
	req.Rates = nil
	if _, err := m.Admit(t.Context(), req); err != nil {
		t.Fatalf("the rate-limited request held budget: %v", err)
	}
}

// A request a budget refuses was admitted by the rate limits first: it
// counts in their windows, with its token estimate, as it always has.
func TestBudgetRefusalStaysInTheRateWindows(t *testing.T) {
	t.Parallel()
	m := NewMemory(&spendBook{})
	rates := []Rate{{Account: keyK, RPM: 3, TPM: 1000}}
	_, err := m.Admit(t.Context(), Request{Now: epoch, Budgets: []Budget{limited(userU, 0)}, Cost: usd(0.1), Rates: rates, Tokens: 600})
	r := budgetRefusal(t, err)
	if r.RateStatus.Limit != 3 || r.RateStatus.Remaining != 2 {
		t.Fatalf("refusal's rate status = %+v, want the window with the refused request", r.RateStatus)
	}
	if _, err := m.Admit(t.Context(), Request{Now: epoch, Budgets: []Budget{{Account: userU}}, Rates: rates, Tokens: 500}); err == nil {
		t.Fatal("the refused request's token estimate left the window")
	}
	h, err := m.Admit(t.Context(), Request{Now: epoch, Budgets: []Budget{{Account: userU}}, Rates: rates, Tokens: 400})
	if err != nil || h.RateStatus.Remaining != 1 {
		t.Fatalf("admitted %+v, %v; want 1 request left", h, err)
	}
}

// Releasing a hold (cost 0, tokens 0) frees its budget and its token
// estimate; the request still counts as one against requests per minute.
func TestReleaseFreesTheTokenEstimate(t *testing.T) {
	t.Parallel()
	m := NewMemory(&spendBook{})
	req := Request{Now: epoch, Budgets: []Budget{limited(userU, 1)}, Cost: usd(1), Rates: []Rate{{Account: keyK, RPM: 2, TPM: 1000}}, Tokens: 1000}
	h, err := m.Admit(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	m.Settle(h, 0, 0)
	h, err = m.Admit(t.Context(), req)
	if err != nil {
		t.Fatalf("released request still held budget or tokens: %v", err)
	}
	if h.RateStatus.Remaining != 0 {
		t.Fatalf("remaining = %d, want 0: the released request still counts", h.RateStatus.Remaining)
	}
}

// Concurrent admissions against one user budget, two key budgets and rate
// limits never spend more than the budget, and every hold is charged in
// its period.
func TestConcurrentAdmitsNeverOverspend(t *testing.T) {
	t.Parallel()
	book := &spendBook{}
	m := NewMemory(book)
	user := limited(userU, 5.0)
	keys := []Account{{OwnerKey, "a"}, {OwnerKey, "b"}}
	var successes, rateRefused, budgetRefused atomic.Int64
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Go(func() {
			key := keys[i%2]
			h, err := m.Admit(t.Context(), Request{
				Now:     epoch,
				Budgets: []Budget{user, {Account: key}},
				Cost:    usd(0.5),
				Rates:   []Rate{{Account: userU, RPM: 300}, {Account: key, RPM: 1000, TPM: 1_000_000}},
				Tokens:  100,
			})
			var br *BudgetRefusal
			var rr *RateRefusal
			switch {
			case errors.As(err, &br):
				budgetRefused.Add(1)
				return
			case errors.As(err, &rr):
				rateRefused.Add(1)
				return
			case err != nil:
				t.Error(err)
				return
			}
			cost := usd(0.5)
			if i%3 == 0 {
				cost = 0 // a failed call: released, its money free for another
			}
			m.Settle(h, cost, 50)
			if cost > 0 {
				successes.Add(1)
			}
		})
	}
	wg.Wait()
	spent, err := m.Spent(t.Context(), userU, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if successes.Load() != 10 || spent != usd(5) {
		t.Fatalf("charged %d, spent %v; want 10 and 5", successes.Load(), spent)
	}
	if rateRefused.Load() != 100 {
		t.Fatalf("%d rate refusals, want 100 (the user's 300 per minute)", rateRefused.Load())
	}
	var keySpend money.Money
	for _, k := range keys {
		s, _ := m.Spent(t.Context(), k, time.Time{})
		keySpend += s
	}
	if keySpend != spent {
		t.Fatalf("keys spent %v, the user %v", keySpend, spent)
	}
}

// BenchmarkAdmitAndSettle measures one request's admission against a user
// and a key budget and two rate limits, and its settlement. The request's
// budgets and rates are built in place, as the gateway does in its call.
func BenchmarkAdmitAndSettle(b *testing.B) {
	var m Meter = NewMemory(&spendBook{})
	maxBudget := money.Dollars(1e9)
	budgets := []Budget{{Account: userU, Max: &maxBudget}, {Account: keyK, Max: &maxBudget}}
	rates := []Rate{{Account: userU, RPM: 1e12}, {Account: keyK, RPM: 1e12, TPM: 1e15}}
	now := epoch
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second) // windows stay at their steady size
		req := Request{Now: now, Budgets: budgets, Cost: money.Dollars(0.001), Rates: rates, Tokens: 100}
		h, err := m.Admit(b.Context(), req)
		if err != nil {
			b.Fatal(err)
		}
		m.Settle(h, money.Dollars(0.0005), 50)
	}
}
