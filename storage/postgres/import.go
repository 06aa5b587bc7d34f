package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// Import is a batch of records to copy into the store as they are (see
// Store.Import).
type Import struct {
	Budgets []storage.Budget
	Users   []storage.User
	Keys    []storage.APIKey
	Prices  []storage.Price
	Spend   []storage.OwnedSpend
	Usage   []storage.UsageRecord
	// Summaries are usage summary rows to copy as they are. With
	// CarriesSummaries the usage records of the import (of every batch of
	// one copy) add nothing to the summaries: the source's rows, which
	// also count records it no longer holds, are copied instead.
	Summaries        []storage.SummaryRow
	CarriesSummaries bool
}

// Len is the number of records in the batch.
func (im *Import) Len() int {
	return len(im.Budgets) + len(im.Users) + len(im.Keys) + len(im.Prices) + len(im.Spend) + len(im.Usage) + len(im.Summaries)
}

// ImportCounts are the records of each kind an import inserted.
type ImportCounts struct {
	Budgets int64 `json:"budgets"`
	Users   int64 `json:"users"`
	Keys    int64 `json:"keys"`
	Prices  int64 `json:"prices"`
	Spend   int64 `json:"spend_periods"`
	Usage   int64 `json:"usage_records"`
}

// Add adds o to c.
func (c *ImportCounts) Add(o ImportCounts) {
	c.Budgets += o.Budgets
	c.Users += o.Users
	c.Keys += o.Keys
	c.Prices += o.Prices
	c.Spend += o.Spend
	c.Usage += o.Usage
}

// Import inserts the records of im in one transaction, in the order of
// their references (budgets, users, keys, prices, spend periods, usage),
// as they are: a record whose key (id, key hash, model key, or owner and
// period of a spend period) is already stored is skipped, and usage
// records charge nothing (their spend comes with the spend periods). An
// import run twice therefore inserts nothing the second time. It returns
// how many records of each kind were inserted.
func (s *Store) Import(im Import) (ImportCounts, error) {
	type row struct {
		count *int64
		sql   string
		args  []any
	}
	var counts ImportCounts
	var rows []row
	add := func(count *int64, sql string, args []any, err error) error {
		rows = append(rows, row{count, sql, args})
		return err
	}
	for i := range im.Budgets {
		b := &im.Budgets[i]
		normalizeBudget(b)
		args, err := budgetArgs(b)
		if err := add(&counts.Budgets, `INSERT INTO budgets (`+budgetColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT DO NOTHING`, args, err); err != nil {
			return ImportCounts{}, fmt.Errorf("importing budget %s: %w", b.BudgetID, err)
		}
	}
	for i := range im.Users {
		u := &im.Users[i]
		normalizeUser(u)
		args, err := userArgs(u)
		if err := add(&counts.Users, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT DO NOTHING`, args, err); err != nil {
			return ImportCounts{}, fmt.Errorf("importing user %s: %w", u.UserID, err)
		}
	}
	for i := range im.Keys {
		k := &im.Keys[i]
		normalizeKey(k)
		args, err := keyArgs(k)
		if err := add(&counts.Keys, `INSERT INTO api_keys (`+keyColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
			ON CONFLICT DO NOTHING`, args, err); err != nil {
			return ImportCounts{}, fmt.Errorf("importing key %s: %w", k.ID, err)
		}
	}
	for _, p := range im.Prices {
		rows = append(rows, row{&counts.Prices, `INSERT INTO model_pricing (` + priceColumns + `) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`, []any{p.ModelKey, p.InputPricePerMillion, p.OutputPricePerMillion,
			truncTime(p.CreatedAt), truncTime(p.UpdatedAt)}})
	}
	for _, sp := range im.Spend {
		rows = append(rows, row{&counts.Spend, `INSERT INTO spend_periods (owner, account_id, period_start, spend)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			[]any{string(rune(sp.Owner)), sp.ID, sp.Start.UTC(), int64(sp.Spend)}})
	}
	for _, r := range im.Usage {
		rows = append(rows, row{&counts.Usage, `INSERT INTO usage_records (id, request_id, user_id, api_key_id,
			end_user, ts, model, provider, endpoint, prompt_tokens, completion_tokens, total_tokens, cost,
			status, status_code, latency_ms, error_message, usage_source, exceeded_reservation, user_period, key_period)
			VALUES ($1, $2, $3, nullif($4, ''), nullif($5, ''), $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
				nullif($17, ''), $18, $19, $20, $21)
			ON CONFLICT DO NOTHING`,
			[]any{r.ID, r.RequestID, r.UserID, r.APIKeyID, r.EndUser, truncTime(r.Timestamp), r.Model, r.Provider,
				r.Endpoint, r.PromptTokens, r.CompletionTokens, r.TotalTokens, int64(r.Cost), r.Status,
				int32(r.StatusCode), r.LatencyMS, r.ErrorMessage, r.UsageSource, r.ExceededReservation,
				optionalTime(truncTime(r.UserPeriod)), optionalTime(truncTime(r.KeyPeriod))}})
	}
	var uncounted int64
	for _, sr := range im.Summaries {
		sql, args := summaryImportSQL(sr)
		rows = append(rows, row{&uncounted, sql, args})
	}
	if len(rows) == 0 {
		return counts, nil
	}
	if im.CarriesSummaries {
		rows = append([]row{{&uncounted, summariesCarriedSQL, nil}}, rows...)
	} else if len(im.Usage) > 0 {
		// The trigger notes every record inserted above in the backlog, one
		// row each; they are folded into the summaries before the import
		// commits, rather than left to the folders a row at a time.
		rows = append(rows, row{&uncounted, `SELECT gateway_fold_usage_summaries($1, true)`, []any{foldLimit}})
	}
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		counts = ImportCounts{} // a retry counts afresh
		var batch pgx.Batch
		for _, r := range rows {
			batch.Queue(r.sql, r.args...)
		}
		results := tx.SendBatch(ctx, &batch)
		for _, r := range rows {
			tag, err := results.Exec()
			if err != nil {
				_ = results.Close()
				return err
			}
			*r.count += tag.RowsAffected()
		}
		return results.Close()
	})
	if err != nil {
		return ImportCounts{}, s.fail("importing records", err)
	}
	return counts, nil
}
