package postgres

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/llmgateway/caddy-llm-gateway/internal/usagesum"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// SummarizeUsage answers a usage summary from the summary tables
// (0004_usage_summary.sql); it reads no usage record. It first adds to
// them every record committed so far that they lack (the backlog: see
// summary_backlog.go), so the answer counts every record committed before
// the call. The rows of the planned ranges (usagesum.PlanQuery) are
// filtered and rolled up in the database, so only the answer's buckets
// travel.
func (s *Store) SummarizeUsage(q usagesum.Query) ([]usagesum.Bucket, error) {
	query, args := summarySQL(q, usagesum.PlanQuery(q))
	if query == "" {
		return []usagesum.Bucket{}, nil
	}
	if _, err := s.fold(true); err != nil {
		return nil, err
	}
	out, err := listRows(s, "summarizing usage", scanBucket, query, args...)
	if err != nil {
		return nil, err
	}
	usagesum.Sort(out)
	return out, nil
}

func scanBucket(row pgx.Row) (usagesum.Bucket, error) {
	var b usagesum.Bucket
	err := row.Scan(&b.Start, &b.Group, &b.Requests, &b.Errors, &b.PromptTokens,
		&b.CompletionTokens, &b.TotalTokens, &b.Cost)
	b.Start = b.Start.UTC()
	return b, err
}

// summaryGroups is the SQL of each grouping's group name (NULL: the null
// group), over the columns of summaryRows.
var summaryGroups = map[usagesum.GroupBy]string{
	usagesum.None:     `NULL::text`,
	usagesum.Model:    `provider || ':' || model`,
	usagesum.Provider: `provider`,
	usagesum.UserID:   `user_id`,
	usagesum.APIKeyID: `nullif(api_key_id, '')`,
	usagesum.EndUser:  `nullif(end_user, '')`,
}

// summarySQL builds the statement answering q by plan; empty when the plan
// reads nothing.
func summarySQL(q usagesum.Query, plan usagesum.Plan) (string, []any) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var parts []string
	if !plan.Models.Empty() {
		parts = append(parts, fmt.Sprintf(`SELECT hour AS start, provider, model, '' AS user_id, '' AS api_key_id,
			'' AS end_user, requests, errors, prompt_tokens, completion_tokens, total_tokens, cost
			FROM usage_summary_models WHERE hour >= %s AND hour < %s`, arg(plan.Models.From), arg(plan.Models.To)))
	}
	if !plan.Days.Empty() {
		parts = append(parts, fmt.Sprintf(`SELECT day AS start, provider, model, user_id, api_key_id, '' AS end_user,
			requests, errors, prompt_tokens, completion_tokens, total_tokens, cost
			FROM usage_summary_daily WHERE day >= %s AND day < %s`, arg(plan.Days.From), arg(plan.Days.To)))
	}
	for _, hr := range plan.Hours {
		parts = append(parts, fmt.Sprintf(`SELECT hour AS start, provider, model, user_id, api_key_id, end_user,
			requests, errors, prompt_tokens, completion_tokens, total_tokens, cost
			FROM usage_summary_hourly WHERE hour >= %s AND hour < %s`, arg(hr.From), arg(hr.To)))
	}
	if len(parts) == 0 {
		return "", nil
	}
	var where []string
	f := q.Filter
	if f.UserID != "" {
		where = append(where, "user_id = "+arg(f.UserID))
	}
	if f.APIKeyID != "" {
		where = append(where, "api_key_id = "+arg(f.APIKeyID))
	}
	if f.EndUser != "" {
		where = append(where, "end_user = "+arg(f.EndUser))
	}
	if f.Model != "" {
		m := arg(f.Model)
		where = append(where, fmt.Sprintf("(model = %s OR provider || ':' || model = %s)", m, m))
	}
	group := summaryGroups[q.GroupBy]
	sql := fmt.Sprintf(`SELECT date_trunc(%s, start, 'UTC') AS bucket, %s AS grp,
		sum(requests)::bigint, sum(errors)::bigint, sum(prompt_tokens)::bigint,
		sum(completion_tokens)::bigint, sum(total_tokens)::bigint, sum(cost)::bigint
		FROM (%s) AS r`, arg(string(intervalOrDay(q.Interval))), group, strings.Join(parts, " UNION ALL "))
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	return sql + " GROUP BY 1, 2", args
}

func intervalOrDay(iv usagesum.Interval) usagesum.Interval {
	if iv == "" {
		return usagesum.Day
	}
	return iv
}

// summariesCarriedSQL tells the usage_records trigger to leave the records
// of the rest of the transaction out of the summaries' backlog: an import
// that copies its source's summary rows (see Import.CarriesSummaries).
const summariesCarriedSQL = `SELECT set_config('llm_gateway.summaries_carried', 'on', true)`

// summaryImportSQL is the statement that copies one summary row, skipped
// when its table has the row already (a copy run again).
func summaryImportSQL(r storage.SummaryRow) (string, []any) {
	t := r.Totals
	totals := []any{t.Requests, t.Errors, t.PromptTokens, t.CompletionTokens, t.TotalTokens, t.Cost}
	const cols = `requests, errors, prompt_tokens, completion_tokens, total_tokens, cost`
	d, start := r.Dims, r.Start.UTC()
	switch r.Family {
	case storage.SummaryModels:
		return `INSERT INTO usage_summary_models (hour, provider, model, ` + cols + `)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
			append([]any{start, d.Provider, d.Model}, totals...)
	case storage.SummaryDays:
		return `INSERT INTO usage_summary_daily (day, provider, model, user_id, api_key_id, ` + cols + `)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`,
			append([]any{start, d.Provider, d.Model, d.UserID, d.APIKeyID}, totals...)
	}
	return `INSERT INTO usage_summary_hourly (hour, provider, model, user_id, api_key_id, end_user, ` + cols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING`,
		append([]any{start, d.Provider, d.Model, d.UserID, d.APIKeyID, d.EndUser}, totals...)
}
