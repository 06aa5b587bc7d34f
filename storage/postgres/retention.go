package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

const (
	// retentionBatch is the most records one deletion statement removes:
	// a few milliseconds of the database's time, so the settlements
	// writing beside it never wait long.
	retentionBatch = 1000
	// retentionPause is the wait between two full batches.
	retentionPause = 20 * time.Millisecond
	// retentionInterval is how often the store looks for expired records
	// once it has caught up.
	retentionInterval = time.Minute
)

// deleteUsageSQL deletes the oldest records timestamped before $1, at most
// $2, through usage_ts_idx. Rows another instance is deleting at the same
// time are skipped (SKIP LOCKED), so instances with the same retention
// never wait for each other, and so are records still in the summaries'
// backlog (a late delivery of an old record), which the folder needs. The
// summaries and spend periods are other tables, untouched: what a deleted
// record charged stays charged, and the totals of /v1/usage/summary stay.
const deleteUsageSQL = `DELETE FROM usage_records WHERE id IN (
	SELECT id FROM usage_records WHERE ts < $1
		AND id NOT IN (SELECT unnest(record_ids) FROM usage_summary_backlog)
	ORDER BY ts, id LIMIT $2 FOR UPDATE SKIP LOCKED)`

// DeleteUsageBefore deletes at most limit usage records timestamped before
// cutoff, oldest first, in one statement, and returns how many it deleted.
// Spend and usage summaries are not touched.
func (s *Store) DeleteUsageBefore(cutoff time.Time, limit int) (int, error) {
	var n int64
	err := s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, deleteUsageSQL, cutoff, limit)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.fail(fmt.Sprintf("deleting usage records before %s", cutoff.Format(time.RFC3339)), err)
	}
	return int(n), nil
}

// SetUsageRetention makes the store delete, in the background, the usage
// records older than retention; zero (the default) keeps them all. Every
// instance on the database runs the deletion with its own setting.
func (s *Store) SetUsageRetention(retention time.Duration) {
	s.retention.Store(int64(max(retention, 0)))
	select {
	case s.retentionWake <- struct{}{}:
	default:
	}
}

// expireUsage is the background loop of SetUsageRetention: it deletes
// expired records in batches with a pause between them, then sleeps until
// the next check, until Close starts.
func (s *Store) expireUsage() {
	defer close(s.retentionDone)
	timer := time.NewTimer(retentionInterval)
	defer timer.Stop()
	failing := false
	for {
		wait := retentionInterval
		if retention := time.Duration(s.retention.Load()); retention > 0 {
			// Records still in the summaries' backlog are kept (see
			// deleteUsageSQL): fold it first, waiting for a fold that holds
			// some of it, so that an expired record written just now (a
			// late delivery, an import) goes now rather than at the next
			// check.
			_, err := s.fold(true)
			n := 0
			if err == nil {
				n, err = s.DeleteUsageBefore(time.Now().Add(-retention), retentionBatch)
			}
			switch {
			case errors.Is(err, storage.ErrClosed):
				return
			case err != nil:
				if !failing && !IsUnavailable(err) {
					s.logger.Warn("deleting expired usage records failed", zap.Error(err))
				}
				failing = true
			default:
				failing = false
				if n == retentionBatch {
					wait = retentionPause // more to delete
				}
			}
		}
		timer.Reset(wait)
		select {
		case <-s.closing:
			return
		case <-s.retentionWake:
		case <-timer.C:
		}
	}
}
