package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// RateWindowLength is the length of the sliding rate-limit window, as in
// the in-memory limiter.
const RateWindowLength = time.Minute

// Account names whose budget or rate limit a rule is about: a user's or a
// key's.
type Account struct {
	Owner storage.SpendOwner
	ID    string
}

// AdmitBudget is one budget that applies to a request: the account's spend
// in Period, limited to Max (nil: tracked, not limited).
type AdmitBudget struct {
	Account Account
	Period  time.Time
	Max     *storage.Money
}

// AdmitRate is a requests- and tokens-per-minute limit on one account
// (0: no limit of that kind).
type AdmitRate struct {
	Account  Account
	RPM, TPM int64
}

// AdmitRequest is one request to admit.
type AdmitRequest struct {
	// HoldID names the hold if the request is admitted; Settle releases it
	// by this id. The caller makes it unique (a UUID).
	HoldID string
	// Instance is the gateway instance that holds the request; its
	// RenewLeases keeps the hold alive.
	Instance string
	// Now is the admission time: the rate window ends at Now, and
	// reservations whose lease ends by Now no longer count.
	Now time.Time
	// LeaseUntil is when the hold expires unless renewed.
	LeaseUntil time.Time
	// Cost is the request's worst-case cost, reserved against every budget.
	Cost    storage.Money
	Budgets []AdmitBudget
	Rates   []AdmitRate
	// Tokens is the request's token estimate, counted against TPM limits.
	Tokens int64
	// Unpriced says the model has no price: its cost is unknown, so every
	// budget with a Max refuses the request.
	Unpriced bool
}

// Admission is an admitted request.
type Admission struct {
	HoldID string
	// Windows holds, per rate rule of the request (same order), the
	// requests in its window counting this one and the time of the oldest:
	// X-RateLimit-Remaining is RPM - Count, X-RateLimit-Reset Oldest +
	// RateWindowLength.
	Windows []RateWindow
}

// RateWindow is an account's sliding window after an admission.
type RateWindow struct {
	Count  int64
	Oldest time.Time
}

// BudgetRefusal is the error of a request refused by a budget: it did not
// fit under Budgets[Index] (Spent + Reserved + the cost > Max, or Spent ≥
// Max), or the request is Unpriced and that is the first budget with a
// Max. Spent and Reserved are the account's settled spend in the period
// and the live reservations of its other requests (zero when Unpriced).
// The request stays counted in its rate windows, as the in-memory meter
// counts it: Windows are as in Admission.
type BudgetRefusal struct {
	Index    int
	Budget   AdmitBudget
	Unpriced bool
	Spent    storage.Money
	Reserved storage.Money
	Windows  []RateWindow
}

func (e *BudgetRefusal) Error() string {
	if e.Unpriced {
		return fmt.Sprintf("budget of %c/%s cannot bill an unpriced model", e.Budget.Account.Owner, e.Budget.Account.ID)
	}
	return fmt.Sprintf("budget of %c/%s exceeded: spent %s, reserved %s, max %s",
		e.Budget.Account.Owner, e.Budget.Account.ID, e.Spent, e.Reserved, *e.Budget.Max)
}

// RateRefusal is the error of a request refused by Rates[Index], whose
// window is full until RetryAt (its oldest event leaves the window).
type RateRefusal struct {
	Index   int
	Rate    AdmitRate
	RetryAt time.Time
}

func (e *RateRefusal) Error() string {
	return fmt.Sprintf("rate limit of %c/%s reached until %s",
		e.Rate.Account.Owner, e.Rate.Account.ID, e.RetryAt.UTC().Format(time.RFC3339Nano))
}

// Admit admits req or refuses it, atomically across every instance, with
// the in-memory meter's semantics: it checks the rate rules (in order; a
// refusal records nothing), counts the request in every rate window, then
// checks the budgets (in order; a refusal leaves the request counted) and
// holds req.Cost against every budget. The admissions waiting at the same
// time on this store are decided together, in the order they came, by one
// call of gateway_admit_batch (one statement, one round trip; see
// admission_batch.go and 0006_admit_batch.sql). A refusal is a
// *RateRefusal or a *BudgetRefusal; any other error means nothing was held
// (ErrUnavailable: the database is unreachable). When ctx ends first, Admit
// returns its error and a hold the batch took for req anyway is released.
func (s *Store) Admit(ctx context.Context, req AdmitRequest) (*Admission, error) {
	if req.HoldID == "" || req.Instance == "" {
		return nil, errors.New("admitting request: hold id and instance are required")
	}
	if req.Cost < 0 {
		return nil, fmt.Errorf("admitting request: negative cost %s", req.Cost)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	call := &admitCall{req: req, done: make(chan admitAnswer, 1)}
	if err := enqueue(ctx, s, s.admissions, call); err != nil {
		return nil, err
	}
	select {
	case ans := <-call.done:
		return ans.adm, ans.err
	case <-ctx.Done():
		if call.state.CompareAndSwap(callWaiting, callAbandoned) {
			return nil, ctx.Err()
		}
		ans := <-call.done // answered meanwhile: the answer stands
		return ans.adm, ans.err
	}
}

// admitRow is one row of gateway_admit_batch: the decision on one request.
type admitRow struct {
	outcome         string
	refused         *int32
	spent, reserved *int64
	oldest          *time.Time
	counts          []*int64
	oldests         []*time.Time
}

// answer turns the decision on req into Admit's result.
func (r *admitRow) answer(req AdmitRequest) (*Admission, error) {
	m := len(req.Rates)
	windows := func() []RateWindow {
		w := make([]RateWindow, m)
		for i := range w {
			if i < len(r.counts) && r.counts[i] != nil {
				w[i].Count = *r.counts[i]
			}
			if i < len(r.oldests) && r.oldests[i] != nil {
				w[i].Oldest = *r.oldests[i]
			}
		}
		return w
	}
	switch r.outcome {
	case "admitted":
		return &Admission{HoldID: req.HoldID, Windows: windows()}, nil
	case "rate":
		i := int(deref32(r.refused))
		retry := req.Now
		if r.oldest != nil {
			retry = r.oldest.Add(RateWindowLength)
		}
		return nil, &RateRefusal{Index: i, Rate: req.Rates[i], RetryAt: retry}
	case "budget", "unpriced":
		i := int(deref32(r.refused))
		return nil, &BudgetRefusal{Index: i, Budget: req.Budgets[i], Unpriced: r.outcome == "unpriced",
			Spent: storage.Money(deref64(r.spent)), Reserved: storage.Money(deref64(r.reserved)), Windows: windows()}
	}
	return nil, fmt.Errorf("admitting request: unexpected outcome %q", r.outcome)
}

func deref32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func deref64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// Release frees a hold without recording usage (a request that failed
// before any upstream attempt): its reservation is deleted and its
// rate-limit entries count no tokens, as the in-memory meter's settlement
// with cost 0 and tokens 0 does. It is Settle with no records.
func (s *Store) Release(ctx context.Context, holdID string) error {
	if err := s.Settle(ctx, Settlement{HoldID: holdID, Tokens: 0}); err != nil {
		return fmt.Errorf("releasing hold %s: %w", holdID, err)
	}
	return nil
}

// RenewLeases extends the lease of every hold of instance to until, in
// one statement, and reports how many reservation rows it renewed. A live
// instance calls it well within its lease length, so a long stream keeps
// its reservation for as long as it runs.
func (s *Store) RenewLeases(ctx context.Context, instance string, until time.Time) (int64, error) {
	var n int64
	err := s.run(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `UPDATE reservations SET lease_expires_at = $2
			WHERE instance_id = $1 AND lease_expires_at < $2`, instance, until)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.fail("renewing leases of instance "+instance, err)
	}
	return n, nil
}

// ExpireLeases deletes the reservations whose lease ended by now (their
// instance died: admission already ignores them, this reclaims the rows)
// and the rate events that left the window, and reports how many
// reservation rows it deleted. Any instance may run it; it is idempotent.
func (s *Store) ExpireLeases(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.run(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `WITH expired AS (
				DELETE FROM reservations WHERE lease_expires_at <= $1 RETURNING 1
			), old_events AS (
				DELETE FROM rate_events WHERE at <= $2 RETURNING 1
			)
			SELECT (SELECT count(*) FROM expired), (SELECT count(*) FROM old_events)`,
			now, now.Add(-RateWindowLength)).Scan(&n, new(int64))
	})
	if err != nil {
		return 0, s.fail("expiring leases", err)
	}
	return n, nil
}

// Reserved returns the live reservations held against the account's
// period at now, for display and tests.
func (s *Store) Reserved(ctx context.Context, acct Account, period, now time.Time) (storage.Money, error) {
	var sum int64
	err := s.run(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM reservations
			WHERE owner = $1 AND account_id = $2 AND period_start = $3 AND lease_expires_at > $4`,
			ownerCode(acct.Owner), acct.ID, period, now).Scan(&sum)
	})
	if err != nil {
		return 0, s.fail(fmt.Sprintf("loading reservations of %c/%s", acct.Owner, acct.ID), err)
	}
	return storage.Money(sum), nil
}
