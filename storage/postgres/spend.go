package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// ownerCode is the owner column's value for a spend owner.
func ownerCode(owner storage.SpendOwner) string { return string(rune(owner)) }

// GetSpend returns what owner id spent in the budget period starting at
// start: the sum of the costs of the records charged to that period. A
// period nothing was charged to has spent 0.
func (s *Store) GetSpend(owner storage.SpendOwner, id string, start time.Time) (storage.Money, error) {
	var spend int64
	err := s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT coalesce(max(spend), 0) FROM spend_periods
			WHERE owner = $1 AND account_id = $2 AND period_start = $3`,
			ownerCode(owner), id, start).Scan(&spend)
	})
	if err != nil {
		return 0, s.fail(fmt.Sprintf("loading spend of %c/%s", owner, id), err)
	}
	return storage.Money(spend), nil
}

// ListSpendPeriods returns the periods owner id was charged in, newest
// first, at most limit of them.
func (s *Store) ListSpendPeriods(owner storage.SpendOwner, id string, limit int) ([]storage.SpendPeriod, error) {
	return listRows(s, fmt.Sprintf("listing spend periods of %c/%s", owner, id), func(row pgx.Row) (storage.SpendPeriod, error) {
		var p storage.SpendPeriod
		var spend int64
		err := row.Scan(&p.Start, &spend)
		p.Spend = storage.Money(spend)
		return p, err
	}, `SELECT period_start, spend FROM spend_periods
		WHERE owner = $1 AND account_id = $2 ORDER BY period_start DESC LIMIT $3`,
		ownerCode(owner), id, max(limit, 0))
}
