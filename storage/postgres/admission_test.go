package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

var (
	t0    = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	alice = Account{Owner: storage.SpendOfUser, ID: "alice"}
	akey  = Account{Owner: storage.SpendOfKey, ID: "alice-key"}
)

func dollars(d float64) *storage.Money { m := storage.Dollars(d); return &m }

var holdCounter atomic.Int64

// admitReq is a request of cost against alice's budget (max userMax) and
// her key's (max keyMax, nil: tracked only), at now.
func admitReq(now time.Time, cost storage.Money, userMax, keyMax *storage.Money) AdmitRequest {
	return AdmitRequest{
		HoldID: fmt.Sprintf("hold-%d", holdCounter.Add(1)), Instance: "i1",
		Now: now, LeaseUntil: now.Add(time.Minute), Cost: cost,
		Budgets: []AdmitBudget{{Account: alice, Period: t0, Max: userMax}, {Account: akey, Period: t0, Max: keyMax}},
	}
}

func mustAdmit(t *testing.T, s *Store, req AdmitRequest) *Admission {
	t.Helper()
	a, err := s.Admit(context.Background(), req)
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	return a
}

func reserved(t *testing.T, s *Store, acct Account, now time.Time) storage.Money {
	t.Helper()
	r, err := s.Reserved(context.Background(), acct, t0, now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func settle(t *testing.T, s *Store, st Settlement) {
	t.Helper()
	if err := s.Settle(context.Background(), st); err != nil {
		t.Fatalf("Settle: %v", err)
	}
}

func usage(id string, cost storage.Money) *storage.UsageRecord {
	return &storage.UsageRecord{ID: id, UserID: alice.ID, APIKeyID: akey.ID, Timestamp: t0, Cost: cost,
		UserPeriod: t0, KeyPeriod: t0, Status: "success"}
}

func TestAdmitReservesAgainstEveryBudgetAndSettlementFreesIt(t *testing.T) {
	s := openTestStore(t)
	cost := storage.Dollars(0.4)
	first := mustAdmit(t, s, admitReq(t0, cost, dollars(1), nil))
	mustAdmit(t, s, admitReq(t0, cost, dollars(1), nil))
	for _, acct := range []Account{alice, akey} {
		if got := reserved(t, s, acct, t0); got != 2*cost {
			t.Fatalf("reserved for %v = %s, want %s", acct, got, 2*cost)
		}
	}

	_, err := s.Admit(context.Background(), admitReq(t0, cost, dollars(1), nil))
	var refusal *BudgetRefusal
	if !errors.As(err, &refusal) {
		t.Fatalf("third admission: %v, want a BudgetRefusal", err)
	}
	if refusal.Index != 0 || refusal.Spent != 0 || refusal.Reserved != 2*cost || refusal.Budget.Account != alice {
		t.Fatalf("refusal = %+v", refusal)
	}

	// Settling replaces the reservation by the real cost, at once.
	settle(t, s, Settlement{HoldID: first.HoldID, Tokens: -1, Records: []*storage.UsageRecord{usage("u1", storage.Dollars(0.1))}})
	if got := reserved(t, s, alice, t0); got != cost {
		t.Fatalf("reserved after settlement = %s, want %s", got, cost)
	}
	for _, acct := range []Account{alice, akey} {
		if spend, _ := s.GetSpend(acct.Owner, acct.ID, t0); spend != storage.Dollars(0.1) {
			t.Fatalf("spend of %v = %s, want 0.1", acct, spend)
		}
	}
	mustAdmit(t, s, admitReq(t0, cost, dollars(1), nil)) // 0.1 + 0.4 + 0.4 fits under 1
}

func TestAdmitRefusesExhaustedBudgetsAndHoldsTrackedOnes(t *testing.T) {
	s := openTestStore(t)
	settle(t, s, Settlement{Records: []*storage.UsageRecord{usage("spent", storage.Dollars(2))}, Tokens: -1})

	tests := []struct {
		name            string
		cost            storage.Money
		userMax, keyMax *storage.Money
		refusedBy       int // -1: admitted
	}{
		{"free request on an exhausted budget", 0, dollars(2), nil, 0},
		{"key budget exhausted", 0, dollars(5), dollars(1), 1},
		{"fits", storage.Dollars(1), dollars(3), dollars(3), -1},
		{"one nano-dollar too much", storage.Dollars(1) + 1, dollars(4), nil, 0}, // 2 spent + 1 held + this > 4
		{"exactly the rest", storage.Dollars(1), dollars(4), nil, -1},
		{"tracked only", storage.Dollars(100), nil, nil, -1},
	}
	for _, tc := range tests {
		_, err := s.Admit(context.Background(), admitReq(t0, tc.cost, tc.userMax, tc.keyMax))
		var refusal *BudgetRefusal
		switch {
		case tc.refusedBy < 0 && err != nil:
			t.Errorf("%s: %v, want admitted", tc.name, err)
		case tc.refusedBy >= 0 && !errors.As(err, &refusal):
			t.Errorf("%s: %v, want a BudgetRefusal", tc.name, err)
		case tc.refusedBy >= 0 && refusal.Index != tc.refusedBy:
			t.Errorf("%s: refused by budget %d, want %d", tc.name, refusal.Index, tc.refusedBy)
		}
	}
}

// Budgets hold across instances: many requests admitted at once through
// two stores (two gateway instances) never reserve past the limit.
func TestConcurrentAdmissionsAcrossInstancesNeverOverspend(t *testing.T) {
	s1 := openTestStore(t)
	var schema string
	if err := s1.pool.QueryRow(context.Background(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(context.Background(), Options{URL: testDatabaseURL(t), Schema: schema, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()

	const requests = 40
	cost, limit := storage.Dollars(0.1), dollars(1) // room for 10
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range requests {
		s := []*Store{s1, s2}[i%2]
		wg.Go(func() {
			<-start
			req := admitReq(t0, cost, limit, dollars(0.75)) // the key's budget binds first: room for 7
			req.Instance = fmt.Sprint("i", i%2)
			_, err := s.Admit(context.Background(), req)
			var refusal *BudgetRefusal
			switch {
			case err == nil:
				admitted.Add(1)
			case !errors.As(err, &refusal):
				t.Errorf("Admit: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := admitted.Load(); got != 7 {
		t.Fatalf("%d requests admitted, want exactly 7", got)
	}
	if got := reserved(t, s1, akey, t0); got != 7*cost {
		t.Fatalf("reserved = %s, want %s", got, 7*cost)
	}
}

func TestRateLimitsCountAcrossTheWindow(t *testing.T) {
	s := openTestStore(t)
	rateReq := func(now time.Time, rpm, tpm, tokens int64) AdmitRequest {
		req := admitReq(now, 0, nil, nil)
		req.Budgets = nil
		req.Rates = []AdmitRate{{Account: alice, RPM: rpm}, {Account: akey, RPM: rpm, TPM: tpm}}
		req.Tokens = tokens
		return req
	}

	// Requests per minute.
	for i := range 3 {
		a := mustAdmit(t, s, rateReq(t0.Add(time.Duration(i)*time.Second), 3, 0, 1))
		if w := a.Windows[0]; w.Count != int64(i+1) || !w.Oldest.Equal(t0) {
			t.Fatalf("window after admission %d = %+v", i, w)
		}
	}
	_, err := s.Admit(context.Background(), rateReq(t0.Add(10*time.Second), 3, 0, 1))
	var refusal *RateRefusal
	if !errors.As(err, &refusal) || refusal.Index != 0 || !refusal.RetryAt.Equal(t0.Add(RateWindowLength)) {
		t.Fatalf("fourth request in a minute: %v (%+v), want a RateRefusal until %v", err, refusal, t0.Add(RateWindowLength))
	}
	// The oldest event leaves the window exactly one minute later.
	mustAdmit(t, s, rateReq(t0.Add(RateWindowLength+time.Microsecond), 3, 0, 1))

	// Tokens per minute, on the key, with the settled count replacing the
	// estimate.
	later := t0.Add(time.Hour)
	first := mustAdmit(t, s, rateReq(later, 0, 100, 60))
	_, err = s.Admit(context.Background(), rateReq(later, 0, 100, 60))
	if !errors.As(err, &refusal) || refusal.Index != 1 {
		t.Fatalf("over the token limit: %v, want a RateRefusal of rule 1", err)
	}
	settle(t, s, Settlement{HoldID: first.HoldID, Tokens: 10})
	second := mustAdmit(t, s, rateReq(later, 0, 100, 60)) // 10 + 60 ≤ 100
	if _, err := s.Admit(context.Background(), rateReq(later, 0, 100, 60)); !errors.As(err, &refusal) {
		t.Fatalf("10 + 60 + 60 tokens: %v, want a RateRefusal", err)
	}
	// A released request counts no tokens (but still counts as a request).
	if err := s.Release(context.Background(), second.HoldID); err != nil {
		t.Fatal(err)
	}
	if a := mustAdmit(t, s, rateReq(later, 0, 100, 60)); a.Windows[1].Count != 3 {
		t.Fatalf("key window = %+v, want 3 requests", a.Windows[1])
	}
}

func TestLeasesKeepLiveHoldsAndFreeDeadOnes(t *testing.T) {
	s := openTestStore(t)
	cost := storage.Dollars(0.6)
	live := admitReq(t0, cost, dollars(1), nil)
	live.Instance = "live"
	mustAdmit(t, s, live)
	dead := admitReq(t0, cost, dollars(10), nil)
	dead.Instance = "dead"
	mustAdmit(t, s, dead)

	// The live instance renews; the dead one does not.
	if n, err := s.RenewLeases(context.Background(), "live", t0.Add(5*time.Minute)); err != nil || n != 2 {
		t.Fatalf("RenewLeases = %d, %v; want 2 rows (user and key)", n, err)
	}
	later := t0.Add(2 * time.Minute) // past the dead instance's lease
	if got := reserved(t, s, alice, later); got != cost {
		t.Fatalf("reserved after the dead lease ended = %s, want the live hold's %s", got, cost)
	}
	// Admission already ignores the dead hold, before any sweep.
	mustAdmit(t, s, admitReq(later, storage.Dollars(0.3), dollars(1), nil))

	n, err := s.ExpireLeases(context.Background(), later)
	if err != nil || n != 2 {
		t.Fatalf("ExpireLeases = %d, %v; want the dead hold's 2 rows", n, err)
	}
	if n, _ := s.ExpireLeases(context.Background(), later); n != 0 {
		t.Fatalf("second ExpireLeases deleted %d rows", n)
	}
	// Settling an expired hold is harmless: its record is still stored.
	settle(t, s, Settlement{HoldID: dead.HoldID, Tokens: -1, Records: []*storage.UsageRecord{usage("late", cost)}})
	if spend, _ := s.GetSpend(storage.SpendOfUser, alice.ID, t0); spend != cost {
		t.Fatalf("spend = %s, want %s", spend, cost)
	}
}

// Settlement is idempotent by record id: a spool delivering a record again
// (also within one batch) charges it once.
func TestSettlementIsIdempotentByRecordID(t *testing.T) {
	s := openTestStore(t)
	a := mustAdmit(t, s, admitReq(t0, storage.Dollars(1), dollars(5), nil))
	st := Settlement{HoldID: a.HoldID, Tokens: -1, Records: []*storage.UsageRecord{usage("once", storage.Dollars(0.5))}}
	settle(t, s, st)
	settle(t, s, st)
	if err := s.Release(context.Background(), a.HoldID); err != nil {
		t.Fatal(err)
	}

	// A batch holding the same record twice, and several holds.
	var batch []*settleRequest
	for i := range 20 {
		b := mustAdmit(t, s, admitReq(t0, storage.Dollars(0.01), nil, nil))
		id := fmt.Sprint("batch-", i%10) // each record twice
		batch = append(batch, &settleRequest{done: make(chan error, 1), st: Settlement{
			HoldID: b.HoldID, Tokens: -1, Records: []*storage.UsageRecord{usage(id, storage.Dollars(0.01))},
		}})
	}
	s.commitSettlements(batch) // one statement
	for _, req := range batch {
		if err := <-req.done; err != nil {
			t.Fatal(err)
		}
	}
	want := storage.Dollars(0.5) + 10*storage.Dollars(0.01)
	for _, acct := range []Account{alice, akey} {
		if spend, _ := s.GetSpend(acct.Owner, acct.ID, t0); spend != want {
			t.Fatalf("spend of %v = %s, want %s", acct, spend, want)
		}
	}
	if got := reserved(t, s, alice, t0); got != 0 {
		t.Fatalf("reserved after every hold settled = %s", got)
	}
	recs, err := s.ListUsage(storage.UsageFilter{UserID: alice.ID}, 0, 100)
	if err != nil || len(recs) != 11 {
		t.Fatalf("%d records, %v; want 11", len(recs), err)
	}
}

// A bad record fails alone: the rest of its batch commits.
func TestBadRecordFailsAloneInItsBatch(t *testing.T) {
	s := openTestStore(t)
	good := &settleRequest{done: make(chan error, 1), st: Settlement{Tokens: -1, Records: []*storage.UsageRecord{usage("good", 1)}}}
	bad := &settleRequest{done: make(chan error, 1), st: Settlement{Tokens: -1, Records: []*storage.UsageRecord{usage("bad", -1)}}} // past validation: the CHECK refuses it
	s.commitSettlements([]*settleRequest{good, bad})
	if err := <-good.done; err != nil {
		t.Fatalf("good record: %v", err)
	}
	if err := <-bad.done; err == nil || IsUnavailable(err) {
		t.Fatalf("bad record: %v, want a refusal", err)
	}
}

// As in the in-memory meter, a request refused by a budget stays counted
// in its rate windows; one refused by a rate limit is not counted at all.
func TestBudgetRefusalStaysCountedInRateWindows(t *testing.T) {
	s := openTestStore(t)
	req := func(cost storage.Money, unpriced bool) AdmitRequest {
		r := admitReq(t0, cost, dollars(1), nil)
		r.Rates = []AdmitRate{{Account: alice, RPM: 3}}
		r.Unpriced = unpriced
		return r
	}
	mustAdmit(t, s, req(storage.Dollars(0.5), false))

	_, err := s.Admit(context.Background(), req(storage.Dollars(0.9), false))
	var refusal *BudgetRefusal
	if !errors.As(err, &refusal) || refusal.Unpriced || refusal.Windows[0].Count != 2 {
		t.Fatalf("over budget: %v (%+v), want a BudgetRefusal with 2 requests in the window", err, refusal)
	}
	_, err = s.Admit(context.Background(), req(0, true))
	if !errors.As(err, &refusal) || !refusal.Unpriced || refusal.Index != 0 || refusal.Windows[0].Count != 3 {
		t.Fatalf("unpriced: %v (%+v), want an unpriced BudgetRefusal with 3 requests in the window", err, refusal)
	}
	// The window is full now; a rate refusal records nothing.
	var rateRefusal *RateRefusal
	for range 2 {
		if _, err := s.Admit(context.Background(), req(0, false)); !errors.As(err, &rateRefusal) {
			t.Fatalf("fourth request: %v, want a RateRefusal", err)
		}
	}
	var events int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM rate_events`).Scan(&events); err != nil || events != 3 {
		t.Fatalf("%d rate events (%v), want 3", events, err)
	}
	// An unpriced request with no limited budget is admitted.
	free := admitReq(t0.Add(time.Hour), 0, nil, nil)
	free.Unpriced = true
	mustAdmit(t, s, free)
}

// An exhausted pool answers ErrUnavailable after the acquire timeout
// instead of queueing, and a query past the query timeout is cut.
func TestTimeoutsAreUnavailable(t *testing.T) {
	schema := newSchema(t)
	s, err := Open(context.Background(), Options{URL: testDatabaseURL(t), Schema: schema, MaxConns: 1,
		AcquireTimeout: 100 * time.Millisecond, QueryTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	err = s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `SELECT pg_sleep(10)`)
		return err
	})
	if !IsUnavailable(err) {
		t.Fatalf("a query past the query timeout: %v, want ErrUnavailable", err)
	}

	held, err := s.pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.GetUser("x")
	held.Release()
	if !IsUnavailable(err) {
		t.Fatalf("GetUser on an exhausted pool: %v, want ErrUnavailable", err)
	}
	if _, err := s.GetUser("x"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetUser once a connection is free: %v, want ErrNotFound", err)
	}
}
