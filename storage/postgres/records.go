package postgres

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// Times are kept to the microsecond by PostgreSQL; the store truncates
// them before writing so that the caller's copy equals what is read back.

func truncTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Microsecond).UTC()
}

func truncTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := truncTime(*t)
	return &v
}

func truncChanges(changes []storage.DurationChange) {
	for i := range changes {
		changes[i].At = truncTime(changes[i].At)
	}
}

func normalizeUser(u *storage.User) {
	u.BudgetStartedAt = truncTimePtr(u.BudgetStartedAt)
	u.NextBudgetResetAt = truncTimePtr(u.NextBudgetResetAt)
	u.CreatedAt = truncTime(u.CreatedAt)
	u.UpdatedAt = truncTime(u.UpdatedAt)
	u.DeletedAt = truncTimePtr(u.DeletedAt)
}

func normalizeKey(k *storage.APIKey) {
	k.CreatedAt = truncTime(k.CreatedAt)
	k.LastUsedAt = truncTimePtr(k.LastUsedAt)
	k.ExpiresAt = truncTimePtr(k.ExpiresAt)
	k.BudgetStartedAt = truncTimePtr(k.BudgetStartedAt)
	truncChanges(k.DurationChanges)
	if len(k.AllowedModels) == 0 {
		k.AllowedModels = nil // the Badger store's JSON omits an empty list too
	}
	if len(k.DurationChanges) == 0 {
		k.DurationChanges = nil
	}
}

func normalizeBudget(b *storage.Budget) {
	b.CreatedAt = truncTime(b.CreatedAt)
	b.UpdatedAt = truncTime(b.UpdatedAt)
	truncChanges(b.DurationChanges)
	if len(b.DurationChanges) == 0 {
		b.DurationChanges = nil
	}
}

// jsonParam is the value written to a json column for raw: NULL when
// empty, else raw compacted, which is what the Badger store keeps (it
// re-encodes metadata inside the record's JSON).
func jsonParam(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("invalid metadata JSON: %w", err)
	}
	return buf.String(), nil
}

// changesParam encodes duration changes for their json column.
func changesParam(changes []storage.DurationChange) (any, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(changes)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// decodeChanges decodes a duration_changes column.
func decodeChanges(raw []byte) ([]storage.DurationChange, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var changes []storage.DurationChange
	if err := json.Unmarshal(raw, &changes); err != nil {
		return nil, fmt.Errorf("decoding duration changes: %w", err)
	}
	for i := range changes {
		changes[i].At = changes[i].At.UTC()
	}
	return changes, nil
}

// rawJSON returns a copy of a json column as a RawMessage, nil for NULL.
func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(bytes.Clone(b))
}

// moneyPtr converts a nullable BIGINT to *storage.Money.
func moneyPtr(v *int64) *storage.Money {
	if v == nil {
		return nil
	}
	m := storage.Money(*v)
	return &m
}

// int64Ptr converts *storage.Money to a nullable BIGINT parameter.
func int64Ptr(m *storage.Money) *int64 {
	if m == nil {
		return nil
	}
	v := int64(*m)
	return &v
}

// callbackError marks an error returned by a caller's update function so
// that it is handed back unchanged rather than wrapped with context.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

func asCallbackError(err error) *callbackError {
	var ce *callbackError
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}
