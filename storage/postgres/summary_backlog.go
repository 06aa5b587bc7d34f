package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// The usage summaries are not written by the settlement that inserts the
// records, which every request waits for: its trigger notes the records in
// usage_summary_backlog, and gateway_fold_usage_summaries adds them to the
// summaries later (0008_summary_backlog.sql). This instance folds the
// backlog within defaultFoldInterval of settling records, every
// defaultFoldIdleInterval in any case (for records other instances or an
// import left), and all of it before it answers a summary query.
const (
	defaultFoldInterval     = time.Second
	defaultFoldIdleInterval = 30 * time.Second
	// foldLimit is the most backlog rows one pass of a fold takes (a
	// settlement batch each); the background fold runs passes until one
	// takes fewer.
	foldLimit = 500
)

// noteSettled records that this instance committed usage records, which
// the next fold adds to the summaries.
func (s *Store) noteSettled() { s.backlogged.Store(true) }

// foldSummaries is the folder: every fold interval while this instance
// has settled records since the last fold, and every idle interval in any
// case, it folds the backlog rows no other fold holds, in passes, until
// Close starts.
func (s *Store) foldSummaries() {
	defer close(s.foldDone)
	t := time.NewTicker(s.foldInterval)
	defer t.Stop()
	var last time.Time // the first tick folds what an earlier run left
	failing := false
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		if !s.backlogged.Load() && time.Since(last) < s.foldIdleInterval {
			continue
		}
		s.backlogged.Store(false)
		last = time.Now()
		err := s.foldFree()
		switch {
		case errors.Is(err, storage.ErrClosed):
			return
		case err != nil:
			s.backlogged.Store(true) // try again next interval
			if !failing && !IsUnavailable(err) {
				s.logger.Warn("adding usage records to the summaries failed; retrying", zap.Error(err))
			}
			failing = true
		default:
			failing = false
		}
	}
}

// foldFree folds the backlog rows no other fold holds, in passes of
// foldLimit, until a pass takes fewer.
func (s *Store) foldFree() error {
	for {
		n, err := s.fold(false)
		if err != nil || n < foldLimit {
			return err
		}
	}
}

// fold runs gateway_fold_usage_summaries once and returns how many backlog
// rows it folded: with all, every row committed before it started (see the
// function), else one pass of at most foldLimit rows no other fold holds.
func (s *Store) fold(all bool) (int64, error) {
	var n int64
	err := s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT gateway_fold_usage_summaries($1, $2)`, foldLimit, all).Scan(&n)
	})
	if err != nil {
		return 0, s.fail("adding usage records to the summaries", err)
	}
	return n, nil
}
