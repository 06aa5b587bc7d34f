package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// Holds and rate events are rows that live as long as a request: every
// admission inserts them and every settlement deletes them, so their
// tables fill with dead rows unless they are vacuumed often. Admission
// reads an account's live holds through an index that still lists every
// dead one until a vacuum removes it, so it slows down as they pile up: on
// this project's bench machine, one account's admission went from 0.24 ms
// to about 1 ms after 50,000 requests, and the gateway's added latency at
// concurrency 1 from 1 ms to 4 ms. Autovacuum does not prevent it: it may
// be off, as on the CI machines, and even on its default settings it waits
// for a fifth of a table to be dead and then sleeps between pages.
//
// The summaries' backlog is the same: a row per settlement batch, deleted
// by the folder within a second (summary_backlog.go).
//
// So the store vacuums the three tables itself, once this instance has
// released defaultVacuumAfter holds since the last time, and at least every
// defaultVacuumInterval while it releases any. A vacuum of these small tables
// takes milliseconds and locks out no reader or writer of their rows: it
// skips a table another instance is vacuuming (SKIP_LOCKED) and never
// truncates one, which would take a lock that admissions wait for. When the
// store's role does not own the tables (migrated by an operator), the
// database skips them with a warning and autovacuum is all there is.
const (
	defaultVacuumAfter    = 2048
	defaultVacuumInterval = 30 * time.Second
	vacuumSQL             = `VACUUM (SKIP_LOCKED, TRUNCATE false) reservations, rate_events, usage_summary_backlog`
)

// noteReleased counts n holds released by a settlement and wakes the
// vacuumer when enough have been.
func (s *Store) noteReleased(n int) {
	if n > 0 && s.released.Add(int64(n)) >= s.vacuumAfter {
		select {
		case s.vacuumNow <- struct{}{}:
		default:
		}
	}
}

// vacuumHolds is the vacuumer: it vacuums the holds' tables when woken by
// noteReleased, or when its interval passes with holds released, until
// Close starts.
func (s *Store) vacuumHolds() {
	defer close(s.vacuumDone)
	t := time.NewTicker(s.vacuumInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-s.closing:
			return
		case <-s.vacuumNow:
		case <-t.C:
			if s.released.Load() == 0 {
				continue
			}
		}
		s.released.Store(0)
		err := s.vacuum()
		switch {
		case errors.Is(err, storage.ErrClosed):
			return
		case err != nil && !failing && !IsUnavailable(err):
			s.logger.Warn("vacuuming budget holds failed", zap.Error(err))
			failing = true
		case err == nil:
			failing = false
		}
	}
}

// vacuum runs vacuumSQL once. VACUUM cannot run in a transaction, and
// does not: a statement without arguments goes by the simple protocol,
// in its own implicit transaction.
func (s *Store) vacuum() error {
	err := s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, vacuumSQL)
		return err
	})
	if err != nil {
		return s.fail("vacuuming holds", err)
	}
	return nil
}
