package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// getRow runs a query for one row and scans it; no row is
// storage.ErrNotFound. doing names the operation in the error.
func getRow[T any](s *Store, doing string, scan func(pgx.Row) (T, error), query string, args ...any) (*T, error) {
	var v T
	err := s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) (err error) {
		v, err = scan(c.QueryRow(ctx, query, args...))
		return err
	})
	if err != nil {
		return nil, s.fail(doing, err)
	}
	return &v, nil
}

// listRows runs a query and scans every row. The result is never nil, so
// it encodes as an empty JSON array.
func listRows[T any](s *Store, doing string, scan func(pgx.Row) (T, error), query string, args ...any) ([]T, error) {
	out := []T{}
	err := s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.fail(doing, err)
	}
	return out, nil
}

// updateRow is the read-modify-write of UpdateUser, UpdateKey and
// UpdateBudget: in one transaction, load locks and reads the row, fn
// changes it, save writes it. An error from fn is returned as is; fn may
// run more than once (see Store.tx).
func updateRow[T any](s *Store, doing string, load func(context.Context, pgx.Tx) (T, error),
	fn func(*T) error, save func(context.Context, pgx.Tx, *T) error) (*T, error) {
	var v T
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		var err error
		if v, err = load(ctx, tx); err != nil {
			return classify(err)
		}
		if err := fn(&v); err != nil {
			return &callbackError{err: err}
		}
		return save(ctx, tx, &v)
	})
	if ce := asCallbackError(err); ce != nil {
		return nil, ce.err
	}
	if err != nil {
		return nil, s.fail(doing, err)
	}
	return &v, nil
}
