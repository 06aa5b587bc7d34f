package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

const (
	// settleQueueSize is how many settlements may wait for the writer
	// before Settle blocks.
	settleQueueSize = 1024
	// maxSettleBatch is the most settlements committed in one statement.
	maxSettleBatch = 256
)

// Settlement is what a finished request leaves behind: its usage records
// (one per upstream attempt; none for a request that never reached one)
// and its hold, which is released.
type Settlement struct {
	// Records are stored and their costs charged to the spend periods they
	// name (UserPeriod, KeyPeriod). A record whose ID is already stored is
	// skipped, cost and all: a spool can deliver a record again safely.
	Records []*storage.UsageRecord
	// HoldID names the reservation and rate-limit entries of an Admit to
	// release; empty: none.
	HoldID string
	// Tokens replaces the token estimate of the hold's rate-limit entries
	// (what the request really used, for tokens-per-minute limits).
	// Negative keeps the estimate.
	Tokens int64
	// Durable commits the settlement with the database's synchronous_commit
	// (on disk before Settle returns, by default) whatever the store's
	// durability: for a settlement whose only other copy is deleted once
	// it is committed (a spooled one). A batch holding one is committed so.
	Durable bool
}

// settleRequest is one Settle call waiting for the writer.
type settleRequest struct {
	st   Settlement
	done chan error // buffered; receives the outcome exactly once
}

// RecordUsage stores rec and charges rec.Cost to the spend of rec.UserID
// in period rec.UserPeriod and of rec.APIKeyID in period rec.KeyPeriod,
// each if set, in one transaction. A record with zero cost is stored all
// the same. Unlike the Badger store, recording a record id again changes
// nothing: delivery is idempotent by id.
//
// Records are committed in batches (group commit); RecordUsage returns
// once the batch holding rec is committed, or early with an error when ctx
// is done or the store is closed (rec may still be committed then).
func (s *Store) RecordUsage(ctx context.Context, rec *storage.UsageRecord) error {
	if err := s.Settle(ctx, Settlement{Records: []*storage.UsageRecord{rec}, Tokens: -1}); err != nil {
		return fmt.Errorf("recording usage %s: %w", rec.ID, err)
	}
	return nil
}

// Settle commits st: its records and their charges, and the release of its
// hold, in one transaction shared with the other settlements queued at
// the same time (one statement per batch); with the writer idle and
// nothing queued, on the caller's goroutine (settleInline). It returns
// once that transaction is committed. An error wrapping ErrUnavailable
// means nothing was committed and st can be delivered again later.
func (s *Store) Settle(ctx context.Context, st Settlement) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, rec := range st.Records {
		if err := validateRecord(rec); err != nil {
			return fmt.Errorf("usage record %s: %w", rec.ID, err)
		}
	}
	req := &settleRequest{st: st, done: make(chan error, 1)}
	if ran, err := s.settleInline(req); err != nil || ran {
		return err
	}
	if err := enqueue(ctx, s, s.settlements, req); err != nil {
		return err
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settleInline commits req alone on the caller's goroutine when the usage
// writer is idle and nothing waits for it, sparing a request alone (the
// common case at low concurrency) the hand-off to the writer and back: two
// goroutine wake-ups, about 40 µs a settlement on the bench machine. It
// takes the writer's turn while it commits, so batches still commit one at
// a time and what arrives meanwhile waits for the writer's next batch. It
// reports whether it committed req (with req's outcome); false: the caller
// enqueues req. Like enqueue it holds mu for reading, so Close waits for
// it. (Admissions are always handed to their worker: an Admit whose
// context ends must return at once, and only a worker can then see the
// outcome of the statement and release a hold it took.)
func (s *Store) settleInline(req *settleRequest) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false, storage.ErrClosed
	}
	if len(s.settlements) > 0 {
		return false, nil
	}
	select {
	case s.settleTurn <- struct{}{}:
	default:
		return false, nil
	}
	defer func() { <-s.settleTurn }()
	s.commitSettlements([]*settleRequest{req})
	return true, <-req.done
}

// validateRecord applies the Badger store's rules to a record, and
// truncates its times to the microsecond.
func validateRecord(rec *storage.UsageRecord) error {
	switch {
	case rec.ID == "":
		return errors.New("empty record id")
	case rec.Timestamp.IsZero():
		return errors.New("zero timestamp")
	case rec.Cost < 0:
		return fmt.Errorf("negative cost %s", rec.Cost)
	case !storage.ValidID(rec.ID):
		return fmt.Errorf("invalid record id %q", rec.ID)
	case rec.UserID != "" && !storage.ValidID(rec.UserID):
		return fmt.Errorf("invalid user id %q", rec.UserID)
	case rec.APIKeyID != "" && !storage.ValidID(rec.APIKeyID):
		return fmt.Errorf("invalid key id %q", rec.APIKeyID)
	}
	rec.Timestamp = truncTime(rec.Timestamp)
	rec.UserPeriod = truncTime(rec.UserPeriod)
	rec.KeyPeriod = truncTime(rec.KeyPeriod)
	return nil
}

// writeSettlements is the usage writer: it takes every settlement already
// queued, up to maxSettleBatch, commits them in one statement (on its
// turn: see settleInline) and answers their callers, until Close closes
// the queue; what is still queued then is committed before it returns.
func (s *Store) writeSettlements() {
	defer close(s.writerDone)
	batch := make([]*settleRequest, 0, maxSettleBatch)
	for req := range s.settlements {
		s.settleTurn <- struct{}{}
		batch = fillBatch(s.settlements, append(batch[:0], req), maxSettleBatch)
		s.commitSettlements(batch)
		<-s.settleTurn
		clear(batch)
	}
}

// commitSettlements commits batch and answers every request in it. A
// batch that fails as a whole for a reason other than the database being
// unreachable is split in halves committed separately, so one bad record
// does not fail the others.
func (s *Store) commitSettlements(batch []*settleRequest) {
	var err error
	for range maxTxRetries {
		err = s.runOpen(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
			_, err := c.Exec(ctx, settleSQL, append(settleArgs(batch), s.asyncCommit(batch))...)
			return err
		})
		if !retryable(err) {
			break
		}
	}
	if err != nil && len(batch) > 1 && !IsUnavailable(err) {
		half := len(batch) / 2
		s.commitSettlements(batch[:half])
		s.commitSettlements(batch[half:])
		return
	}
	if err != nil {
		err = s.redactor.redact(fmt.Errorf("committing usage: %w", err))
	}
	holds, records := 0, 0
	for _, req := range batch {
		if req.st.HoldID != "" {
			holds++
		}
		records += len(req.st.Records)
		req.done <- err
	}
	if err == nil {
		s.noteReleased(holds)
		if records > 0 {
			s.noteSettled()
		}
	}
}

// asyncCommit reports whether batch may commit without waiting for the WAL
// flush: the store's durability is DurabilityOS and no settlement in it is
// Durable.
func (s *Store) asyncCommit(batch []*settleRequest) bool {
	if storage.Durability(s.durability.Load()) != storage.DurabilityOS {
		return false
	}
	for _, req := range batch {
		if req.st.Durable {
			return false
		}
	}
	return true
}

// settleSQL settles a batch in one statement, hence one transaction:
// gateway_settle (0009_generic_plans.sql) inserts the new records, charges
// their costs to their spend periods, and releases the holds. Its
// parameters are parallel arrays, one element per record ($1–$21) or per
// hold ($22–$23), then $24: with it true (durability os) the transaction
// commits without waiting for its WAL flush.
const settleSQL = `SELECT gateway_settle($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
	$16, $17, $18, $19, $20, $21, $22, $23, $24)`

// settleArgs lays batch out as gateway_settle's parallel arrays. A record id
// that appears twice in the batch (a redelivery racing the original) is
// sent once.
func settleArgs(batch []*settleRequest) []any {
	var (
		ids, requestIDs, userIDs, keyIDs, endUsers          []string
		models, providers, endpoints, statuses, errMessages []string
		sources                                             []string
		stamps                                              []time.Time
		userPeriods, keyPeriods                             []*time.Time
		prompt, completion, total, costs, latencies         []int64
		codes                                               []int32
		exceeded                                            []bool
		holdIDs                                             []string
		holdTokens                                          []int64
	)
	seen := make(map[string]bool)
	seenHold := make(map[string]bool)
	for _, req := range batch {
		for _, r := range req.st.Records {
			if seen[r.ID] {
				continue
			}
			seen[r.ID] = true
			ids = append(ids, r.ID)
			requestIDs = append(requestIDs, r.RequestID)
			userIDs = append(userIDs, r.UserID)
			keyIDs = append(keyIDs, r.APIKeyID)
			endUsers = append(endUsers, r.EndUser)
			stamps = append(stamps, r.Timestamp)
			models = append(models, r.Model)
			providers = append(providers, r.Provider)
			endpoints = append(endpoints, r.Endpoint)
			prompt = append(prompt, r.PromptTokens)
			completion = append(completion, r.CompletionTokens)
			total = append(total, r.TotalTokens)
			costs = append(costs, int64(r.Cost))
			statuses = append(statuses, r.Status)
			codes = append(codes, int32(r.StatusCode))
			latencies = append(latencies, r.LatencyMS)
			errMessages = append(errMessages, r.ErrorMessage)
			sources = append(sources, r.UsageSource)
			exceeded = append(exceeded, r.ExceededReservation)
			userPeriods = append(userPeriods, optionalTime(r.UserPeriod))
			keyPeriods = append(keyPeriods, optionalTime(r.KeyPeriod))
		}
		if id := req.st.HoldID; id != "" && !seenHold[id] {
			seenHold[id] = true
			holdIDs = append(holdIDs, id)
			holdTokens = append(holdTokens, req.st.Tokens)
		}
	}
	return []any{ids, requestIDs, userIDs, keyIDs, endUsers, stamps, models, providers, endpoints,
		prompt, completion, total, costs, statuses, codes, latencies, errMessages, sources, exceeded,
		userPeriods, keyPeriods, holdIDs, holdTokens}
}

// optionalTime is nil for the zero time (a NULL period).
func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
