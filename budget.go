package llmgateway

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// account names whose spend a counter holds: a user's or a key's.
type account struct {
	owner storage.SpendOwner
	id    string
}

// who names the account in messages: "User 'alice'" or "API key '<id>'".
// It is built only when a message needs it, not on every request.
func (a account) who() string {
	if a.owner == storage.SpendOfKey {
		return "API key '" + a.id + "'"
	}
	return "User '" + a.id + "'"
}

// balance is an account's spend in its current budget period and the
// reservations of its requests in flight.
type balance struct {
	period   time.Time
	spent    storage.Money
	reserved storage.Money
}

// ledger makes budgets hold under concurrency. Before a request is
// forwarded, its worst-case cost is reserved against every budget that
// applies, atomically: a reservation that does not fit under a limit
// (settled spend + reservations in flight + this one) is refused. After
// the response the reservation is replaced by the real cost. Spend is
// loaded from the store the first time an account or a period is seen;
// from then on every change passes through here, so memory and store agree.
type ledger struct {
	store gatewayStore

	mu       sync.Mutex
	balances map[account]*balance
}

func newLedger(store gatewayStore) *ledger {
	return &ledger{store: store, balances: make(map[account]*balance)}
}

// budgetPeriod is the schedule of a budget: periods start at anchor and
// last duration each (forever when duration is 0), so resets fall on
// anchor + k × duration whenever the next request comes. When first is
// set, one period starts at first and runs until anchor: the period that
// was current when the duration changed (see withDuration).
type budgetPeriod struct {
	first    time.Time
	anchor   time.Time
	duration time.Duration
}

// start returns the start of the period holding now.
func (p budgetPeriod) start(now time.Time) time.Time {
	if !p.first.IsZero() && now.Before(p.anchor) {
		return p.first
	}
	if p.duration <= 0 || now.Before(p.anchor) {
		return p.anchor
	}
	k := now.Sub(p.anchor) / p.duration
	return p.anchor.Add(k * p.duration)
}

// next returns when the period holding now ends, or nil if it never does.
func (p budgetPeriod) next(now time.Time) *time.Time {
	if !p.first.IsZero() && now.Before(p.anchor) {
		t := p.anchor
		return &t
	}
	if p.duration <= 0 {
		return nil
	}
	t := p.start(now).Add(p.duration)
	return &t
}

// withDuration is the schedule after the duration changed to d at time
// at. A limit change never changes spend, so the period current at that
// moment keeps its start and its end (a period that had no end ends one
// new duration after the change); periods of the new length follow it.
func (p budgetPeriod) withDuration(at time.Time, d time.Duration) budgetPeriod {
	if d == p.duration {
		return p
	}
	start := p.start(at)
	if d <= 0 {
		return budgetPeriod{anchor: start} // the current period never ends
	}
	end := at.Add(d)
	if next := p.next(at); next != nil {
		end = *next
	}
	return budgetPeriod{first: start, anchor: end, duration: d}
}

// scheduleOf returns the schedule of spend periods that started at anchor
// and went through the duration changes (oldest first) to duration now;
// changes at or before anchor were made before the schedule began.
func scheduleOf(anchor time.Time, changes []storage.DurationChange, duration *int64) budgetPeriod {
	var relevant []storage.DurationChange
	for i, c := range changes {
		if c.At.After(anchor) {
			relevant = changes[i:]
			break
		}
	}
	p := budgetPeriod{anchor: anchor, duration: seconds(duration)}
	if len(relevant) == 0 {
		return p
	}
	p.duration = seconds(relevant[0].PreviousSec)
	for i, c := range relevant {
		after := duration
		if i+1 < len(relevant) {
			after = relevant[i+1].PreviousSec
		}
		p = p.withDuration(c.At, seconds(after))
	}
	return p
}

// seconds converts an optional duration in seconds; nil is 0 (forever).
func seconds(sec *int64) time.Duration {
	if sec == nil {
		return 0
	}
	return time.Duration(*sec) * time.Second
}

// limit is one budget that applies to a request.
type limit struct {
	acct   account
	max    *storage.Money // nil: spend is tracked, not limited
	period time.Time
	resets *time.Time // when the period ends, for refusals; nil: never
}

// refusal is the 403 of a request that does not fit under lim: the
// contract's message, then what the account has left, what the request
// may cost (its reservation) and when the period resets.
func (lim limit) refusal(spent, reserved, amount storage.Money) *apiError {
	var msg string
	if spent >= *lim.max {
		msg = fmt.Sprintf("%s has exceeded budget limit: $%s spent of $%s", lim.acct.who(), spent, *lim.max)
	} else {
		left := max(*lim.max-spent-reserved, 0) // in-flight requests hold the rest
		msg = fmt.Sprintf("%s has insufficient budget for this request: $%s left, this request may cost up to $%s",
			lim.acct.who(), left, amount)
	}
	if lim.resets != nil {
		msg += "; resets at " + lim.resets.UTC().Format(time.RFC3339Nano)
	} else {
		msg += "; this budget does not reset"
	}
	return errForbidden("budget_exceeded", msg)
}

// balanceOf returns the account's balance for period, loading the period's
// spend from the store when the ledger has not seen it yet.
func (l *ledger) balanceOf(acct account, period time.Time) (*balance, error) {
	l.mu.Lock()
	b := l.balances[acct]
	if b != nil && b.period.Equal(period) {
		l.mu.Unlock()
		return b, nil
	}
	l.mu.Unlock()

	spent, err := l.store.GetSpend(acct.owner, acct.id, period)
	if err != nil {
		return nil, storeError{fmt.Errorf("loading spend: %w", err)}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b = l.balances[acct]
	switch {
	case b == nil:
		b = &balance{period: period, spent: spent}
		l.balances[acct] = b
	case !b.period.Equal(period):
		// A new period (a scheduled reset, or a budget assigned anew).
		// Reservations in flight stay: they settle into the period they
		// were made in.
		b.period, b.spent = period, spent
	}
	return b, nil
}

// spent reports an account's spend in the period, for display.
func (l *ledger) spent(acct account, period time.Time) (storage.Money, error) {
	b, err := l.balanceOf(acct, period)
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !b.period.Equal(period) {
		return 0, nil
	}
	return b.spent, nil
}

// reservation is money held for one request in flight.
type reservation struct {
	amount  storage.Money
	entries []reservationEntry
}

type reservationEntry struct {
	acct   account
	period time.Time
}

// reserve holds amount against every limit, or none of them: the first
// limit it does not fit under is refused with the contract's 403.
func (l *ledger) reserve(limits []limit, amount storage.Money) (*reservation, error) {
	for range 3 {
		for _, lim := range limits {
			if _, err := l.balanceOf(lim.acct, lim.period); err != nil {
				return nil, err
			}
		}
		res, current, err := l.tryReserve(limits, amount)
		if current {
			return res, err
		}
		// A concurrent request moved an account to another period between
		// the load and the lock: load again.
	}
	return nil, newError(http.StatusServiceUnavailable, "budget_busy", "Budget period changed during the request; retry")
}

// tryReserve is reserve under the lock; current is false when a balance is
// not on the period the limit names.
func (l *ledger) tryReserve(limits []limit, amount storage.Money) (res *reservation, current bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lim := range limits {
		b := l.balances[lim.acct]
		if b == nil || !b.period.Equal(lim.period) {
			return nil, false, nil
		}
		if lim.max == nil {
			continue
		}
		if b.spent >= *lim.max || b.spent+b.reserved+amount > *lim.max {
			return nil, true, lim.refusal(b.spent, b.reserved, amount)
		}
	}
	res = &reservation{amount: amount, entries: make([]reservationEntry, len(limits))}
	for i, lim := range limits {
		l.balances[lim.acct].reserved += amount
		res.entries[i] = reservationEntry{acct: lim.acct, period: lim.period}
	}
	return res, true, nil
}

// settle replaces the reservation by the real cost, at once, so the money
// not spent is free for the next request. A settled reservation is empty:
// settling it again does nothing.
func (l *ledger) settle(res *reservation, cost storage.Money) {
	if res == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range res.entries {
		b := l.balances[e.acct]
		if b == nil {
			continue
		}
		b.reserved -= res.amount
		if b.period.Equal(e.period) {
			b.spent += cost
		}
	}
	res.entries = nil
}

// periodOf returns the period the reservation charges the owner in.
func (res *reservation) periodOf(owner storage.SpendOwner) time.Time {
	if res == nil {
		return time.Time{}
	}
	for _, e := range res.entries {
		if e.acct.owner == owner {
			return e.period
		}
	}
	return time.Time{}
}

// forget drops an account's balance (a deleted key).
func (l *ledger) forget(acct account) {
	l.mu.Lock()
	delete(l.balances, acct)
	l.mu.Unlock()
}

// userSchedule returns the budget assigned to u (nil if none) and the
// schedule of u's spend periods: from the assignment, every
// budget_duration_sec; without a budget, one period since the user was
// created.
func (g *Gateway) userSchedule(u *storage.User) (*storage.Budget, budgetPeriod, error) {
	sched := budgetPeriod{anchor: u.CreatedAt}
	if u.BudgetID == nil {
		return nil, sched, nil
	}
	id := *u.BudgetID
	b, err := cached(g.state.cache.budgets, id, func() (*storage.Budget, error) { return g.store().GetBudget(id) })
	if err != nil {
		return nil, sched, err
	}
	if b == nil {
		return nil, sched, nil
	}
	if u.BudgetStartedAt != nil {
		sched.anchor = *u.BudgetStartedAt
	}
	// The template's duration changes after the assignment keep the
	// user's periods as they were (see withDuration).
	return b, scheduleOf(sched.anchor, b.DurationChanges, b.BudgetDurationSec), nil
}

// keySchedule returns the schedule of a key's spend periods: from when its
// budget was set (else its creation), every budget_duration_sec, through
// the changes of that duration.
func keySchedule(k *storage.APIKey) budgetPeriod {
	anchor := k.CreatedAt
	if k.BudgetStartedAt != nil {
		anchor = *k.BudgetStartedAt
	}
	return scheduleOf(anchor, k.DurationChanges, k.BudgetDurationSec)
}
