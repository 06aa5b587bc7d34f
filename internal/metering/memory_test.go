package metering

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/money"
)

// spendBook is a SpendSource holding settled spend per account and period,
// as the store does.
type spendBook struct {
	mu    sync.Mutex
	spend map[Account]map[time.Time]money.Money
	err   error
	loads int
}

func (s *spendBook) Spend(_ context.Context, acct Account, period time.Time) (money.Money, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	if s.err != nil {
		return 0, s.err
	}
	return s.spend[acct][period.UTC()], nil
}

func (s *spendBook) add(acct Account, period time.Time, cost money.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spend == nil {
		s.spend = make(map[Account]map[time.Time]money.Money)
	}
	if s.spend[acct] == nil {
		s.spend[acct] = make(map[time.Time]money.Money)
	}
	s.spend[acct][period.UTC()] += cost
}

var (
	userU = Account{OwnerUser, "u"}
	keyK  = Account{OwnerKey, "k"}
	epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// usd is a dollar amount as Money, for readable test values.
func usd(dollars float64) money.Money { return money.Dollars(dollars) }

func limited(acct Account, dollars float64) Budget {
	return Budget{Account: acct, Max: ptrTo(usd(dollars))}
}

func reserve(m *Memory, cost money.Money, budgets ...Budget) (*Hold, error) {
	return m.Admit(context.Background(), Request{Now: epoch, Budgets: budgets, Cost: cost})
}

func budgetRefusal(t *testing.T, err error) *BudgetRefusal {
	t.Helper()
	var r *BudgetRefusal
	if !errors.As(err, &r) {
		t.Fatalf("error = %v, want a budget refusal", err)
	}
	return r
}

func TestLedgerReservesUpToTheLimit(t *testing.T) {
	t.Parallel()
	m := NewMemory(&spendBook{})
	user := limited(userU, 1.0)
	var held []*Hold
	for range 4 {
		h, err := reserve(m, usd(0.25), user)
		if err != nil {
			t.Fatalf("reservation within the budget refused: %v", err)
		}
		held = append(held, h)
	}
	_, err := reserve(m, usd(0.25), user)
	if r := budgetRefusal(t, err); *r != (BudgetRefusal{Reason: Insufficient, Account: userU, Max: usd(1), Left: 0, Cost: usd(0.25)}) {
		t.Fatalf("refusal = %+v", r)
	}
	// Settling below the reservation frees the difference at once.
	m.Settle(held[0], usd(0.05), 0)
	if _, err := reserve(m, usd(0.2), user); err != nil {
		t.Fatalf("freed money not available: %v", err)
	}
	// A failure (cost 0) frees the whole reservation.
	m.Settle(held[1], 0, 0)
	if _, err := reserve(m, usd(0.25), user); err != nil {
		t.Fatalf("released reservation not available: %v", err)
	}
	// Settling twice does nothing.
	m.Settle(held[1], 0, 0)
	if _, err := reserve(m, usd(0.01), user); err == nil {
		t.Fatal("double settlement freed money twice")
	}
}

func TestLedgerExceededAndAllOrNothing(t *testing.T) {
	t.Parallel()
	m := NewMemory(&spendBook{})
	user, key := limited(userU, 10.0), limited(keyK, 1.0)
	h, err := reserve(m, usd(1), user, key)
	if err != nil {
		t.Fatal(err)
	}
	m.Settle(h, usd(1), 0)
	_, err = reserve(m, usd(0.5), user, key)
	if r := budgetRefusal(t, err); *r != (BudgetRefusal{Reason: Exceeded, Account: keyK, Max: usd(1), Spent: usd(1), Cost: usd(0.5)}) {
		t.Fatalf("refusal = %+v", r)
	}
	// The refused request left nothing reserved against the user.
	if _, err := reserve(m, usd(9), user); err != nil {
		t.Fatalf("user budget held by a refused request: %v", err)
	}
	zero := limited(Account{OwnerUser, "z"}, 0)
	_, err = reserve(m, usd(0.001), zero)
	if r := budgetRefusal(t, err); r.Reason != Exceeded || r.Spent != 0 || r.Max != 0 || r.Account.ID != "z" {
		t.Fatalf("max_budget 0: %+v", r)
	}
}

func TestLedgerNeverOverspendsUnderConcurrency(t *testing.T) {
	t.Parallel()
	m := NewMemory(&spendBook{})
	user := limited(userU, 5.0)
	keys := []Budget{{Account: Account{OwnerKey, "a"}}, {Account: Account{OwnerKey, "b"}}}
	var mu sync.Mutex
	successes := 0
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Go(func() {
			h, err := reserve(m, usd(0.5), user, keys[i%2])
			if err != nil {
				return
			}
			m.Settle(h, usd(0.5), 0)
			mu.Lock()
			successes++
			mu.Unlock()
		})
	}
	wg.Wait()
	spent, err := m.Spent(t.Context(), userU, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if successes != 10 || spent != usd(5) {
		t.Fatalf("successes = %d, spent = %v; want 10 and 5", successes, spent)
	}
}

// A refusal says what is left, what the request needed and when the
// period resets (issue #12.5).
func TestBudgetRefusalGivesTheNumbers(t *testing.T) {
	t.Parallel()
	m := NewMemory(&spendBook{})
	resets := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	user := limited(Account{OwnerUser, "user-123"}, 0.01)
	user.Resets = &resets
	h, err := reserve(m, usd(0.0096), user)
	if err != nil {
		t.Fatal(err)
	}
	m.Settle(h, usd(0.0096), 0)
	held, err := reserve(m, usd(0.0001), user) // in flight: not left for others
	if err != nil {
		t.Fatal(err)
	}
	_, err = reserve(m, usd(0.0031), user)
	r := budgetRefusal(t, err)
	if r.Reason != Insufficient || r.Left != usd(0.0003) || r.Cost != usd(0.0031) || r.Resets == nil || !r.Resets.Equal(resets) {
		t.Fatalf("refusal = %+v", r)
	}
	m.Settle(held, usd(0.0004), 0)
	_, err = reserve(m, usd(0.0001), user)
	r = budgetRefusal(t, err)
	if r.Reason != Exceeded || r.Spent != usd(0.01) || r.Max != usd(0.01) || !r.Resets.Equal(resets) {
		t.Fatalf("refusal = %+v", r)
	}
}

// A period's spend is read from the source once; a new period (a reset)
// reads its own, and a new meter (a restart) reads the current one back.
func TestMemoryLoadsSpendFromTheSource(t *testing.T) {
	t.Parallel()
	book := &spendBook{}
	sched := Every(epoch, time.Hour)
	m := NewMemory(book)
	spend := func(now time.Time, cost money.Money) {
		t.Helper()
		b := limited(userU, 1.0)
		b.Period = sched.Start(now)
		h, err := m.Admit(t.Context(), Request{Now: now, Budgets: []Budget{b}, Cost: cost})
		if err != nil {
			t.Fatalf("at %v: %v", now, err)
		}
		m.Settle(h, cost, 0)
		book.add(userU, h.Period(OwnerUser), cost) // the usage record
	}
	spend(epoch.Add(10*time.Minute), usd(1))
	spend(epoch.Add(time.Hour), usd(0.5))
	spend(epoch.Add(time.Hour+time.Minute), usd(0.25))
	if book.loads != 2 {
		t.Fatalf("%d loads, want one per period", book.loads)
	}
	if got, _ := m.Spent(t.Context(), userU, epoch.Add(time.Hour)); got != usd(0.75) {
		t.Fatalf("spend = %v, want 0.75", got)
	}
	fresh := NewMemory(book)
	if got, _ := fresh.Spent(t.Context(), userU, epoch.Add(time.Hour)); got != usd(0.75) {
		t.Fatalf("spend after restart = %v, want 0.75", got)
	}
	if got, _ := fresh.Spent(t.Context(), userU, epoch); got != usd(1) {
		t.Fatalf("spend of the first period = %v, want 1", got)
	}
}

func TestSpendLoadFailureIsNotARefusal(t *testing.T) {
	t.Parallel()
	broken := errors.New("disk on fire")
	m := NewMemory(&spendBook{err: broken})
	_, err := reserve(m, usd(0.1), limited(userU, 1))
	var r *BudgetRefusal
	if !errors.Is(err, broken) || errors.As(err, &r) {
		t.Fatalf("error = %v, want the source's error", err)
	}
	if _, err := m.Spent(t.Context(), userU, epoch); !errors.Is(err, broken) {
		t.Fatalf("Spent error = %v", err)
	}
}

func TestUnpricedModelIsRefusedByALimitedBudget(t *testing.T) {
	t.Parallel()
	m := NewMemory(&spendBook{err: errors.New("not read: the refusal needs no spend")})
	_, err := m.Admit(t.Context(), Request{Now: epoch, Unpriced: true, Budgets: []Budget{{Account: userU}, limited(keyK, 5)}})
	if r := budgetRefusal(t, err); r.Reason != Unpriced || r.Account != keyK {
		t.Fatalf("refusal = %+v", r)
	}
	m = NewMemory(&spendBook{})
	h, err := m.Admit(t.Context(), Request{Now: epoch, Unpriced: true, Budgets: []Budget{{Account: userU}, {Account: keyK}}})
	if err != nil || h.Period(OwnerKey) != (time.Time{}) {
		t.Fatalf("unlimited budgets refused an unpriced model: %v", err)
	}
}

func TestForgetDropsTheBalance(t *testing.T) {
	t.Parallel()
	book := &spendBook{}
	m := NewMemory(book)
	h, err := reserve(m, usd(1), limited(keyK, 1))
	if err != nil {
		t.Fatal(err)
	}
	m.Settle(h, usd(1), 0)
	m.Forget(keyK) // the key was deleted, and its spend with it
	if got, _ := m.Spent(t.Context(), keyK, time.Time{}); got != 0 {
		t.Fatalf("spend after Forget = %v, want what the source holds (0)", got)
	}
}

// A Meter outside this package builds its Holds from the exported fields;
// the gateway reads the same things from them as from Memory's.
func TestAHoldMadeElsewhereSaysItsPeriods(t *testing.T) {
	t.Parallel()
	h := &Hold{ID: "hold-1", Cost: usd(0.5), Charges: []Charge{{Account: userU, Period: epoch}, {Account: keyK, Period: epoch.Add(time.Hour)}}}
	if !h.Period(OwnerUser).Equal(epoch) || !h.Period(OwnerKey).Equal(epoch.Add(time.Hour)) {
		t.Fatalf("periods = %v, %v", h.Period(OwnerUser), h.Period(OwnerKey))
	}
	m := NewMemory(&spendBook{})
	got, err := reserve(m, usd(0.5), Budget{Account: userU, Period: epoch}, Budget{Account: keyK, Period: epoch.Add(time.Hour)})
	if err != nil || got.Cost != h.Cost || len(got.Charges) != 2 || got.Charges[0] != h.Charges[0] || got.Charges[1] != h.Charges[1] {
		t.Fatalf("Memory's hold = %+v, %v; want the same fields", got, err)
	}
}
