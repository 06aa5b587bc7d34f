package postgres

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

const usageColumns = `id, request_id, user_id, coalesce(api_key_id, ''), coalesce(end_user, ''), ts,
	model, provider, endpoint, prompt_tokens, completion_tokens, total_tokens, cost, status,
	status_code, latency_ms, coalesce(error_message, ''), usage_source, exceeded_reservation,
	user_period, key_period`

func scanUsage(row pgx.Row) (storage.UsageRecord, error) {
	var r storage.UsageRecord
	var cost int64
	var userPeriod, keyPeriod *time.Time
	err := row.Scan(&r.ID, &r.RequestID, &r.UserID, &r.APIKeyID, &r.EndUser, &r.Timestamp,
		&r.Model, &r.Provider, &r.Endpoint, &r.PromptTokens, &r.CompletionTokens, &r.TotalTokens, &cost, &r.Status,
		&r.StatusCode, &r.LatencyMS, &r.ErrorMessage, &r.UsageSource, &r.ExceededReservation,
		&userPeriod, &keyPeriod)
	r.Cost = storage.Money(cost)
	if userPeriod != nil {
		r.UserPeriod = *userPeriod
	}
	if keyPeriod != nil {
		r.KeyPeriod = *keyPeriod
	}
	return r, err
}

// ListUsage returns the records matching f, newest first ((timestamp, id)
// descending), skipping the first skip matches and returning at most
// limit. Every filter combination the API offers is served by an index in
// that order (see 0001_schema.sql), so a page costs skip + limit index
// entries.
func (s *Store) ListUsage(f storage.UsageFilter, skip, limit int) ([]storage.UsageRecord, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if f.UserID != "" {
		add("user_id = $?", f.UserID)
	}
	if f.APIKeyID != "" {
		add("api_key_id = $?", f.APIKeyID)
	}
	if f.Model != "" {
		add("model = $?", f.Model)
	}
	if f.EndUser != "" {
		add("end_user = $?", f.EndUser)
	}
	if f.Status != "" {
		add("status = $?", f.Status)
	}
	if !f.Start.IsZero() {
		add("ts >= $?", f.Start)
	}
	if !f.End.IsZero() {
		add("ts <= $?", f.End)
	}
	query := `SELECT ` + usageColumns + ` FROM usage_records`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, max(skip, 0), max(limit, 0))
	query += fmt.Sprintf(` ORDER BY ts DESC, id DESC OFFSET $%d LIMIT $%d`, len(args)-1, len(args))

	return listRows(s, "listing usage", scanUsage, query, args...)
}
