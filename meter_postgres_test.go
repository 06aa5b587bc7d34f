package llmgateway

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/internal/money"
	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres/pgtest"
)

// openTestPostgres opens a store on a fresh schema of the test database.
func openTestPostgres(t *testing.T) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), postgres.Options{URL: pgtest.URL(t), Schema: pgtest.Schema(t), MaxConns: 4})
	if err != nil {
		t.Fatalf("opening the test database: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// zeroSpend is a spend source with nothing spent yet.
type zeroSpend struct{}

func (zeroSpend) Spend(context.Context, metering.Account, time.Time) (money.Money, error) {
	return 0, nil
}

// TestPostgresMeterDecidesAsMemory runs the same admissions and
// settlements through the in-memory meter and the PostgreSQL one: every
// hold, refusal and contract message is the same.
func TestPostgresMeterDecidesAsMemory(t *testing.T) {
	store := openTestPostgres(t)
	pg := newPGMeter(store, "test-instance", zap.NewNop())
	mem := metering.NewMemory(zeroSpend{})
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	period := now.Add(-time.Hour)
	resets := now.Add(time.Hour)
	c := &call{provider: "mock", model: "ok"}

	request := func(user string, limit money.Money, cost money.Money, rpm int64) metering.Request {
		acct := userAccount(user)
		return metering.Request{
			Now:     now,
			Budgets: []metering.Budget{{Account: acct, Max: &limit, Period: period, Resets: &resets}},
			Cost:    cost,
			Rates:   []metering.Rate{{Account: acct, RPM: rpm}},
			Tokens:  10,
		}
	}
	// admit admits req through both meters and checks they agree.
	admit := func(what string, req metering.Request) (pgHold, memHold *metering.Hold) {
		t.Helper()
		pgHold, pgErr := pg.Admit(ctx, req)
		memHold, memErr := mem.Admit(ctx, req)
		if got, want := describeAdmission(pgHold, pgErr, c), describeAdmission(memHold, memErr, c); got != want {
			t.Fatalf("%s:\npostgres: %s\nmemory:   %s", what, got, want)
		}
		return pgHold, memHold
	}
	settle := func(pgHold, memHold *metering.Hold, user string, cost money.Money) {
		t.Helper()
		rec := &storage.UsageRecord{
			ID: newRequestID(), RequestID: newRequestID(), UserID: user, Timestamp: now,
			Model: "ok", Provider: "mock", Endpoint: "/v1/chat/completions", Status: "success",
			StatusCode: 200, Cost: cost, TotalTokens: 5, UsageSource: "provider",
			UserPeriod: pgHold.Period(metering.OwnerUser),
		}
		if err := pg.SettleUsage(ctx, pgHold, rec); err != nil {
			t.Fatalf("settling: %v", err)
		}
		mem.Settle(memHold, cost, 5)
		pg.Settle(pgHold, 0, 0) // settled: nothing more happens
	}

	// Budget 100, requests of 60 with 3 requests a minute: one fits, the
	// next does not while the first holds its 60, nor after it settled at
	// 50; then the rate limit is full (budget refusals still count).
	h1, m1 := admit("first request", request("ann", 100, 60, 3))
	admit("second, while the first holds", request("ann", 100, 60, 3))
	settle(h1, m1, "ann", 50)
	admit("third, after the first settled", request("ann", 100, 60, 3))
	if _, err := pg.Admit(ctx, request("ann", 100, 60, 3)); !errors.As(err, new(*metering.RateRefusal)) {
		t.Fatalf("fourth request: %v, want a rate refusal", err)
	}
	if _, err := mem.Admit(ctx, request("ann", 100, 60, 3)); !errors.As(err, new(*metering.RateRefusal)) {
		t.Fatalf("fourth request in memory: %v, want a rate refusal", err)
	}
	admit("fifth, over the rate limit", request("ann", 100, 60, 3))

	// Spend at the limit: exceeded.
	h2, m2 := admit("the whole budget", request("bob", 100, 100, 0))
	settle(h2, m2, "bob", 100)
	admit("after the budget is spent", request("bob", 100, 1, 0))

	unpriced := request("cid", 100, 0, 0)
	unpriced.Unpriced = true
	admit("an unpriced model", unpriced)

	// A released hold frees its reservation; releasing again does nothing.
	h3, m3 := admit("a request released unsettled", request("dan", 100, 70, 0))
	pg.Settle(h3, 0, 0)
	mem.Settle(m3, 0, 0)
	pg.Settle(h3, 0, 0)
	admit("after the release", request("dan", 100, 70, 0))
	for _, user := range []string{"ann", "bob"} {
		if reserved, err := store.Reserved(ctx, pgAccount(userAccount(user)), period, now); err != nil || reserved != 0 {
			t.Fatalf("%s: reserved %v after settlement (%v)", user, reserved, err)
		}
	}
	if spent, err := pg.Spent(ctx, userAccount("ann"), period); err != nil || spent != 50 {
		t.Fatalf("ann spent %v (%v), want 50", spent, err)
	}
}

// describeAdmission is what an admission shows the gateway: the hold's
// charges and rate status, or the refusal as the client reads it.
func describeAdmission(h *metering.Hold, err error, c *call) string {
	var budgetRefusal *metering.BudgetRefusal
	var rateRefusal *metering.RateRefusal
	switch {
	case errors.As(err, &rateRefusal):
		e := rateLimited(rateRefusal)
		return fmt.Sprintf("%d %s Retry-After %s", e.Status, e.Message, e.Header.Get("Retry-After"))
	case errors.As(err, &budgetRefusal):
		e := budgetRefused(budgetRefusal, c)
		rs := budgetRefusal.RateStatus
		return fmt.Sprintf("%d %s %s rate %d/%d %s", e.Status, e.Code, e.Message, rs.Remaining, rs.Limit, rs.Reset.UTC())
	case err != nil:
		return "error " + err.Error()
	}
	rs := h.RateStatus
	return fmt.Sprintf("held %v %+v rate %d/%d %s", h.Cost, h.Charges, rs.Remaining, rs.Limit, rs.Reset.UTC())
}
