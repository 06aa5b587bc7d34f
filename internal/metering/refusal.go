package metering

import (
	"errors"
	"math"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/money"
)

// ErrBusy is returned when an account's budget period kept changing while
// the request was being admitted; retrying is safe.
var ErrBusy = errors.New("budget period changed during admission")

// Reason says why a budget refused a request.
type Reason uint8

// The reasons of budget refusals.
const (
	// Exceeded: the settled spend reached the limit.
	Exceeded Reason = iota + 1
	// Insufficient: what is left (less the reservations in flight) is less
	// than the request's worst case.
	Insufficient
	// Unpriced: the model has no price, so it cannot be billed to a
	// limited budget.
	Unpriced
)

// BudgetRefusal is a request a budget does not let through, with the
// numbers the refusal reports.
type BudgetRefusal struct {
	Reason  Reason
	Account Account
	Max     money.Money
	Spent   money.Money
	// Left is what the request could have had: Max less Spent and the
	// reservations of the requests in flight, at least 0.
	Left money.Money
	// Cost is what the request may cost: its reservation.
	Cost money.Money
	// Resets is when the budget period ends; nil: never.
	Resets *time.Time
	// RateStatus is the rate-limit state the request was counted in.
	RateStatus RateStatus
}

func (r *BudgetRefusal) Error() string {
	switch r.Reason {
	case Exceeded:
		return "budget exceeded: " + r.Spent.String() + " spent of " + r.Max.String()
	case Unpriced:
		return "model has no price and the budget is limited"
	}
	return "insufficient budget: " + r.Left.String() + " left, request may cost " + r.Cost.String()
}

// Refuse returns the refusal of cost by b, given the account's settled
// spend and its reservations in flight (a Meter in another package builds
// its refusals with it, so that they read the same).
func Refuse(b Budget, spent, reserved, cost money.Money) *BudgetRefusal {
	r := &BudgetRefusal{Reason: Insufficient, Account: b.Account, Max: *b.Max, Spent: spent, Cost: cost, Resets: b.Resets}
	if spent >= *b.Max {
		r.Reason = Exceeded
	}
	r.Left = max(*b.Max-spent-reserved, 0) // in-flight requests hold the rest
	return r
}

// RateRefusal is a request over a rate limit.
type RateRefusal struct {
	// RetryAfter is when the oldest request of the full window leaves it.
	RetryAfter time.Duration
}

func (r *RateRefusal) Error() string { return "rate limit exceeded" }

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, between 1
// and the window's length: the Retry-After header.
func (r *RateRefusal) RetryAfterSeconds() int64 {
	secs := int64(math.Ceil(r.RetryAfter.Seconds()))
	return min(max(secs, 1), int64(RateWindow/time.Second))
}
