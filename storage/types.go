package storage

import (
	"encoding/json"
	"errors"
	"time"
)

// Errors returned by the store. Callers test them with errors.Is.
var (
	// ErrNotFound means the requested object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means an object with the same id already exists.
	ErrExists = errors.New("already exists")
	// ErrUserDeleted means the operation names a soft-deleted user.
	ErrUserDeleted = errors.New("user deleted")
	// ErrClosed means the store has been closed.
	ErrClosed = errors.New("store closed")
	// ErrBudgetMissing means a user was to be put on a budget that does
	// not exist (or was deleted concurrently).
	ErrBudgetMissing = errors.New("budget does not exist")
)

// User is a person or service whose requests are billed. Its spend is kept
// in per-period counters (GetSpend), not in the record. Users are soft
// deleted: DeletedAt is set and the record stays, so usage history keeps its
// owner.
type User struct {
	UserID            string          `json:"user_id"`
	Alias             *string         `json:"alias,omitempty"`
	BudgetID          *string         `json:"budget_id,omitempty"`
	BudgetStartedAt   *time.Time      `json:"budget_started_at,omitempty"`
	NextBudgetResetAt *time.Time      `json:"next_budget_reset_at,omitempty"`
	Blocked           bool            `json:"blocked"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
	DeletedAt         *time.Time      `json:"deleted_at,omitempty"`
	Metadata          json.RawMessage `json:"metadata,omitempty"`
}

// Deleted reports whether the user has been soft deleted.
func (u *User) Deleted() bool { return u.DeletedAt != nil }

// APIKey is a virtual key. Only the SHA-256 of the secret is stored.
type APIKey struct {
	ID                string          `json:"id"`
	KeyHash           string          `json:"key_hash"`   // hex SHA-256 of the whole secret
	KeyPrefix         string          `json:"key_prefix"` // first 8 characters of the secret
	KeyName           *string         `json:"key_name,omitempty"`
	UserID            string          `json:"user_id"`
	CreatedAt         time.Time       `json:"created_at"`
	LastUsedAt        *time.Time      `json:"last_used_at,omitempty"`
	ExpiresAt         *time.Time      `json:"expires_at,omitempty"`
	IsActive          bool            `json:"is_active"`
	Metadata          json.RawMessage `json:"metadata,omitempty"`
	AllowedModels     []string        `json:"allowed_models,omitempty"`
	MaxBudget         *Money          `json:"max_budget,omitempty"`
	BudgetDurationSec *int64          `json:"budget_duration_sec,omitempty"`
	BudgetStartedAt   *time.Time      `json:"budget_started_at,omitempty"`
	RPMLimit          *int64          `json:"rpm_limit,omitempty"`
	TPMLimit          *int64          `json:"tpm_limit,omitempty"`
	// DurationChanges are the changes of BudgetDurationSec, oldest first.
	DurationChanges []DurationChange `json:"duration_changes,omitempty"`
}

// Budget is a spending template; each user on it has its own spend.
type Budget struct {
	BudgetID          string    `json:"budget_id"`
	MaxBudget         *Money    `json:"max_budget,omitempty"`
	BudgetDurationSec *int64    `json:"budget_duration_sec,omitempty"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
	// DurationChanges are the changes of BudgetDurationSec, oldest first:
	// with them each user's schedule keeps the period it was in when the
	// duration changed.
	DurationChanges []DurationChange `json:"duration_changes,omitempty"`
}

// DurationChange records that a budget's duration changed at At from
// PreviousSec (nil: no duration) to the next change's or the budget's.
type DurationChange struct {
	At          time.Time `json:"at"`
	PreviousSec *int64    `json:"previous_sec,omitempty"`
}

// Price is the cost of a model in USD per million tokens.
type Price struct {
	ModelKey              string    `json:"model_key"` // provider:model
	InputPricePerMillion  float64   `json:"input_price_per_million"`
	OutputPricePerMillion float64   `json:"output_price_per_million"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
}

// UsageRecord is one attempted upstream call.
type UsageRecord struct {
	ID               string    `json:"id"`
	RequestID        string    `json:"request_id"`
	UserID           string    `json:"user_id"`
	APIKeyID         string    `json:"api_key_id,omitempty"` // empty for the master key
	EndUser          string    `json:"end_user,omitempty"`   // the caller's own end-user id, if it sent one
	Timestamp        time.Time `json:"timestamp"`
	Model            string    `json:"model"`
	Provider         string    `json:"provider"`
	Endpoint         string    `json:"endpoint"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	TotalTokens      int64     `json:"total_tokens"`
	Cost             Money     `json:"cost"`
	Status           string    `json:"status"` // "success" or "error"
	StatusCode       int       `json:"status_code"`
	LatencyMS        int64     `json:"latency_ms"`
	ErrorMessage     string    `json:"error_message,omitempty"`
	UsageSource      string    `json:"usage_source"` // "provider" or "estimated"
	// ExceededReservation marks a provider report of more tokens than the
	// request allowed; Cost is what the provider reported all the same.
	ExceededReservation bool `json:"exceeded_reservation,omitempty"`
	// UserPeriod and KeyPeriod are the starts of the budget periods of the
	// user and of the key that Cost is charged to (see GetSpend).
	UserPeriod time.Time `json:"user_period,omitzero"`
	KeyPeriod  time.Time `json:"key_period,omitzero"`
}

// SpendOwner says whose spend a counter holds.
type SpendOwner byte

// Spend owners.
const (
	SpendOfUser SpendOwner = 'u'
	SpendOfKey  SpendOwner = 'k'
)

// SpendPeriod is what a user or a key spent in one budget period, which
// starts at Start and lasts until the next period's start. The periods of
// an owner are its budget history: each is a reset's previous spend.
type SpendPeriod struct {
	Start time.Time `json:"start"`
	Spend Money     `json:"spend"`
}

// UsageFilter selects usage records. Zero fields do not filter.
type UsageFilter struct {
	UserID   string
	APIKeyID string
	Model    string
	EndUser  string
	Status   string    // "success" or "error"; empty: both
	Start    time.Time // inclusive
	End      time.Time // inclusive
}
