package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

const keyColumns = `id, key_hash, key_prefix, key_name, user_id, created_at, last_used_at,
	expires_at, is_active, metadata, allowed_models, max_budget, budget_duration_sec,
	budget_started_at, rpm_limit, tpm_limit, duration_changes`

// scanKey reads a row of keyColumns.
func scanKey(row pgx.Row) (storage.APIKey, error) {
	var k storage.APIKey
	var meta, changes []byte
	var maxBudget *int64
	err := row.Scan(&k.ID, &k.KeyHash, &k.KeyPrefix, &k.KeyName, &k.UserID, &k.CreatedAt, &k.LastUsedAt,
		&k.ExpiresAt, &k.IsActive, &meta, &k.AllowedModels, &maxBudget, &k.BudgetDurationSec,
		&k.BudgetStartedAt, &k.RPMLimit, &k.TPMLimit, &changes)
	if err != nil {
		return k, err
	}
	k.Metadata = rawJSON(meta)
	k.MaxBudget = moneyPtr(maxBudget)
	if len(k.AllowedModels) == 0 {
		k.AllowedModels = nil
	}
	k.DurationChanges, err = decodeChanges(changes)
	return k, err
}

// keyArgs are the values of keyColumns for k, in order.
func keyArgs(k *storage.APIKey) ([]any, error) {
	meta, err := jsonParam(k.Metadata)
	if err != nil {
		return nil, err
	}
	changes, err := changesParam(k.DurationChanges)
	if err != nil {
		return nil, err
	}
	var models any
	if len(k.AllowedModels) > 0 {
		models = k.AllowedModels
	}
	return []any{k.ID, k.KeyHash, k.KeyPrefix, k.KeyName, k.UserID, k.CreatedAt, k.LastUsedAt,
		k.ExpiresAt, k.IsActive, meta, models, int64Ptr(k.MaxBudget), k.BudgetDurationSec,
		k.BudgetStartedAt, k.RPMLimit, k.TPMLimit, changes}, nil
}

// lockKeyOwner takes a share lock on the user's row and reports whether
// the user may own keys: storage.ErrNotFound when it does not exist,
// storage.ErrUserDeleted when it is soft deleted. The lock makes a
// concurrent DeleteUser wait until this transaction commits, after which
// it sees (and deactivates) the key this transaction wrote.
func lockKeyOwner(ctx context.Context, tx pgx.Tx, userID string) error {
	var deleted bool
	err := tx.QueryRow(ctx, `SELECT deleted_at IS NOT NULL FROM users WHERE user_id = $1 FOR SHARE`, userID).Scan(&deleted)
	if err != nil {
		return classify(err)
	}
	if deleted {
		return storage.ErrUserDeleted
	}
	return nil
}

// CreateKey stores k. When k's user does not exist, newUser (whose UserID
// must equal k.UserID) is created with it in the same transaction; with a
// nil newUser CreateKey fails with storage.ErrNotFound instead. It fails
// with storage.ErrUserDeleted when the user is soft deleted, and with
// storage.ErrExists when the key id or hash is taken. The owner is checked
// under its row lock (see lockKeyOwner), so a DeleteUser running at the
// same time either commits first and makes this fail, or deactivates the
// new key.
func (s *Store) CreateKey(k *storage.APIKey, newUser *storage.User) error {
	if err := storage.ValidateKey(k); err != nil {
		return fmt.Errorf("creating key: %w", err)
	}
	if newUser != nil && newUser.UserID != k.UserID {
		return fmt.Errorf("creating key %s: new user %q is not the key's user %q", k.ID, newUser.UserID, k.UserID)
	}
	normalizeKey(k)
	args, err := keyArgs(k)
	if err != nil {
		return fmt.Errorf("creating key %s: %w", k.ID, err)
	}
	var userArgList []any
	if newUser != nil {
		normalizeUser(newUser)
		if userArgList, err = userArgs(newUser); err != nil {
			return fmt.Errorf("creating key %s: new user: %w", k.ID, err)
		}
	}
	err = s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if newUser != nil {
			_, err := tx.Exec(ctx, `INSERT INTO users (`+userColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
				ON CONFLICT (user_id) DO NOTHING`, userArgList...)
			if err != nil {
				return mapBudgetFK(err, newUser.BudgetID)
			}
		}
		if err := lockKeyOwner(ctx, tx, k.UserID); err != nil {
			return fmt.Errorf("user %s: %w", k.UserID, err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (`+keyColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`, args...)
		if isCode(err, codeUniqueViolation) {
			return storage.ErrExists
		}
		return err
	})
	if err != nil {
		return s.fail("creating key "+k.ID, err)
	}
	return nil
}

// GetKey returns the key with the given id or storage.ErrNotFound.
func (s *Store) GetKey(id string) (*storage.APIKey, error) {
	return getRow(s, "loading key "+id, scanKey, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id)
}

// GetKeyByHash returns the key whose KeyHash is hash (a unique index
// lookup), or storage.ErrNotFound.
func (s *Store) GetKeyByHash(hash string) (*storage.APIKey, error) {
	// The hash is a credential digest; keep it out of error messages.
	return getRow(s, "loading key by hash", scanKey, `SELECT `+keyColumns+` FROM api_keys WHERE key_hash = $1`, hash)
}

// ListKeys returns keys, active or not, in id (creation) order, skipping
// the first skip and returning at most limit.
func (s *Store) ListKeys(skip, limit int) ([]storage.APIKey, error) {
	return listRows(s, "listing keys", scanKey, `SELECT `+keyColumns+` FROM api_keys ORDER BY id OFFSET $1 LIMIT $2`,
		max(skip, 0), max(limit, 0))
}

// UpdateKey applies fn to the stored key and saves the result in one
// transaction, with the same contract as UpdateUser. Changes to ID are
// ignored. A new KeyHash (rotation) taken by another key fails with
// storage.ErrExists. A new owner must exist (storage.ErrNotFound) and be
// active (storage.ErrUserDeleted); a key is made active only while its
// owner is not deleted (storage.ErrUserDeleted). Both checks hold the
// owner's row lock, so the update and a concurrent DeleteUser of that
// user are ordered: never an active key of a deleted user.
func (s *Store) UpdateKey(id string, fn func(*storage.APIKey) error) (*storage.APIKey, error) {
	var oldUser string
	var wasActive bool
	load := func(ctx context.Context, tx pgx.Tx) (storage.APIKey, error) {
		k, err := scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1 FOR UPDATE`, id))
		oldUser, wasActive = k.UserID, k.IsActive
		return k, err
	}
	save := func(ctx context.Context, tx pgx.Tx, k *storage.APIKey) error {
		k.ID = id
		if err := storage.ValidateKey(k); err != nil {
			return err
		}
		normalizeKey(k)
		switch {
		case k.UserID != oldUser:
			if err := lockKeyOwner(ctx, tx, k.UserID); err != nil {
				return fmt.Errorf("new owner %s: %w", k.UserID, err)
			}
		case k.IsActive && !wasActive:
			err := lockKeyOwner(ctx, tx, k.UserID)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("owner %s: %w", k.UserID, err)
			}
		}
		args, err := keyArgs(k)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE api_keys SET key_hash = $2, key_prefix = $3, key_name = $4,
			user_id = $5, created_at = $6, last_used_at = $7, expires_at = $8, is_active = $9,
			metadata = $10, allowed_models = $11, max_budget = $12, budget_duration_sec = $13,
			budget_started_at = $14, rpm_limit = $15, tpm_limit = $16, duration_changes = $17
			WHERE id = $1`, args...)
		if isCode(err, codeUniqueViolation) {
			return fmt.Errorf("new key hash: %w", storage.ErrExists)
		}
		return err
	}
	return updateRow(s, "updating key "+id, load, fn, save)
}

// DeleteKey removes the key and its spend periods in one transaction.
// Usage records that name the key are kept. It fails with
// storage.ErrNotFound when there is no such key.
func (s *Store) DeleteKey(id string) error {
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM api_keys WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		_, err = tx.Exec(ctx, `DELETE FROM spend_periods WHERE owner = 'k' AND account_id = $1`, id)
		return err
	})
	if err != nil {
		return s.fail("deleting key "+id, err)
	}
	return nil
}

// TouchKey records that the key was used at t. It never moves LastUsedAt
// backwards, and a missing key is not an error: it may have been deleted
// while the request that used it was in flight.
func (s *Store) TouchKey(id string, t time.Time) error {
	t = truncTime(t)
	err := s.run(context.Background(), func(ctx context.Context, c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `UPDATE api_keys SET last_used_at = $2
			WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`, id, t)
		return err
	})
	if err != nil {
		return s.fail("touching key "+id, err)
	}
	return nil
}
