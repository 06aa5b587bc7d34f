package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

const userColumns = `user_id, alias, budget_id, budget_started_at, next_budget_reset_at,
	blocked, created_at, updated_at, deleted_at, metadata`

// scanUser reads a row of userColumns.
func scanUser(row pgx.Row) (storage.User, error) {
	var u storage.User
	var meta []byte
	err := row.Scan(&u.UserID, &u.Alias, &u.BudgetID, &u.BudgetStartedAt, &u.NextBudgetResetAt,
		&u.Blocked, &u.CreatedAt, &u.UpdatedAt, &u.DeletedAt, &meta)
	u.Metadata = rawJSON(meta)
	return u, err
}

// userArgs are the values of userColumns for u, in order.
func userArgs(u *storage.User) ([]any, error) {
	meta, err := jsonParam(u.Metadata)
	if err != nil {
		return nil, err
	}
	return []any{u.UserID, u.Alias, u.BudgetID, u.BudgetStartedAt, u.NextBudgetResetAt,
		u.Blocked, u.CreatedAt, u.UpdatedAt, u.DeletedAt, meta}, nil
}

// CreateUser stores u. It fails with storage.ErrExists when an active user
// has the same id; a soft-deleted user with that id is replaced by u,
// which revives it. A user with a BudgetID is stored only if that budget
// exists (storage.ErrBudgetMissing): the foreign key check locks the
// budget row, so a concurrent DeleteBudget either commits first and makes
// this fail, or waits and then clears the new user.
func (s *Store) CreateUser(u *storage.User) error {
	if !storage.ValidID(u.UserID) {
		return fmt.Errorf("creating user: invalid user id %q", u.UserID)
	}
	normalizeUser(u)
	args, err := userArgs(u)
	if err != nil {
		return fmt.Errorf("creating user %s: %w", u.UserID, err)
	}
	err = s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `INSERT INTO users (`+userColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (user_id) DO UPDATE SET
				alias = EXCLUDED.alias, budget_id = EXCLUDED.budget_id,
				budget_started_at = EXCLUDED.budget_started_at,
				next_budget_reset_at = EXCLUDED.next_budget_reset_at,
				blocked = EXCLUDED.blocked, created_at = EXCLUDED.created_at,
				updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at,
				metadata = EXCLUDED.metadata
			WHERE users.deleted_at IS NOT NULL`, args...)
		if err != nil {
			return mapBudgetFK(err, u.BudgetID)
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrExists
		}
		return nil
	})
	if err != nil {
		return s.fail("creating user "+u.UserID, err)
	}
	return nil
}

// mapBudgetFK turns the violation of users.budget_id's foreign key into
// storage.ErrBudgetMissing.
func mapBudgetFK(err error, budgetID *string) error {
	if isCode(err, codeForeignKeyViolation) && budgetID != nil {
		return fmt.Errorf("budget %s: %w", *budgetID, storage.ErrBudgetMissing)
	}
	return err
}

// GetUser returns the user with the given id, soft-deleted or not (check
// User.Deleted). It fails with storage.ErrNotFound when there is none.
func (s *Store) GetUser(id string) (*storage.User, error) {
	return getRow(s, "loading user "+id, scanUser, `SELECT `+userColumns+` FROM users WHERE user_id = $1`, id)
}

// ListUsers returns active users in ascending byte order of their ids,
// skipping the first skip of them and returning at most limit.
func (s *Store) ListUsers(skip, limit int) ([]storage.User, error) {
	return listRows(s, "listing users", scanUser, `SELECT `+userColumns+` FROM users
		WHERE deleted_at IS NULL ORDER BY user_id OFFSET $1 LIMIT $2`, max(skip, 0), max(limit, 0))
}

// UpdateUser applies fn to the stored user and saves the result in one
// transaction that holds the user's row lock. fn also sees soft-deleted
// users and decides what to do with them; it may run more than once when
// the transaction loses a deadlock race, so it must not have side
// effects. An error from fn aborts the update and is returned as is.
// Changes to UserID are ignored. It fails with storage.ErrNotFound when
// the user does not exist, and with storage.ErrBudgetMissing when fn puts
// the user on a budget that does not exist (or is being deleted: the
// foreign key check waits for the deletion and then fails).
func (s *Store) UpdateUser(id string, fn func(*storage.User) error) (*storage.User, error) {
	load := func(ctx context.Context, tx pgx.Tx) (storage.User, error) {
		return scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = $1 FOR UPDATE`, id))
	}
	save := func(ctx context.Context, tx pgx.Tx, u *storage.User) error {
		u.UserID = id
		normalizeUser(u)
		args, err := userArgs(u)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE users SET alias = $2, budget_id = $3, budget_started_at = $4,
			next_budget_reset_at = $5, blocked = $6, created_at = $7, updated_at = $8,
			deleted_at = $9, metadata = $10
			WHERE user_id = $1`, args...)
		return mapBudgetFK(err, u.BudgetID)
	}
	return updateRow(s, "updating user "+id, load, fn, save)
}

// DeleteUser soft deletes the user: DeletedAt and UpdatedAt become now and
// every key of the user is deactivated, in one transaction. It fails with
// storage.ErrNotFound when the user does not exist or is already deleted.
// The user's row lock orders it with CreateKey and UpdateKey, which lock
// the owner's row while they check it: never an active key of a deleted
// user.
func (s *Store) DeleteUser(id string, now time.Time) error {
	now = truncTime(now)
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET deleted_at = $2, updated_at = $2
			WHERE user_id = $1 AND deleted_at IS NULL`, id, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		// A new statement, so a new snapshot: it sees every key committed
		// before this transaction got the user's lock.
		_, err = tx.Exec(ctx, `UPDATE api_keys SET is_active = false WHERE user_id = $1 AND is_active`, id)
		return err
	})
	if err != nil {
		return s.fail("deleting user "+id, err)
	}
	return nil
}
