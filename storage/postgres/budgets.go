package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

const budgetColumns = `budget_id, max_budget, budget_duration_sec, duration_changes, created_at, updated_at`

// scanBudget reads a row of budgetColumns.
func scanBudget(row pgx.Row) (storage.Budget, error) {
	var b storage.Budget
	var maxBudget *int64
	var changes []byte
	err := row.Scan(&b.BudgetID, &maxBudget, &b.BudgetDurationSec, &changes, &b.CreatedAt, &b.UpdatedAt)
	if err != nil {
		return b, err
	}
	b.MaxBudget = moneyPtr(maxBudget)
	b.DurationChanges, err = decodeChanges(changes)
	return b, err
}

// budgetArgs are the values of budgetColumns for b, in order.
func budgetArgs(b *storage.Budget) ([]any, error) {
	changes, err := changesParam(b.DurationChanges)
	if err != nil {
		return nil, err
	}
	return []any{b.BudgetID, int64Ptr(b.MaxBudget), b.BudgetDurationSec, changes, b.CreatedAt, b.UpdatedAt}, nil
}

// CreateBudget stores b, failing with storage.ErrExists when its id is
// taken.
func (s *Store) CreateBudget(b *storage.Budget) error {
	if !storage.ValidID(b.BudgetID) {
		return fmt.Errorf("creating budget: invalid budget id %q", b.BudgetID)
	}
	normalizeBudget(b)
	args, err := budgetArgs(b)
	if err != nil {
		return fmt.Errorf("creating budget %s: %w", b.BudgetID, err)
	}
	err = s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `INSERT INTO budgets (`+budgetColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (budget_id) DO NOTHING`, args...)
		if err == nil && tag.RowsAffected() == 0 {
			return storage.ErrExists
		}
		return err
	})
	if err != nil {
		return s.fail("creating budget "+b.BudgetID, err)
	}
	return nil
}

// GetBudget returns the budget with the given id or storage.ErrNotFound.
func (s *Store) GetBudget(id string) (*storage.Budget, error) {
	return getRow(s, "loading budget "+id, scanBudget, `SELECT `+budgetColumns+` FROM budgets WHERE budget_id = $1`, id)
}

// ListBudgets returns budgets in id (creation) order, skipping the first
// skip and returning at most limit.
func (s *Store) ListBudgets(skip, limit int) ([]storage.Budget, error) {
	return listRows(s, "listing budgets", scanBudget, `SELECT `+budgetColumns+` FROM budgets
		ORDER BY budget_id OFFSET $1 LIMIT $2`, max(skip, 0), max(limit, 0))
}

// UpdateBudget applies fn to the stored budget and saves the result in one
// transaction, with the same contract as UpdateUser. Changes to BudgetID
// are ignored. The row lock (FOR NO KEY UPDATE) lets users join the
// budget meanwhile.
func (s *Store) UpdateBudget(id string, fn func(*storage.Budget) error) (*storage.Budget, error) {
	load := func(ctx context.Context, tx pgx.Tx) (storage.Budget, error) {
		return scanBudget(tx.QueryRow(ctx, `SELECT `+budgetColumns+` FROM budgets WHERE budget_id = $1 FOR NO KEY UPDATE`, id))
	}
	save := func(ctx context.Context, tx pgx.Tx, b *storage.Budget) error {
		b.BudgetID = id
		normalizeBudget(b)
		args, err := budgetArgs(b)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE budgets SET max_budget = $2, budget_duration_sec = $3,
			duration_changes = $4, created_at = $5, updated_at = $6 WHERE budget_id = $1`, args...)
		return err
	}
	return updateRow(s, "updating budget "+id, load, fn, save)
}

// DeleteBudget removes the budget and takes it away from every user on it
// (their BudgetID, BudgetStartedAt and NextBudgetResetAt become nil and
// UpdatedAt becomes now), in one transaction. It fails with
// storage.ErrNotFound when there is no such budget.
//
// The transaction first locks the budget row FOR UPDATE, which conflicts
// with the key-share lock that the foreign key check of a user put on the
// budget takes: from then on no user can join the budget (it waits, then
// finds the budget gone: storage.ErrBudgetMissing), and the next statement
// sees every user that joined before.
func (s *Store) DeleteBudget(id string, now time.Time) error {
	now = truncTime(now)
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		var found bool
		err := tx.QueryRow(ctx, `SELECT true FROM budgets WHERE budget_id = $1 FOR UPDATE`, id).Scan(&found)
		if err != nil {
			return classify(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET budget_id = NULL, budget_started_at = NULL,
			next_budget_reset_at = NULL, updated_at = $2 WHERE budget_id = $1`, id, now); err != nil {
			return fmt.Errorf("clearing its users: %w", err)
		}
		_, err = tx.Exec(ctx, `DELETE FROM budgets WHERE budget_id = $1`, id)
		return err
	})
	if err != nil {
		return s.fail("deleting budget "+id, err)
	}
	return nil
}
