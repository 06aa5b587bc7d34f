package metering

import (
	"context"
	"errors"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/money"
)

// Memory is the Meter of one instance: balances and rate windows live in
// process memory, spend is loaded from a SpendSource the first time an
// account's period is seen, and every change after that passes through
// here. It is wrong for several instances sharing one store: each would
// trust its own memory.
type Memory struct {
	ledger *ledger
	limits *limiter
}

// NewMemory returns a Memory meter that loads spend from source.
func NewMemory(source SpendSource) *Memory {
	return &Memory{ledger: newLedger(source), limits: newLimiter()}
}

// Admit implements Meter. It takes the limiter's lock once, then the
// ledger's (once more for each account period it has to load).
func (m *Memory) Admit(ctx context.Context, req Request) (*Hold, error) {
	h := &Hold{}
	if len(req.Rates) > 0 {
		if err := m.limits.admit(req.Now, req.Rates, req.Tokens, h); err != nil {
			return nil, err
		}
	}
	if req.Unpriced {
		for _, b := range req.Budgets {
			if b.Max != nil {
				return nil, &BudgetRefusal{Reason: Unpriced, Account: b.Account, Max: *b.Max, Resets: b.Resets, RateStatus: h.RateStatus}
			}
		}
	}
	if err := m.ledger.reserve(ctx, req.Budgets, req.Cost, h); err != nil {
		var refusal *BudgetRefusal
		if errors.As(err, &refusal) {
			refusal.RateStatus = h.RateStatus
		}
		return nil, err
	}
	return h, nil
}

// Settle implements Meter.
func (m *Memory) Settle(h *Hold, cost money.Money, tokens int64) {
	if h == nil || !m.ledger.settle(h, cost) {
		return
	}
	m.limits.settle(h, tokens)
}

// Spent implements Meter.
func (m *Memory) Spent(ctx context.Context, acct Account, period time.Time) (money.Money, error) {
	return m.ledger.spent(ctx, acct, period)
}

// Forget implements Meter. It drops the account's balance; its rate window
// empties by itself within RateWindow.
func (m *Memory) Forget(acct Account) { m.ledger.forget(acct) }

var _ Meter = (*Memory)(nil)
