package llmgateway

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// newTestMeter is the gateway's meter over an in-memory store.
func newTestMeter(t *testing.T) (*metering.Memory, *storage.Store) {
	t.Helper()
	store, err := storage.Open(storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return metering.NewMemory(storeSpend{store}), store
}

func ptrTo[T any](v T) *T { return &v }

// usd is a dollar amount as Money, for readable test values.
func usd(dollars float64) storage.Money { return storage.Dollars(dollars) }

func limitOf(acct metering.Account, dollars float64) metering.Budget {
	return metering.Budget{Account: acct, Max: ptrTo(usd(dollars))}
}

// admitBudgets admits cost against budgets and maps a refusal as the
// handlers do.
func admitBudgets(m metering.Meter, cost storage.Money, budgets ...metering.Budget) (*metering.Hold, error) {
	h, err := m.Admit(context.Background(), metering.Request{Budgets: budgets, Cost: cost})
	var r *metering.BudgetRefusal
	if errors.As(err, &r) {
		return nil, budgetRefused(r, &call{provider: "p", model: "m"})
	}
	return h, err
}

func forbiddenMessage(t *testing.T, err error) string {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("error = %v, want a 403", err)
	}
	return ae.Message
}

// The refusals' messages, byte for byte as the contract has them.
func TestBudgetRefusalMessages(t *testing.T) {
	t.Parallel()
	m, _ := newTestMeter(t)
	user := limitOf(userAccount("u"), 1.0)
	for range 4 {
		if _, err := admitBudgets(m, usd(0.25), user); err != nil {
			t.Fatal(err)
		}
	}
	_, err := admitBudgets(m, usd(0.25), user)
	if msg := forbiddenMessage(t, err); msg != "User 'u' has insufficient budget for this request: $0 left, this request may cost up to $0.25; this budget does not reset" {
		t.Fatalf("message = %q", msg)
	}

	key := limitOf(keyAccount("k"), 1.0)
	h, err := admitBudgets(m, usd(1), limitOf(userAccount("v"), 10), key)
	if err != nil {
		t.Fatal(err)
	}
	m.Settle(h, usd(1), 0)
	_, err = admitBudgets(m, usd(0.5), limitOf(userAccount("v"), 10), key)
	if msg := forbiddenMessage(t, err); msg != "API key 'k' has exceeded budget limit: $1 spent of $1; this budget does not reset" {
		t.Fatalf("message = %q", msg)
	}
	if msg := forbiddenMessage(t, func() error { _, err := admitBudgets(m, usd(0.001), limitOf(userAccount("z"), 0)); return err }()); msg != "User 'z' has exceeded budget limit: $0 spent of $0; this budget does not reset" {
		t.Fatalf("max_budget 0: %q", msg)
	}

	_, err = m.Admit(t.Context(), metering.Request{Unpriced: true, Budgets: []metering.Budget{{Account: userAccount("w")}, limitOf(keyAccount("k2"), 1)}})
	var r *metering.BudgetRefusal
	if !errors.As(err, &r) {
		t.Fatalf("unpriced: %v", err)
	}
	ae := budgetRefused(r, &call{provider: "openai", model: "gpt-x"})
	if ae.Status != 403 || ae.Code != "model_not_priced" || ae.Message != "No price is configured for model 'openai:gpt-x'; it cannot be billed to the budget of API key 'k2'" {
		t.Fatalf("unpriced: %+v", ae)
	}
}

// A refusal says what is left, what the request needed and when the
// period resets (issue #12.5).
func TestBudgetRefusalGivesTheNumbers(t *testing.T) {
	t.Parallel()
	m, _ := newTestMeter(t)
	resets := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	user := limitOf(userAccount("user-123"), 0.01)
	user.Resets = &resets
	res, err := admitBudgets(m, usd(0.0096), user)
	if err != nil {
		t.Fatal(err)
	}
	m.Settle(res, usd(0.0096), 0)
	held, err := admitBudgets(m, usd(0.0001), user) // in flight: not left for others
	if err != nil {
		t.Fatal(err)
	}
	_, err = admitBudgets(m, usd(0.0031), user)
	want := "User 'user-123' has insufficient budget for this request: $0.0003 left, this request may cost up to $0.0031; resets at 2026-12-02T00:00:00Z"
	if msg := forbiddenMessage(t, err); msg != want {
		t.Fatalf("message = %q\nwant      %q", msg, want)
	}
	m.Settle(held, usd(0.0004), 0)
	_, err = admitBudgets(m, usd(0.0001), user)
	want = "User 'user-123' has exceeded budget limit: $0.01 spent of $0.01; resets at 2026-12-02T00:00:00Z"
	if msg := forbiddenMessage(t, err); msg != want {
		t.Fatalf("message = %q\nwant      %q", msg, want)
	}
}

func TestRateRefusalIsThe429WithRetryAfter(t *testing.T) {
	t.Parallel()
	m, _ := newTestMeter(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rates := []metering.Rate{{Account: userAccount("u"), RPM: 3}}
	for i := range 3 {
		h, err := m.Admit(t.Context(), metering.Request{Now: now.Add(time.Duration(i) * time.Second), Rates: rates, Tokens: 1})
		if err != nil {
			t.Fatalf("request %d refused: %v", i, err)
		}
		w := httptest.NewRecorder()
		setRateHeaders(w.Header(), h.RateStatus)
		if w.Header().Get("X-RateLimit-Limit") != "3" || w.Header().Get("X-RateLimit-Remaining") != string(rune('2'-i)) ||
			w.Header().Get("X-RateLimit-Reset") != "1767225660" {
			t.Fatalf("headers %d = %v", i, w.Header())
		}
	}
	_, err := m.Admit(t.Context(), metering.Request{Now: now.Add(10 * time.Second), Rates: rates, Tokens: 1})
	var r *metering.RateRefusal
	if !errors.As(err, &r) {
		t.Fatalf("4th request: %v", err)
	}
	ae := rateLimited(r)
	if ae.Status != 429 || ae.Message != "Rate limit exceeded" || ae.Header.Get("Retry-After") != "50" {
		t.Fatalf("4th request: %v (Retry-After %q)", ae, ae.Header.Get("Retry-After"))
	}
}

// The meter over the store: periods reset on schedule, each period's spend
// is recorded where the hold says, and a restart reads it back.
func TestLedgerResetsOnSchedule(t *testing.T) {
	t.Parallel()
	m, store := newTestMeter(t)
	anchor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sched := metering.Every(anchor, time.Hour)
	acct := userAccount("u")
	lim := func(now time.Time) metering.Budget {
		b := limitOf(acct, 1.0)
		b.Period = sched.Start(now)
		return b
	}
	spend := func(now time.Time, cost storage.Money) {
		t.Helper()
		res, err := admitBudgets(m, cost, lim(now))
		if err != nil {
			t.Fatalf("at %v: %v", now, err)
		}
		// The store holds what settled requests were charged, per period.
		period := res.Period(metering.OwnerUser)
		m.Settle(res, cost, 0)
		if err := store.RecordUsage(t.Context(), &storage.UsageRecord{
			ID: now.String(), UserID: "u", Timestamp: now, Cost: cost, UserPeriod: period,
		}); err != nil {
			t.Fatal(err)
		}
	}
	spend(anchor.Add(10*time.Minute), usd(1))
	if _, err := admitBudgets(m, usd(0.1), lim(anchor.Add(59*time.Minute))); err == nil {
		t.Fatal("spent budget allowed before the reset")
	}
	// At the boundary the period resets, whenever the next request comes.
	spend(anchor.Add(time.Hour), usd(0.5))
	got, _ := m.Spent(t.Context(), acct, sched.Start(anchor.Add(time.Hour+time.Minute)))
	if got != usd(0.5) {
		t.Fatalf("spend after the reset = %v, want 0.5", got)
	}
	// Several missed periods: the schedule stays on anchor + k × duration.
	later := anchor.Add(5*time.Hour + 30*time.Minute)
	if start := sched.Start(later); !start.Equal(anchor.Add(5 * time.Hour)) {
		t.Fatalf("period start after missed periods = %v", start)
	}
	spend(later, usd(0.25))
	// The reset log: every period with what it spent.
	periods, err := store.ListSpendPeriods(storage.SpendOfUser, "u", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.SpendPeriod{
		{Start: anchor.Add(5 * time.Hour), Spend: usd(0.25)},
		{Start: anchor.Add(time.Hour), Spend: usd(0.5)},
		{Start: anchor, Spend: usd(1)},
	}
	if len(periods) != len(want) {
		t.Fatalf("periods = %+v", periods)
	}
	for i := range want {
		if !periods[i].Start.Equal(want[i].Start) || periods[i].Spend != want[i].Spend {
			t.Fatalf("period %d = %+v, want %+v", i, periods[i], want[i])
		}
	}
	// A new meter (a restart) reads the current period's spend back.
	fresh := metering.NewMemory(storeSpend{store})
	if got, _ := fresh.Spent(t.Context(), acct, anchor.Add(5*time.Hour)); got != usd(0.25) {
		t.Fatalf("spend after restart = %v, want 0.25", got)
	}
}

// The store's durations in seconds give the schedule metering computes.
func TestScheduleOfStoredDurations(t *testing.T) {
	t.Parallel()
	day := int64(24 * 3600)
	week, month := 7*day, 30*day
	anchor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(days float64) time.Time { return anchor.Add(time.Duration(days * 24 * float64(time.Hour))) }
	changes := []storage.DurationChange{{At: at(2), PreviousSec: &month}, {At: at(5), PreviousSec: &week}, {At: at(6)}, {At: at(7), PreviousSec: &day}, {At: at(8), PreviousSec: &week}}
	got := scheduleOf(anchor, changes, &day)
	want := metering.ScheduleOf(anchor, []metering.DurationChange{
		{At: at(2), Previous: 30 * 24 * time.Hour}, {At: at(5), Previous: 7 * 24 * time.Hour}, {At: at(6)},
		{At: at(7), Previous: 24 * time.Hour}, {At: at(8), Previous: 7 * 24 * time.Hour},
	}, 24*time.Hour)
	if got != want {
		t.Fatalf("schedule = %+v, want %+v", got, want)
	}
	if s := scheduleOf(anchor, nil, nil); s != metering.Every(anchor, 0) {
		t.Fatalf("no duration: %+v", s)
	}
}
