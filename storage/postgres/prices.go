package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

const priceColumns = `model_key, input_price_per_million, output_price_per_million, created_at, updated_at`

func scanPrice(row pgx.Row) (storage.Price, error) {
	var p storage.Price
	err := row.Scan(&p.ModelKey, &p.InputPricePerMillion, &p.OutputPricePerMillion, &p.CreatedAt, &p.UpdatedAt)
	return p, err
}

// PutPrice inserts or replaces the price of p.ModelKey. When a price is
// already stored its CreatedAt is kept. It returns the value now stored.
func (s *Store) PutPrice(p *storage.Price) (*storage.Price, error) {
	if p.ModelKey == "" {
		return nil, errors.New("storing price: empty model key")
	}
	return getRow(s, "storing price "+p.ModelKey, scanPrice, `INSERT INTO model_pricing (`+priceColumns+`)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (model_key) DO UPDATE SET
			input_price_per_million = EXCLUDED.input_price_per_million,
			output_price_per_million = EXCLUDED.output_price_per_million,
			updated_at = EXCLUDED.updated_at
		RETURNING `+priceColumns,
		p.ModelKey, p.InputPricePerMillion, p.OutputPricePerMillion, truncTime(p.CreatedAt), truncTime(p.UpdatedAt))
}

// SeedPrice stores p only when no price exists for p.ModelKey, so that
// built-in defaults never overwrite an operator's price. It reports
// whether it stored p.
func (s *Store) SeedPrice(p *storage.Price) (bool, error) {
	if p.ModelKey == "" {
		return false, errors.New("seeding price: empty model key")
	}
	var inserted bool
	err := s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `INSERT INTO model_pricing (`+priceColumns+`) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (model_key) DO NOTHING`,
			p.ModelKey, p.InputPricePerMillion, p.OutputPricePerMillion, truncTime(p.CreatedAt), truncTime(p.UpdatedAt))
		inserted = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, s.fail("seeding price "+p.ModelKey, err)
	}
	return inserted, nil
}

// GetPrice returns the price of modelKey ("provider:model") or
// storage.ErrNotFound.
func (s *Store) GetPrice(modelKey string) (*storage.Price, error) {
	return getRow(s, "loading price "+modelKey, scanPrice, `SELECT `+priceColumns+` FROM model_pricing WHERE model_key = $1`, modelKey)
}

// ListPrices returns prices in model key order, skipping the first skip
// and returning at most limit.
func (s *Store) ListPrices(skip, limit int) ([]storage.Price, error) {
	return listRows(s, "listing prices", scanPrice, `SELECT `+priceColumns+` FROM model_pricing
		ORDER BY model_key OFFSET $1 LIMIT $2`, max(skip, 0), max(limit, 0))
}

// DeletePrice removes the price of modelKey, failing with
// storage.ErrNotFound when there is none.
func (s *Store) DeletePrice(modelKey string) error {
	err := s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `DELETE FROM model_pricing WHERE model_key = $1`, modelKey)
		if err == nil && tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return s.fail("deleting price "+modelKey, err)
	}
	return nil
}
