package metering

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/money"
)

// balance is an account's spend in its current budget period and the
// reservations of its requests in flight.
type balance struct {
	period   time.Time
	spent    money.Money
	reserved money.Money
}

// ledger makes budgets hold under concurrency in one process. Before a
// request is forwarded, its worst-case cost is reserved against every
// budget that applies, atomically: a reservation that does not fit under a
// limit (settled spend + reservations in flight + this one) is refused.
// After the response the reservation is replaced by the real cost. Spend is
// loaded from the source the first time an account or a period is seen;
// from then on every change passes through here, so memory and the source
// agree as long as this process is the only one charging the accounts.
type ledger struct {
	source SpendSource

	mu       sync.Mutex
	balances map[Account]*balance
}

func newLedger(source SpendSource) *ledger {
	return &ledger{source: source, balances: make(map[Account]*balance)}
}

// maxLoads is how often a reservation loads a period that a concurrent
// request moved before it gives up with ErrBusy.
const maxLoads = 3

// reserve holds cost against every budget, or none of them: the first
// budget it does not fit under refuses it. It records the reservation in h.
func (l *ledger) reserve(ctx context.Context, budgets []Budget, cost money.Money, h *Hold) error {
	for loads := 0; ; loads++ {
		l.mu.Lock()
		stale := l.firstStale(budgets)
		if stale < 0 {
			err := l.reserveLocked(budgets, cost, h)
			l.mu.Unlock()
			return err
		}
		l.mu.Unlock()
		if loads == maxLoads {
			// A concurrent request moved an account to another period
			// between each load and the lock.
			return ErrBusy
		}
		for _, b := range budgets[stale:] {
			if _, err := l.balanceOf(ctx, b.Account, b.Period); err != nil {
				return err
			}
		}
	}
}

// firstStale returns the index of the first budget whose balance is not
// loaded for its period, or -1; l.mu is held.
func (l *ledger) firstStale(budgets []Budget) int {
	for i, b := range budgets {
		bal := l.balances[b.Account]
		if bal == nil || !bal.period.Equal(b.Period) {
			return i
		}
	}
	return -1
}

// reserveLocked is reserve once every balance is current; l.mu is held.
func (l *ledger) reserveLocked(budgets []Budget, cost money.Money, h *Hold) error {
	for _, b := range budgets {
		if b.Max == nil {
			continue
		}
		bal := l.balances[b.Account]
		if bal.spent >= *b.Max || bal.spent+bal.reserved+cost > *b.Max {
			return Refuse(b, bal.spent, bal.reserved, cost)
		}
	}
	h.Cost = cost
	h.Charges = h.chargeBuf[:0]
	for _, b := range budgets {
		l.balances[b.Account].reserved += cost
		h.Charges = append(h.Charges, Charge{Account: b.Account, Period: b.Period})
	}
	return nil
}

// balanceOf returns the account's balance for period, loading the period's
// spend when the ledger has not seen it yet.
func (l *ledger) balanceOf(ctx context.Context, acct Account, period time.Time) (*balance, error) {
	l.mu.Lock()
	b := l.balances[acct]
	if b != nil && b.period.Equal(period) {
		l.mu.Unlock()
		return b, nil
	}
	l.mu.Unlock()

	spent, err := l.source.Spend(ctx, acct, period)
	if err != nil {
		return nil, fmt.Errorf("loading spend: %w", err)
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
func (l *ledger) spent(ctx context.Context, acct Account, period time.Time) (money.Money, error) {
	b, err := l.balanceOf(ctx, acct, period)
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

// settle replaces h's reservation by the real cost, at once, so the money
// not spent is free for the next request. It reports false when h was
// settled already: settling again does nothing.
func (l *ledger) settle(h *Hold, cost money.Money) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h.settled {
		return false
	}
	h.settled = true
	for _, c := range h.Charges {
		b := l.balances[c.Account]
		if b == nil {
			continue
		}
		b.reserved -= h.Cost
		if b.period.Equal(c.Period) {
			b.spent += cost
		}
	}
	return true
}

// forget drops an account's balance.
func (l *ledger) forget(acct Account) {
	l.mu.Lock()
	delete(l.balances, acct)
	l.mu.Unlock()
}
