package transfer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
)

// anyLLMKeyPrefix stands for the key prefix of an imported key: any-llm
// stores only the hash of a secret, and every secret starts with it.
const anyLLMKeyPrefix = "gw-"

// FromAnyLLM imports the any-llm-gateway database at srcURL into dst: its
// budgets, users (with their current spend as the spend of their current
// period), keys (whose key_hash, the hex SHA-256 of the secret, is ours
// too, so the keys keep working), prices, usage logs and the spend of past
// periods from budget_reset_logs. Money, float dollars there, becomes
// exact nano-dollars. A key without a user gets the virtual user
// apikey-<id>, as a key created here without one would.
func FromAnyLLM(ctx context.Context, srcURL string, dst *postgres.Store) (Counts, error) {
	conn, err := pgx.Connect(ctx, srcURL)
	if err != nil {
		return Counts{}, redact(srcURL, fmt.Errorf("connecting to the any-llm database: %w: %w", postgres.ErrUnavailable, err))
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return Counts{}, redact(srcURL, fmt.Errorf("reading the any-llm database: %w", err))
	}
	defer func() { _ = tx.Rollback(context.Background()) }()

	r := &anyLLMReader{tx: tx, w: &writer{dst: dst}}
	for _, step := range []struct {
		what string
		fn   func(context.Context) error
	}{
		{"budgets", r.budgets},
		{"users", r.users},
		{"api_keys", r.keys},
		{"model_pricing", r.prices},
		{"budget_reset_logs", r.resets},
		{"usage_logs", r.usage},
	} {
		if err := step.fn(ctx); err != nil {
			return r.w.counts, redact(srcURL, fmt.Errorf("importing %s: %w", step.what, err))
		}
	}
	if err := r.w.flush(); err != nil {
		return r.w.counts, err
	}
	return r.w.counts, nil
}

// anyLLMReader reads the any-llm tables into a writer.
type anyLLMReader struct {
	tx pgx.Tx
	w  *writer
	// durations are the budgets' durations, keyUsers the keys' users.
	durations map[string]int64
	keyUsers  map[string]string
}

// each runs query and hands every row to fn, flushing full batches.
func (r *anyLLMReader) each(ctx context.Context, query string, fn func(pgx.Rows) error) error {
	rows, err := r.tx.Query(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
		if err := r.w.flushFull(); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (r *anyLLMReader) budgets(ctx context.Context) error {
	r.durations = make(map[string]int64)
	return r.each(ctx, `SELECT budget_id, max_budget, budget_duration_sec, created_at, updated_at FROM budgets`,
		func(rows pgx.Rows) error {
			var b storage.Budget
			var maxBudget *float64
			if err := rows.Scan(&b.BudgetID, &maxBudget, &b.BudgetDurationSec, &b.CreatedAt, &b.UpdatedAt); err != nil {
				return err
			}
			b.MaxBudget = dollars(maxBudget)
			if b.BudgetDurationSec != nil {
				r.durations[b.BudgetID] = *b.BudgetDurationSec
			}
			r.w.im.Budgets = append(r.w.im.Budgets, b)
			return nil
		})
}

func (r *anyLLMReader) users(ctx context.Context) error {
	return r.each(ctx, `SELECT user_id, alias, coalesce(spend, 0), budget_id, budget_started_at,
		next_budget_reset_at, coalesce(blocked, false), coalesce(created_at, now()), coalesce(updated_at, created_at, now()),
		deleted_at, metadata::text FROM users`,
		func(rows pgx.Rows) error {
			var u storage.User
			var spend float64
			var meta *string
			if err := rows.Scan(&u.UserID, &u.Alias, &spend, &u.BudgetID, &u.BudgetStartedAt, &u.NextBudgetResetAt,
				&u.Blocked, &u.CreatedAt, &u.UpdatedAt, &u.DeletedAt, &meta); err != nil {
				return err
			}
			u.Metadata = metadata(meta)
			r.w.im.Users = append(r.w.im.Users, u)
			if spend > 0 {
				// The current period: from budget_started_at (any-llm's
				// last reset); an account without a budget has one period.
				var start time.Time
				if u.BudgetID != nil {
					start = u.CreatedAt
					if u.BudgetStartedAt != nil {
						start = *u.BudgetStartedAt
					}
				}
				r.w.im.Spend = append(r.w.im.Spend, storage.OwnedSpend{Owner: storage.SpendOfUser, ID: u.UserID,
					SpendPeriod: storage.SpendPeriod{Start: start, Spend: storage.Dollars(spend)}})
			}
			return nil
		})
}

func (r *anyLLMReader) keys(ctx context.Context) error {
	r.keyUsers = make(map[string]string)
	return r.each(ctx, `SELECT id, key_hash, key_name, user_id, coalesce(created_at, now()), last_used_at, expires_at,
		coalesce(is_active, true), metadata::text FROM api_keys`,
		func(rows pgx.Rows) error {
			var k storage.APIKey
			var userID, meta *string
			if err := rows.Scan(&k.ID, &k.KeyHash, &k.KeyName, &userID, &k.CreatedAt, &k.LastUsedAt, &k.ExpiresAt,
				&k.IsActive, &meta); err != nil {
				return err
			}
			k.KeyHash = strings.ToLower(k.KeyHash)
			k.KeyPrefix = anyLLMKeyPrefix
			k.Metadata = metadata(meta)
			if userID != nil {
				k.UserID = *userID
			} else {
				k.UserID = "apikey-" + k.ID
				name := "unnamed"
				if k.KeyName != nil {
					name = *k.KeyName
				}
				alias := "Virtual user for API key: " + name
				r.w.im.Users = append(r.w.im.Users, storage.User{UserID: k.UserID, Alias: &alias,
					CreatedAt: k.CreatedAt, UpdatedAt: k.CreatedAt})
			}
			r.keyUsers[k.ID] = k.UserID
			r.w.im.Keys = append(r.w.im.Keys, k)
			return nil
		})
}

func (r *anyLLMReader) prices(ctx context.Context) error {
	return r.each(ctx, `SELECT model_key, input_price_per_million, output_price_per_million,
		coalesce(created_at, now()), coalesce(updated_at, created_at, now()) FROM model_pricing`,
		func(rows pgx.Rows) error {
			var p storage.Price
			if err := rows.Scan(&p.ModelKey, &p.InputPricePerMillion, &p.OutputPricePerMillion, &p.CreatedAt, &p.UpdatedAt); err != nil {
				return err
			}
			r.w.im.Prices = append(r.w.im.Prices, p)
			return nil
		})
}

// resets turns each reset log into the spend of the period it closed,
// which started at the user's previous reset, or (the first) one budget
// duration before it.
func (r *anyLLMReader) resets(ctx context.Context) error {
	last := make(map[string]time.Time)
	return r.each(ctx, `SELECT user_id, budget_id, coalesce(previous_spend, 0), reset_at FROM budget_reset_logs
		WHERE user_id IS NOT NULL ORDER BY user_id, reset_at, id`,
		func(rows pgx.Rows) error {
			var userID, budgetID string
			var spend float64
			var at time.Time
			if err := rows.Scan(&userID, &budgetID, &spend, &at); err != nil {
				return err
			}
			start, ok := last[userID]
			last[userID] = at
			if !ok {
				d, known := r.durations[budgetID]
				if !known {
					return nil // the period's start is not known
				}
				start = at.Add(-time.Duration(d) * time.Second)
			}
			if spend > 0 {
				r.w.im.Spend = append(r.w.im.Spend, storage.OwnedSpend{Owner: storage.SpendOfUser, ID: userID,
					SpendPeriod: storage.SpendPeriod{Start: start, Spend: storage.Dollars(spend)}})
			}
			return nil
		})
}

func (r *anyLLMReader) usage(ctx context.Context) error {
	return r.each(ctx, `SELECT id, api_key_id, user_id, "timestamp", model, coalesce(provider, ''), coalesce(endpoint, ''),
		coalesce(prompt_tokens, 0), coalesce(completion_tokens, 0), coalesce(total_tokens, 0), coalesce(cost, 0),
		coalesce(status, ''), coalesce(error_message, '') FROM usage_logs ORDER BY "timestamp", id`,
		func(rows pgx.Rows) error {
			var u storage.UsageRecord
			var keyID, userID *string
			var cost float64
			if err := rows.Scan(&u.ID, &keyID, &userID, &u.Timestamp, &u.Model, &u.Provider, &u.Endpoint,
				&u.PromptTokens, &u.CompletionTokens, &u.TotalTokens, &cost, &u.Status, &u.ErrorMessage); err != nil {
				return err
			}
			u.RequestID = u.ID
			if keyID != nil {
				u.APIKeyID = *keyID
			}
			switch {
			case userID != nil:
				u.UserID = *userID
			case keyID != nil:
				u.UserID = r.keyUsers[*keyID]
			}
			u.Cost = storage.Dollars(cost)
			u.UsageSource = "provider"
			if u.Status == "success" {
				u.StatusCode = 200
			}
			r.w.im.Usage = append(r.w.im.Usage, u)
			return nil
		})
}

// dollars converts a nullable float amount of dollars.
func dollars(v *float64) *storage.Money {
	if v == nil {
		return nil
	}
	m := storage.Dollars(*v)
	return &m
}

// metadata keeps a JSON object; null, empty and non-JSON values become none.
func metadata(v *string) json.RawMessage {
	if v == nil || !json.Valid([]byte(*v)) || *v == "null" || *v == "{}" {
		return nil
	}
	return json.RawMessage(*v)
}

// redact removes srcURL's password from err's message.
func redact(srcURL string, err error) error {
	u, perr := url.Parse(srcURL)
	if perr != nil || u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), pw, "xxxxx"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
