package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

const (
	// admitQueueSize is how many admissions may wait for a worker before
	// Admit blocks.
	admitQueueSize = 1024
	// maxAdmitBatch is the most admissions decided in one statement.
	maxAdmitBatch = 128
	// admitWorkers is how many batches one store runs at once. One: the
	// database's cost of an admission is mostly the cost of a statement,
	// whatever its batch size, and while one batch runs the next one
	// fills. Measured on the bench machine at c=64 (one account; 64
	// accounts): one worker 5,544 req/s at 107 µs of database CPU per
	// request (4,429 req/s, 163 µs), two 5,120 (4,256), four 4,156–4,824
	// at 161–182 µs (3,385–3,925 at 223–238 µs). A batch waiting for an
	// account's lock that another instance holds keeps the next batch
	// waiting, for as long as that instance's batch runs (about a
	// millisecond).
	admitWorkers = 1
)

// An admitCall's state: a worker answers it unless its caller gave up
// first; whoever moves it out of callWaiting decides.
const (
	callWaiting int32 = iota
	callAnswered
	callAbandoned
)

// admitCall is one Admit waiting for a worker.
type admitCall struct {
	req   AdmitRequest
	state atomic.Int32
	done  chan admitAnswer // buffered; receives the answer at most once
}

type admitAnswer struct {
	adm *Admission
	err error
}

// enqueue hands v to the workers reading ch (the admission workers, the
// usage writer), unless the store is closed or ctx ends first. Close
// closes ch only once no sender holds mu.
func enqueue[T any](ctx context.Context, s *Store, ch chan<- T, v T) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return storage.ErrClosed
	}
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// admitBatches is one admission worker: it takes every admission already
// queued, up to maxAdmitBatch, decides them in one statement and answers
// their callers, until Close closes the queue.
func (s *Store) admitBatches() {
	defer s.admitters.Done()
	batch := make([]*admitCall, 0, maxAdmitBatch)
	for call := range s.admissions {
		batch = fillBatch(s.admissions, append(batch[:0], call), maxAdmitBatch)
		s.admitBatch(batch)
		clear(batch)
	}
}

// fillBatch appends to batch what ch already holds, without waiting, until
// batch has max elements or ch is empty or closed.
func fillBatch[T any](ch <-chan T, batch []T, max int) []T {
	for len(batch) < max {
		select {
		case v, ok := <-ch:
			if !ok {
				return batch
			}
			batch = append(batch, v)
		default:
			return batch
		}
	}
	return batch
}

// admitBatch decides batch and answers every call in it. A batch that
// fails as a whole for a reason other than the database being unreachable
// is split in halves decided separately, so one bad request (a hold id
// used twice) does not fail the others.
func (s *Store) admitBatch(batch []*admitCall) {
	var (
		rows []admitRow
		err  error
	)
	for range maxTxRetries {
		rows, err = s.decideAdmissions(batch)
		if !retryable(err) {
			break
		}
	}
	if err != nil && len(batch) > 1 && !IsUnavailable(err) {
		half := len(batch) / 2
		s.admitBatch(batch[:half])
		s.admitBatch(batch[half:])
		return
	}
	var abandoned []*settleRequest
	for i, call := range batch {
		var ans admitAnswer
		if err != nil {
			ans.err = s.fail("admitting request", err)
		} else {
			ans.adm, ans.err = rows[i].answer(call.req)
		}
		if call.state.CompareAndSwap(callWaiting, callAnswered) {
			call.done <- ans
		} else if ans.adm != nil {
			abandoned = append(abandoned, &settleRequest{
				st:   Settlement{HoldID: call.req.HoldID, Tokens: 0},
				done: make(chan error, 1),
			})
		}
	}
	if len(abandoned) > 0 {
		// Its caller left before the answer: nobody will settle the hold,
		// so it is released now (or, failing that, when its lease ends).
		s.commitSettlements(abandoned)
		for _, req := range abandoned {
			if err := <-req.done; err != nil {
				s.logger.Warn("releasing the hold of an abandoned admission failed; its lease frees it",
					zap.String("hold_id", req.st.HoldID), zap.Error(err))
			}
		}
	}
}

// decideAdmissions decides batch and returns one row per call, in order:
// a batch of one with gateway_admit (cheaper for one request alone), a
// larger one with gateway_admit_batch.
func (s *Store) decideAdmissions(batch []*admitCall) ([]admitRow, error) {
	if len(batch) == 1 {
		row, err := s.decideOne(batch[0].req)
		if err != nil {
			return nil, err
		}
		return []admitRow{row}, nil
	}
	return s.decideBatch(batch)
}

// decideOne runs gateway_admit on req.
func (s *Store) decideOne(req AdmitRequest) (admitRow, error) {
	var row admitRow
	err := s.runOpen(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		return c.QueryRow(ctx, admitOneSQL, admitOneArgs(req)...).Scan(
			&row.outcome, &row.refused, &row.spent, &row.reserved, &row.oldest, &row.counts, &row.oldests)
	})
	return row, err
}

// admitOneSQL decides one request: gateway_admit (0007_lean_admit.sql), on
// admitOneArgs.
const admitOneSQL = `SELECT outcome, refused, spent, reserved, oldest, counts, oldests
	FROM gateway_admit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`

// admitOneArgs lays req out as gateway_admit's parameters: its budgets and
// its rate rules as parallel arrays.
func admitOneArgs(req AdmitRequest) []any {
	n := len(req.Budgets)
	bOwner, bAccount := make([]string, n), make([]string, n)
	bPeriod, bMax := make([]time.Time, n), make([]*int64, n)
	for i, b := range req.Budgets {
		bOwner[i], bAccount[i] = ownerCode(b.Account.Owner), b.Account.ID
		bPeriod[i], bMax[i] = b.Period, int64Ptr(b.Max)
	}
	m := len(req.Rates)
	rOwner, rAccount := make([]string, m), make([]string, m)
	rRPM, rTPM := make([]int64, m), make([]int64, m)
	for i, r := range req.Rates {
		rOwner[i], rAccount[i] = ownerCode(r.Account.Owner), r.Account.ID
		rRPM[i], rTPM[i] = r.RPM, r.TPM
	}
	return []any{req.HoldID, req.Instance, req.Now, req.LeaseUntil, int64(req.Cost),
		bOwner, bAccount, bPeriod, bMax,
		req.Now.Add(-RateWindowLength), req.Tokens, rOwner, rAccount, rRPM, rTPM, req.Unpriced}
}

// accountKey names an account as gateway_admit's advisory locks do.
type accountKey struct{ owner, id string }

func (k accountKey) lockName() string { return k.owner + "/" + k.id }

// periodKey is one budget period of an account.
type periodKey struct {
	accountKey
	period time.Time
}

// decideBatch runs gateway_admit_batch on batch (at least two calls).
func (s *Store) decideBatch(batch []*admitCall) ([]admitRow, error) {
	n := len(batch)
	rows := make([]admitRow, n)
	err := s.runOpen(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		res, err := c.Query(ctx, admitBatchSQL, admitBatchArgs(batch)...)
		if err != nil {
			return err
		}
		defer res.Close()
		seen := 0
		for res.Next() {
			var (
				i   int32
				row admitRow
			)
			if err := res.Scan(&i, &row.outcome, &row.refused, &row.spent, &row.reserved,
				&row.oldest, &row.counts, &row.oldests); err != nil {
				return err
			}
			if i < 1 || int(i) > n {
				return fmt.Errorf("admission batch answered request %d of %d", i, n)
			}
			rows[i-1] = row
			seen++
		}
		if err := res.Err(); err != nil {
			return err
		}
		if seen != n {
			return fmt.Errorf("admission batch answered %d of %d requests", seen, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// admitBatchSQL decides a batch: gateway_admit_batch (0006_admit_batch.sql),
// on admitBatchArgs.
const admitBatchSQL = `SELECT req, outcome, refused, spent, reserved, oldest, counts, oldests
	FROM gateway_admit_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
		$16, $17, $18, $19, $20, $21, $22)`

// admitBatchArgs lays batch out as gateway_admit_batch's parameters: per
// request its own values; the distinct limited accounts to lock, budget
// periods and rate-limited accounts; and per budget and rule the index of
// its request and of its period or window.
func admitBatchArgs(batch []*admitCall) []any {
	n := len(batch)
	var (
		ids, instances     = make([]string, n), make([]string, n)
		nows, leases       = make([]time.Time, n), make([]time.Time, n)
		costs, tokens      = make([]int64, n), make([]int64, n)
		unpriced           = make([]bool, n)
		earliest           = batch[0].req.Now
		locks              []string
		locked             = make(map[accountKey]bool)
		aOwner, aAccount   []string
		aPeriod            []time.Time
		periods            = make(map[periodKey]int32)
		wOwner, wAccount   []string
		windows            = make(map[accountKey]int32)
		bReq, bA, rReq, rW []int32
		bMax               []*int64
		rRPM, rTPM         []int64
	)
	lock := func(k accountKey) {
		if !locked[k] {
			locked[k] = true
			locks = append(locks, k.lockName())
		}
	}
	for i, call := range batch {
		req := &call.req
		ids[i], instances[i], nows[i], leases[i] = req.HoldID, req.Instance, req.Now, req.LeaseUntil
		costs[i], tokens[i], unpriced[i] = int64(req.Cost), req.Tokens, req.Unpriced
		if req.Now.Before(earliest) {
			earliest = req.Now
		}
		for _, b := range req.Budgets {
			pk := periodKey{accountKey{ownerCode(b.Account.Owner), b.Account.ID}, b.Period}
			a, ok := periods[pk]
			if !ok {
				aOwner, aAccount, aPeriod = append(aOwner, pk.owner), append(aAccount, pk.id), append(aPeriod, pk.period)
				a = int32(len(aOwner))
				periods[pk] = a
			}
			if b.Max != nil {
				lock(pk.accountKey)
			}
			bReq, bA, bMax = append(bReq, int32(i+1)), append(bA, a), append(bMax, int64Ptr(b.Max))
		}
		for _, r := range req.Rates {
			ak := accountKey{ownerCode(r.Account.Owner), r.Account.ID}
			w, ok := windows[ak]
			if !ok {
				wOwner, wAccount = append(wOwner, ak.owner), append(wAccount, ak.id)
				w = int32(len(wOwner))
				windows[ak] = w
			}
			if r.RPM > 0 || r.TPM > 0 {
				lock(ak)
			}
			rReq, rW, rRPM, rTPM = append(rReq, int32(i+1)), append(rW, w), append(rRPM, r.RPM), append(rTPM, r.TPM)
		}
	}
	return []any{instances, ids, nows, leases, costs, tokens, unpriced,
		locks, earliest.Add(-RateWindowLength), earliest,
		aOwner, aAccount, aPeriod, wOwner, wAccount,
		bReq, bA, bMax, rReq, rW, rRPM, rTPM}
}
