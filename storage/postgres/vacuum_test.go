package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// TestReleasedHoldsAreVacuumed checks that the store vacuums the tables of
// holds and rate events by itself once enough holds were released, so
// that admission does not slow down on their dead rows when autovacuum is
// off (as it is on the CI machines) or late.
func TestReleasedHoldsAreVacuumed(t *testing.T) {
	// No vacuum by the clock during the test: only the count can start one.
	s, err := Open(context.Background(), Options{URL: testDatabaseURL(t), Schema: newSchema(t), MaxConns: 8,
		vacuumAfter: 8, vacuumInterval: time.Hour})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if n := vacuumCount(t, s); n != 0 {
		t.Fatalf("vacuum count before any release = %d, want 0", n)
	}
	for i := range 7 {
		settleOne(t, s, i)
	}
	// Seven releases start no vacuum, now or later.
	if n := vacuumCount(t, s); n != 0 {
		t.Fatalf("vacuum count after 7 released holds = %d, want 0", n)
	}
	settleOne(t, s, 7)
	// The vacuumer runs in the background; the deadline only bounds a
	// failure, the loop ends as soon as both tables were vacuumed.
	deadline := time.Now().Add(60 * time.Second)
	for vacuumCount(t, s) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("reservations and rate_events were not vacuumed after 8 released holds")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settleOne admits and settles request i against alice's budgets and an
// RPM rule, leaving a dead hold and a rate event behind.
func settleOne(t *testing.T, s *Store, i int) {
	t.Helper()
	req := admitReq(t0.Add(time.Duration(i)*time.Second), storage.Dollars(0.01), dollars(100), dollars(100))
	req.Rates = []AdmitRate{{Account: alice, RPM: 1000}}
	mustAdmit(t, s, req)
	settle(t, s, Settlement{HoldID: req.HoldID, Tokens: 10,
		Records: []*storage.UsageRecord{usage(fmt.Sprint("vac-", i), storage.Dollars(0.01))}})
}

// vacuumCount is how many times both reservations and rate_events of the
// store's schema were vacuumed by hand (the smaller count of the two).
func vacuumCount(t *testing.T, s *Store) int64 {
	t.Helper()
	var n int64
	err := s.pool.QueryRow(context.Background(), `SELECT CASE WHEN count(*) = 2 THEN min(vacuum_count) ELSE 0 END
		FROM pg_stat_user_tables
		WHERE schemaname = current_schema() AND relname IN ('reservations', 'rate_events')`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
