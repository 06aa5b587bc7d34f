// Package metering decides whether a request may run and what it holds
// while it runs: the budgets that apply to it (a reservation of its worst
// case against each, replaced by the real cost when it settles), the
// requests- and tokens-per-minute limits of its user and key, and the
// budget periods that say which spend a request counts against. It is
// pure: no HTTP, no Caddy, no store. The gateway builds a Request from its
// users, keys, budgets and prices, and turns the typed refusals into the
// contract's errors.
//
// Meter is the seam between the decision and where state lives. Memory
// keeps balances and rate windows in process memory, loading spend through
// a SpendSource: right for one instance (the Badger store). A store shared
// by several instances implements Meter in the database instead, so that
// one Admit is one atomic statement and a Settle is written with the usage
// record, by the hold's ID.
package metering

import (
	"context"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/money"
)

// Owner says whose spend an account counts.
type Owner uint8

// The owners of accounts.
const (
	OwnerUser Owner = iota + 1
	OwnerKey
)

// Account names the spend of a user or of an API key.
type Account struct {
	Owner Owner
	ID    string
}

// Budget is one budget that applies to a request: the account it charges,
// its limit (Max nil: spend is tracked, not limited), the start of the
// period the request is charged in, and when that period ends (nil: never),
// for refusals.
type Budget struct {
	Account Account
	Max     *money.Money
	Period  time.Time
	Resets  *time.Time
}

// Rate is a requests- and tokens-per-minute limit on one account over a
// sliding window of RateWindow; 0 does not limit.
type Rate struct {
	Account  Account
	RPM, TPM int64
}

// Request is what an admission decides on.
type Request struct {
	Now time.Time
	// Budgets are charged in order; a refusal names the first that
	// refuses.
	Budgets []Budget
	// Cost is the request's worst case, reserved against every budget.
	Cost money.Money
	// Unpriced says the model has no price: its cost is unknown, so every
	// budget with a Max refuses it.
	Unpriced bool
	Rates    []Rate
	// Tokens is the request's token estimate, counted against TPM until
	// it settles.
	Tokens int64
}

// RateStatus is the most constraining requests-per-minute limit after an
// admission, for the X-RateLimit-* headers; Limit 0 when no RPM limit
// applies.
type RateStatus struct {
	Limit     int64
	Remaining int64 // may be negative when a limit was lowered
	Reset     time.Time
}

// Hold is what an admitted request holds until it settles: its reservation,
// its rate-limit entries, the period each account is charged in (for the
// usage record) and the rate-limit header values. The Meter that admitted
// it fills it in (a Meter in another package sets the exported fields and
// keeps its own state by ID); the gateway only reads it. A Hold is settled
// once, by the goroutine that serves its request.
type Hold struct {
	// ID identifies the hold in a shared store, which settles it in the
	// same transaction as the usage record, by this id. The in-memory
	// meter, whose holds never leave the process, leaves it empty.
	ID string
	// Cost is what the hold reserved against each account of Charges.
	Cost money.Money
	// Charges are the accounts reserved against, each in the period it is
	// charged in, in the order of the request's budgets.
	Charges []Charge
	// RateStatus is what the X-RateLimit-* headers say.
	RateStatus RateStatus

	chargeBuf [2]Charge   // Memory's storage of Charges for the usual user and key
	events    []rateEvent // Memory's entries in the rate windows
	settled   bool        // guarded by Memory's ledger lock
}

// Charge is one account a hold reserved against, in its period.
type Charge struct {
	Account Account
	Period  time.Time
}

// Period returns the period the hold charges owner's account in (zero when
// it charges no account of owner's).
func (h *Hold) Period(owner Owner) time.Time {
	if h == nil {
		return time.Time{}
	}
	for _, c := range h.Charges {
		if c.Account.Owner == owner {
			return c.Period
		}
	}
	return time.Time{}
}

// Meter makes admission decisions and keeps what they hold.
type Meter interface {
	// Admit decides on budgets and rate limits together: the rate limits
	// first (a request over one holds no budget), then a reservation of
	// req.Cost against every budget, or none of them. A refusal is a
	// *RateRefusal or a *BudgetRefusal; ErrBusy means the budget period
	// moved under the decision too often; another error comes from
	// loading state. A budget refusal leaves the request counted in the
	// rate windows, with its token estimate, as any admitted request.
	Admit(ctx context.Context, req Request) (*Hold, error)
	// Settle replaces the hold's reservation by cost and its token
	// estimate by tokens; cost 0 and tokens 0 release it. Settling a
	// settled hold, or a nil one, does nothing.
	Settle(h *Hold, cost money.Money, tokens int64)
	// Spent returns the account's settled spend in the period, for display.
	Spent(ctx context.Context, acct Account, period time.Time) (money.Money, error)
	// Forget drops what the meter keeps of an account (a deleted key).
	Forget(acct Account)
}

// SpendSource is where Memory reads an account's settled spend in a period
// the first time it sees it: the store, which is the truth.
type SpendSource interface {
	Spend(ctx context.Context, acct Account, period time.Time) (money.Money, error)
}
