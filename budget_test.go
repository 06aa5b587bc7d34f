package llmgateway

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

func newTestLedger(t *testing.T) (*ledger, *storage.Store) {
	t.Helper()
	store, err := storage.Open(storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return newLedger(store), store
}

func ptrTo[T any](v T) *T { return &v }

// usd is a dollar amount as Money, for readable test values.
func usd(dollars float64) storage.Money { return storage.Dollars(dollars) }

func forbiddenMessage(t *testing.T, err error) string {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("error = %v, want a 403", err)
	}
	return ae.Message
}

func TestBudgetPeriodSchedule(t *testing.T) {
	t.Parallel()
	anchor := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	p := budgetPeriod{anchor: anchor, duration: day}
	tests := []struct {
		name      string
		now       time.Time
		start     time.Time
		nextReset time.Time
	}{
		{"at the anchor", anchor, anchor, anchor.Add(day)},
		{"just before the first reset", anchor.Add(day - time.Nanosecond), anchor, anchor.Add(day)},
		{"at the first reset", anchor.Add(day), anchor.Add(day), anchor.Add(2 * day)},
		{"just after the first reset", anchor.Add(day + time.Second), anchor.Add(day), anchor.Add(2 * day)},
		{"several missed periods", anchor.Add(10*day + 5*time.Hour), anchor.Add(10 * day), anchor.Add(11 * day)},
		{"before the anchor", anchor.Add(-time.Hour), anchor, anchor.Add(day)},
	}
	for _, tt := range tests {
		if got := p.start(tt.now); !got.Equal(tt.start) {
			t.Errorf("%s: start = %v, want %v", tt.name, got, tt.start)
		}
		if got := p.next(tt.now); got == nil || !got.Equal(tt.nextReset) {
			t.Errorf("%s: next = %v, want %v", tt.name, got, tt.nextReset)
		}
	}
	forever := budgetPeriod{anchor: anchor}
	if got := forever.start(anchor.Add(1000 * day)); !got.Equal(anchor) || forever.next(anchor) != nil {
		t.Errorf("a budget without duration never resets: start %v next %v", got, forever.next(anchor))
	}
}

func TestLedgerReservesUpToTheLimit(t *testing.T) {
	t.Parallel()
	l, _ := newTestLedger(t)
	user := limit{acct: account{storage.SpendOfUser, "u"}, max: ptrTo(usd(1.0))}
	var held []*reservation
	for range 4 {
		res, err := l.reserve([]limit{user}, usd(0.25))
		if err != nil {
			t.Fatalf("reservation within the budget refused: %v", err)
		}
		held = append(held, res)
	}
	_, err := l.reserve([]limit{user}, usd(0.25))
	if msg := forbiddenMessage(t, err); msg != "User 'u' has insufficient budget for this request: $0 left, this request may cost up to $0.25; this budget does not reset" {
		t.Fatalf("message = %q", msg)
	}
	// Settling below the reservation frees the difference at once.
	l.settle(held[0], usd(0.05))
	if _, err := l.reserve([]limit{user}, usd(0.2)); err != nil {
		t.Fatalf("freed money not available: %v", err)
	}
	// A failure (cost 0) frees the whole reservation.
	l.settle(held[1], 0)
	if _, err := l.reserve([]limit{user}, usd(0.25)); err != nil {
		t.Fatalf("released reservation not available: %v", err)
	}
	// Settling twice does nothing.
	l.settle(held[1], 0)
	if _, err := l.reserve([]limit{user}, usd(0.01)); err == nil {
		t.Fatal("double settlement freed money twice")
	}
}

func TestLedgerExceededAndAllOrNothing(t *testing.T) {
	t.Parallel()
	l, _ := newTestLedger(t)
	user := limit{acct: account{storage.SpendOfUser, "u"}, max: ptrTo(usd(10.0))}
	key := limit{acct: account{storage.SpendOfKey, "k"}, max: ptrTo(usd(1.0))}
	res, err := l.reserve([]limit{user, key}, usd(1))
	if err != nil {
		t.Fatal(err)
	}
	l.settle(res, usd(1))
	_, err = l.reserve([]limit{user, key}, usd(0.5))
	if msg := forbiddenMessage(t, err); msg != "API key 'k' has exceeded budget limit: $1 spent of $1; this budget does not reset" {
		t.Fatalf("message = %q", msg)
	}
	// The refused request left nothing reserved against the user.
	if _, err := l.reserve([]limit{user}, usd(9)); err != nil {
		t.Fatalf("user budget held by a refused request: %v", err)
	}
	zero := limit{acct: account{storage.SpendOfUser, "z"}, max: ptrTo(usd(0.0))}
	if msg := forbiddenMessage(t, func() error { _, err := l.reserve([]limit{zero}, usd(0.001)); return err }()); msg != "User 'z' has exceeded budget limit: $0 spent of $0; this budget does not reset" {
		t.Fatalf("max_budget 0: %q", msg)
	}
}

func TestLedgerNeverOverspendsUnderConcurrency(t *testing.T) {
	t.Parallel()
	l, _ := newTestLedger(t)
	user := limit{acct: account{storage.SpendOfUser, "u"}, max: ptrTo(usd(5.0))}
	keys := []limit{
		{acct: account{storage.SpendOfKey, "a"}},
		{acct: account{storage.SpendOfKey, "b"}},
	}
	var mu sync.Mutex
	successes := 0
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Go(func() {
			res, err := l.reserve([]limit{user, keys[i%2]}, usd(0.5))
			if err != nil {
				return
			}
			l.settle(res, usd(0.5))
			mu.Lock()
			successes++
			mu.Unlock()
		})
	}
	wg.Wait()
	spent, err := l.spent(user.acct, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if successes != 10 || spent != usd(5) {
		t.Fatalf("successes = %d, spent = %v; want 10 and 5", successes, spent)
	}
}

func TestLedgerResetsOnSchedule(t *testing.T) {
	t.Parallel()
	l, store := newTestLedger(t)
	anchor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sched := budgetPeriod{anchor: anchor, duration: time.Hour}
	acct := account{storage.SpendOfUser, "u"}
	lim := func(now time.Time) []limit {
		return []limit{{acct: acct, max: ptrTo(usd(1.0)), period: sched.start(now)}}
	}
	spend := func(now time.Time, cost storage.Money) {
		t.Helper()
		res, err := l.reserve(lim(now), cost)
		if err != nil {
			t.Fatalf("at %v: %v", now, err)
		}
		// The store holds what settled requests were charged, per period.
		period := res.periodOf(storage.SpendOfUser)
		l.settle(res, cost)
		if err := store.RecordUsage(t.Context(), &storage.UsageRecord{
			ID: now.String(), UserID: "u", Timestamp: now, Cost: cost, UserPeriod: period,
		}); err != nil {
			t.Fatal(err)
		}
	}
	spend(anchor.Add(10*time.Minute), usd(1))
	if _, err := l.reserve(lim(anchor.Add(59*time.Minute)), usd(0.1)); err == nil {
		t.Fatal("spent budget allowed before the reset")
	}
	// At the boundary the period resets, whenever the next request comes.
	spend(anchor.Add(time.Hour), usd(0.5))
	got, _ := l.spent(acct, sched.start(anchor.Add(time.Hour+time.Minute)))
	if got != usd(0.5) {
		t.Fatalf("spend after the reset = %v, want 0.5", got)
	}
	// Several missed periods: the schedule stays on anchor + k × duration.
	later := anchor.Add(5*time.Hour + 30*time.Minute)
	if start := sched.start(later); !start.Equal(anchor.Add(5 * time.Hour)) {
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
	// A new ledger (a restart) reads the current period's spend back.
	fresh := newLedger(store)
	if got, _ := fresh.spent(acct, anchor.Add(5*time.Hour)); got != usd(0.25) {
		t.Fatalf("spend after restart = %v, want 0.25", got)
	}
}

func TestRateLimiterSlidingWindow(t *testing.T) {
	t.Parallel()
	rl := newRateLimiter()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rules := []rateRule{{acct: account{storage.SpendOfUser, "u"}, rpm: 3}}
	for i := range 3 {
		ticket, err := rl.admit(now.Add(time.Duration(i)*time.Second), rules, 1)
		if err != nil {
			t.Fatalf("request %d refused: %v", i, err)
		}
		if ticket.limit != 3 || ticket.remaining != int64(2-i) {
			t.Fatalf("ticket %d = %+v", i, ticket)
		}
	}
	_, err := rl.admit(now.Add(10*time.Second), rules, 1)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.Message != "Rate limit exceeded" || ae.Header.Get("Retry-After") != "50" {
		t.Fatalf("4th request: %v (Retry-After %q)", err, ae.Header.Get("Retry-After"))
	}
	// The first request leaves the window 60 s after it was made.
	if _, err := rl.admit(now.Add(60*time.Second+time.Millisecond), rules, 1); err != nil {
		t.Fatalf("after the window slid: %v", err)
	}
}

func TestRateLimiterTokensPerMinute(t *testing.T) {
	t.Parallel()
	rl := newRateLimiter()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rules := []rateRule{{acct: account{storage.SpendOfKey, "k"}, tpm: 1000}}
	ticket, err := rl.admit(now, rules, 900) // reserved as the worst case
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rl.admit(now.Add(time.Second), rules, 200); err == nil {
		t.Fatal("tokens reserved by a request in flight not counted")
	}
	rl.settle(ticket, 100) // the request used only 100 tokens
	if _, err := rl.admit(now.Add(2*time.Second), rules, 200); err != nil {
		t.Fatalf("settled tokens not freed: %v", err)
	}
}

// A changed duration never changes spend: the period current at the change
// keeps its start and its end, and periods of the new length follow.
func TestScheduleKeepsTheCurrentPeriodWhenTheDurationChanges(t *testing.T) {
	t.Parallel()
	day := int64(24 * 3600)
	week, month := 7*day, 30*day
	anchor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(days float64) time.Time { return anchor.Add(time.Duration(days * 24 * float64(time.Hour))) }
	tests := []struct {
		name      string
		changes   []storage.DurationChange
		duration  *int64
		now       time.Time
		wantStart time.Time
		wantNext  *time.Time
	}{
		{"no change", nil, &month, at(40), at(30), ptrTo(at(60))},
		{"shorter: the current period runs to its old end", []storage.DurationChange{{At: at(15), PreviousSec: &month}}, &week, at(20), at(0), ptrTo(at(30))},
		{"shorter: weekly periods follow", []storage.DurationChange{{At: at(15), PreviousSec: &month}}, &week, at(38), at(37), ptrTo(at(44))},
		{"longer", []storage.DurationChange{{At: at(3), PreviousSec: &week}}, &month, at(10), at(7), ptrTo(at(37))},
		{"no duration before: one new duration after the change", []storage.DurationChange{{At: at(100)}}, &week, at(105), at(0), ptrTo(at(107))},
		{"no duration before: then weekly", []storage.DurationChange{{At: at(100)}}, &week, at(108), at(107), ptrTo(at(114))},
		{"two changes in one period: the last wins after it", []storage.DurationChange{{At: at(2), PreviousSec: &month}, {At: at(5), PreviousSec: &week}}, &day, at(31.5), at(31), ptrTo(at(32))},
		{"changes before the anchor do not apply", []storage.DurationChange{{At: at(-5), PreviousSec: &month}}, &week, at(8), at(7), ptrTo(at(14))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := scheduleOf(anchor, tt.changes, tt.duration)
			if got := p.start(tt.now); !got.Equal(tt.wantStart) {
				t.Errorf("start = %v, want %v", got, tt.wantStart)
			}
			if got := p.next(tt.now); (got == nil) != (tt.wantNext == nil) || (got != nil && !got.Equal(*tt.wantNext)) {
				t.Errorf("next = %v, want %v", got, tt.wantNext)
			}
		})
	}
}

// A refusal says what is left, what the request needed and when the
// period resets (issue #12.5).
func TestBudgetRefusalGivesTheNumbers(t *testing.T) {
	t.Parallel()
	l, _ := newTestLedger(t)
	resets := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	user := limit{acct: account{storage.SpendOfUser, "user-123"}, max: ptrTo(usd(0.01)), resets: &resets}
	res, err := l.reserve([]limit{user}, usd(0.0096))
	if err != nil {
		t.Fatal(err)
	}
	l.settle(res, usd(0.0096))
	held, err := l.reserve([]limit{user}, usd(0.0001)) // in flight: not left for others
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.reserve([]limit{user}, usd(0.0031))
	want := "User 'user-123' has insufficient budget for this request: $0.0003 left, this request may cost up to $0.0031; resets at 2026-12-02T00:00:00Z"
	if msg := forbiddenMessage(t, err); msg != want {
		t.Fatalf("message = %q\nwant      %q", msg, want)
	}
	l.settle(held, usd(0.0004))
	_, err = l.reserve([]limit{user}, usd(0.0001))
	want = "User 'user-123' has exceeded budget limit: $0.01 spent of $0.01; resets at 2026-12-02T00:00:00Z"
	if msg := forbiddenMessage(t, err); msg != want {
		t.Fatalf("message = %q\nwant      %q", msg, want)
	}
}
