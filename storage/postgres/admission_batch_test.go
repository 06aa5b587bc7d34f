package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// batchScript is a seeded sequence of admissions of two instances over a
// few users and keys with small budgets, requests- and tokens-per-minute limits,
// tracked-only budgets, unpriced requests and a rule without a limit, so
// that every outcome occurs.
func batchScript(seed uint64, n int) []AdmitRequest {
	r := rand.New(rand.NewPCG(seed, 1))
	reqs := make([]AdmitRequest, n)
	base := t0.Add(time.Duration(seed) * time.Hour) // a period and windows of its own
	for i := range reqs {
		u := r.IntN(3)
		user := Account{Owner: storage.SpendOfUser, ID: fmt.Sprint("user-", u)}
		key := Account{Owner: storage.SpendOfKey, ID: fmt.Sprint("key-", u, "-", r.IntN(2))}
		now := base.Add(time.Duration(i) * time.Millisecond)
		req := AdmitRequest{
			HoldID: fmt.Sprintf("hold-%d-%d", seed, holdCounter.Add(1)), Instance: fmt.Sprint("i", r.IntN(2)),
			Now: now, LeaseUntil: now.Add(time.Minute),
			Cost:   storage.Money(r.Int64N(int64(storage.Dollars(0.5)))),
			Tokens: r.Int64N(80),
		}
		userMax := storage.Dollars(float64(1 + u))
		req.Budgets = []AdmitBudget{{Account: user, Period: base, Max: &userMax}}
		switch r.IntN(3) {
		case 0: // the key tracked only
			req.Budgets = append(req.Budgets, AdmitBudget{Account: key, Period: base})
		case 1:
			keyMax := storage.Dollars(0.8)
			req.Budgets = append(req.Budgets, AdmitBudget{Account: key, Period: base, Max: &keyMax})
		}
		req.Rates = []AdmitRate{{Account: user, RPM: 25}, {Account: key, TPM: 400}}
		if r.IntN(4) == 0 {
			req.Rates = append(req.Rates[:1], AdmitRate{Account: key}) // counted, not limited
		}
		if r.IntN(10) == 0 {
			req.Unpriced = true
		}
		if r.IntN(8) == 0 {
			req.Budgets = nil
		}
		reqs[i] = req
	}
	return reqs
}

// TestBatchDecidesAsOneAtATime runs the same admissions through
// gateway_admit one at a time on one schema and through
// gateway_admit_batch in batches on another: every decision (outcome,
// refusing rule, spent, reserved, windows) and what is left held are the
// same.
func TestBatchDecidesAsOneAtATime(t *testing.T) {
	one, batched := openTestStore(t), openTestStore(t)
	for _, seed := range []uint64{1, 2, 3} {
		reqs := batchScript(seed, 90)
		var want, got []admitRow
		for _, req := range reqs {
			row, err := one.decideOne(req)
			if err != nil {
				t.Fatalf("decideOne: %v", err)
			}
			want = append(want, row)
		}
		// Batches of 1..40 requests, each seeing the ones before.
		for lo := 0; lo < len(reqs); {
			hi := min(lo+1+int(seed)*13%40, len(reqs))
			calls := make([]*admitCall, 0, hi-lo)
			for _, req := range reqs[lo:hi] {
				calls = append(calls, &admitCall{req: req})
			}
			rows, err := batched.decideBatchOrOne(calls)
			if err != nil {
				t.Fatalf("batch of %d: %v", len(calls), err)
			}
			got = append(got, rows...)
			lo = hi
		}
		outcomes := map[string]int{}
		for i := range reqs {
			outcomes[want[i].outcome]++
			if !sameRow(want[i], got[i]) {
				t.Fatalf("seed %d, request %d (%+v):\none at a time %s\nin a batch    %s", seed, i, reqs[i], showRow(want[i]), showRow(got[i]))
			}
		}
		for _, o := range []string{"admitted", "rate", "budget", "unpriced"} {
			if outcomes[o] == 0 {
				t.Fatalf("seed %d: no %q outcome in %v: the script does not test it", seed, o, outcomes)
			}
		}
		t.Logf("seed %d: %v", seed, outcomes)
	}
	for _, table := range []string{
		`SELECT id, owner, account_id, period_start, amount, instance_id, lease_expires_at FROM reservations ORDER BY 1, 2, 3`,
		`SELECT reservation_id, owner, account_id, at, tokens FROM rate_events ORDER BY 1, 2, 3`,
	} {
		if a, b := dump(t, one, table), dump(t, batched, table); !reflect.DeepEqual(a, b) {
			t.Fatalf("%s:\none at a time %v\nin batches    %v", table, a, b)
		}
	}
}

// decideBatchOrOne is decideBatch, for a batch of one too (decideAdmissions
// sends those to gateway_admit).
func (s *Store) decideBatchOrOne(calls []*admitCall) ([]admitRow, error) {
	if len(calls) == 1 {
		calls = append(calls, &admitCall{req: AdmitRequest{HoldID: "unused-" + calls[0].req.HoldID,
			Instance: calls[0].req.Instance, Now: calls[0].req.Now, LeaseUntil: calls[0].req.Now}})
		rows, err := s.decideBatch(calls)
		if err != nil {
			return nil, err
		}
		return rows[:1], nil
	}
	return s.decideBatch(calls)
}

func sameRow(a, b admitRow) bool { return showRow(a) == showRow(b) }

func showRow(r admitRow) string {
	s := fmt.Sprintf("%s refused=%v spent=%v reserved=%v oldest=%v counts=[", r.outcome, p(r.refused), p(r.spent), p(r.reserved), p(r.oldest))
	for _, c := range r.counts {
		s += fmt.Sprint(p(c), " ")
	}
	s += "] oldests=["
	for _, o := range r.oldests {
		s += fmt.Sprint(p(o), " ")
	}
	return s + "]"
}

func p[T any](v *T) any {
	if v == nil {
		return nil
	}
	return *v
}

func dump(t *testing.T, s *Store, query string) []string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	return out
}

// TestAbandonedAdmissionIsReleased: a caller whose context ends while its
// admission waits gets the context's error, and a hold the batch took for
// it anyway is released rather than left for its lease to end.
func TestAbandonedAdmissionIsReleased(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s, err := Open(ctx, Options{URL: testDatabaseURL(t), Schema: schema, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	// Hold alice's lock from another connection so the admission waits
	// in the database, then give up on it.
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(1819047278, hashtext('u/alice'))`); err != nil {
		t.Fatal(err)
	}
	req := admitReq(t0, storage.Dollars(0.5), dollars(1), nil)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := s.Admit(cctx, req)
		done <- err
	}()
	// The admission is in the database once it waits for the lock.
	waitFor(t, func() bool {
		var n int
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&n)
		return err == nil && n > 0
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Admit after its context ended: %v, want context.Canceled", err)
	}
	if err := tx.Commit(ctx); err != nil { // the batch now admits it
		t.Fatal(err)
	}
	c.Release()
	// Close waits for the workers, and so for the release.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, Options{URL: testDatabaseURL(t), Schema: schema, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if got := reserved(t, s, alice, t0); got != 0 {
		t.Fatalf("reserved after the abandoned admission = %s, want 0", got)
	}
	// And the budget is whole again for the next request.
	mustAdmit(t, s, admitReq(t0, storage.Dollars(1), dollars(1), nil))
}

// waitFor polls cond until it holds, failing the test at its deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline, ok := t.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	for !cond() {
		if time.Now().After(deadline.Add(-time.Second)) {
			t.Fatal("condition not met before the test's deadline")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
