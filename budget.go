package llmgateway

import (
	"context"
	"fmt"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/internal/money"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

func userAccount(id string) metering.Account {
	return metering.Account{Owner: metering.OwnerUser, ID: id}
}

func keyAccount(id string) metering.Account {
	return metering.Account{Owner: metering.OwnerKey, ID: id}
}

// accountName names the account in messages: "User 'alice'" or "API key
// '<id>'". It is built only when a message needs it, not on every request.
func accountName(a metering.Account) string {
	if a.Owner == metering.OwnerKey {
		return "API key '" + a.ID + "'"
	}
	return "User '" + a.ID + "'"
}

// storeSpend is the store as the meter's source of settled spend.
type storeSpend struct{ store gatewayStore }

// Spend implements metering.SpendSource.
func (s storeSpend) Spend(_ context.Context, acct metering.Account, period time.Time) (money.Money, error) {
	owner := storage.SpendOfUser
	if acct.Owner == metering.OwnerKey {
		owner = storage.SpendOfKey
	}
	return s.store.GetSpend(owner, acct.ID, period)
}

// spent returns an account's spend in the period, for display.
func (g *Gateway) spent(acct metering.Account, period time.Time) (storage.Money, error) {
	spend, err := g.state.meter.Spent(context.Background(), acct, period)
	if err != nil {
		return 0, storeError{err}
	}
	return spend, nil
}

// budgetRefused is the contract's 403 for a budget refusal: the message,
// then what the account has left, what the request may cost (its
// reservation) and when the period resets.
func budgetRefused(r *metering.BudgetRefusal, c *call) *apiError {
	who := accountName(r.Account)
	var msg string
	switch r.Reason {
	case metering.Unpriced:
		if c.route != nil {
			return errForbidden("model_not_priced",
				fmt.Sprintf("No target of route '%s' has a price; it cannot be billed to the budget of %s", c.route.route.name, who))
		}
		return errForbidden("model_not_priced",
			fmt.Sprintf("No price is configured for model '%s:%s'; it cannot be billed to the budget of %s", c.provider, c.model, who))
	case metering.Exceeded:
		msg = fmt.Sprintf("%s has exceeded budget limit: $%s spent of $%s", who, r.Spent, r.Max)
	default:
		msg = fmt.Sprintf("%s has insufficient budget for this request: $%s left, this request may cost up to $%s", who, r.Left, r.Cost)
	}
	if r.Resets != nil {
		msg += "; resets at " + r.Resets.UTC().Format(time.RFC3339Nano)
	} else {
		msg += "; this budget does not reset"
	}
	return errForbidden("budget_exceeded", msg)
}

// userSchedule returns the budget assigned to u (nil if none) and the
// schedule of u's spend periods: from the assignment, every
// budget_duration_sec; without a budget, one period since the user was
// created.
func (g *Gateway) userSchedule(u *storage.User) (*storage.Budget, metering.Schedule, error) {
	sched := metering.Every(u.CreatedAt, 0)
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
	anchor := u.CreatedAt
	if u.BudgetStartedAt != nil {
		anchor = *u.BudgetStartedAt
	}
	// The template's duration changes after the assignment keep the
	// user's periods as they were (see metering.Schedule.WithDuration).
	return b, scheduleOf(anchor, b.DurationChanges, b.BudgetDurationSec), nil
}

// keySchedule returns the schedule of a key's spend periods: from when its
// budget was set (else its creation), every budget_duration_sec, through
// the changes of that duration.
func keySchedule(k *storage.APIKey) metering.Schedule {
	anchor := k.CreatedAt
	if k.BudgetStartedAt != nil {
		anchor = *k.BudgetStartedAt
	}
	return scheduleOf(anchor, k.DurationChanges, k.BudgetDurationSec)
}

// scheduleOf is metering.ScheduleOf for the store's durations in seconds.
func scheduleOf(anchor time.Time, changes []storage.DurationChange, durationSec *int64) metering.Schedule {
	var buf [4]metering.DurationChange // no allocation for a few changes
	converted := buf[:0]
	for _, c := range changes {
		converted = append(converted, metering.DurationChange{At: c.At, Previous: seconds(c.PreviousSec)})
	}
	return metering.ScheduleOf(anchor, converted, seconds(durationSec))
}

// seconds converts an optional duration in seconds; nil is 0 (forever).
func seconds(sec *int64) time.Duration {
	if sec == nil {
		return 0
	}
	return time.Duration(*sec) * time.Second
}
