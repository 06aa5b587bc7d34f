package llmgateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// keyResponse is a virtual key as the admin API shows it: never the secret.
type keyResponse struct {
	ID                string          `json:"id"`
	KeyName           *string         `json:"key_name"`
	KeyPrefix         string          `json:"key_prefix"`
	UserID            string          `json:"user_id"`
	CreatedAt         time.Time       `json:"created_at"`
	LastUsedAt        *time.Time      `json:"last_used_at"`
	ExpiresAt         *time.Time      `json:"expires_at"`
	IsActive          bool            `json:"is_active"`
	Metadata          json.RawMessage `json:"metadata"`
	AllowedModels     []string        `json:"allowed_models"`
	MaxBudget         *storage.Money  `json:"max_budget"`
	BudgetDurationSec *int64          `json:"budget_duration_sec"`
	RPMLimit          *int64          `json:"rpm_limit"`
	TPMLimit          *int64          `json:"tpm_limit"`
	Spend             storage.Money   `json:"spend"`
	BudgetStartedAt   *time.Time      `json:"budget_started_at"`
	NextBudgetResetAt *time.Time      `json:"next_budget_reset_at"`
}

// createdKeyResponse is the only response that carries the secret.
type createdKeyResponse struct {
	Key string `json:"key"`
	keyResponse
}

// keyResponse shows k with the spend of its current budget period.
func (g *Gateway) keyResponse(k *storage.APIKey) (keyResponse, error) {
	sched := keySchedule(k)
	now := g.now()
	spend, err := g.spent(keyAccount(k.ID), sched.Start(now))
	if err != nil {
		return keyResponse{}, err
	}
	lastUsed := k.LastUsedAt
	if t, ok := g.state.touch.lastUsed(k.ID); ok && (lastUsed == nil || t.After(*lastUsed)) {
		lastUsed = &t
	}
	return keyResponse{
		ID:                k.ID,
		KeyName:           k.KeyName,
		KeyPrefix:         k.KeyPrefix,
		UserID:            k.UserID,
		CreatedAt:         k.CreatedAt,
		LastUsedAt:        lastUsed,
		ExpiresAt:         k.ExpiresAt,
		IsActive:          k.IsActive,
		Metadata:          metadataOrEmpty(k.Metadata),
		AllowedModels:     k.AllowedModels,
		MaxBudget:         k.MaxBudget,
		BudgetDurationSec: k.BudgetDurationSec,
		RPMLimit:          k.RPMLimit,
		TPMLimit:          k.TPMLimit,
		Spend:             spend,
		BudgetStartedAt:   k.BudgetStartedAt,
		NextBudgetResetAt: sched.Next(now),
	}, nil
}

func (g *Gateway) writeKey(w http.ResponseWriter, k *storage.APIKey, secret string) error {
	resp, err := g.keyResponse(k)
	if err != nil {
		return err
	}
	if secret != "" {
		writeJSON(w, http.StatusOK, createdKeyResponse{Key: secret, keyResponse: resp})
	} else {
		writeJSON(w, http.StatusOK, resp)
	}
	return nil
}

// keyLimits are the per-key controls, shared by create and update.
type keyLimits struct {
	AllowedModels     *[]string      `json:"allowed_models"`
	MaxBudget         *storage.Money `json:"max_budget"`
	BudgetDurationSec *int64         `json:"budget_duration_sec"`
	RPMLimit          *int64         `json:"rpm_limit"`
	TPMLimit          *int64         `json:"tpm_limit"`
}

type createKeyRequest struct {
	KeyName   *string    `json:"key_name"`
	UserID    *string    `json:"user_id"`
	ExpiresAt *apiTime   `json:"expires_at"`
	Metadata  jsonObject `json:"metadata"`
	keyLimits
}

type updateKeyRequest struct {
	KeyName   *string    `json:"key_name"`
	IsActive  *bool      `json:"is_active"`
	ExpiresAt *apiTime   `json:"expires_at"`
	Metadata  jsonObject `json:"metadata"`
	keyLimits
}

// validate checks the limits; isRoute says which names are routes, which
// allowed_models may name.
func (l *keyLimits) validate(isRoute func(string) bool) error {
	if l.AllowedModels != nil {
		for _, m := range *l.AllowedModels {
			if _, err := normalizeModelKey(m); err != nil && !isRoute(m) {
				return errValidation(fmt.Sprintf("Field 'allowed_models' must hold 'provider:model' or 'provider:*' entries or route names, got '%s'", truncate(m, 64)))
			}
		}
	}
	if l.MaxBudget != nil && *l.MaxBudget < 0 {
		return errValidation("Field 'max_budget' must be a number >= 0")
	}
	if l.BudgetDurationSec != nil && *l.BudgetDurationSec <= 0 {
		return errValidation("Field 'budget_duration_sec' must be an integer > 0")
	}
	if l.RPMLimit != nil && *l.RPMLimit <= 0 {
		return errValidation("Field 'rpm_limit' must be an integer > 0")
	}
	if l.TPMLimit != nil && *l.TPMLimit <= 0 {
		return errValidation("Field 'tpm_limit' must be an integer > 0")
	}
	return nil
}

// apply copies the given limits onto k. Changing a limit never changes
// spend; only the schedule starts periods. A new max_budget applies to the
// current period; a new budget_duration_sec takes effect when the current
// period ends (see metering.Schedule.WithDuration).
func (l *keyLimits) apply(k *storage.APIKey, now time.Time) {
	if l.AllowedModels != nil {
		models := make([]string, len(*l.AllowedModels))
		for i, m := range *l.AllowedModels {
			if key, err := normalizeModelKey(m); err == nil {
				models[i] = key
			} else {
				models[i] = m // a route
			}
		}
		k.AllowedModels = models
	}
	if (l.MaxBudget != nil || l.BudgetDurationSec != nil) && k.BudgetStartedAt == nil {
		anchor := k.CreatedAt // where the schedule has been running from
		k.BudgetStartedAt = &anchor
	}
	if l.MaxBudget != nil {
		k.MaxBudget = l.MaxBudget
	}
	if d := l.BudgetDurationSec; d != nil && (k.BudgetDurationSec == nil || *k.BudgetDurationSec != *d) {
		if now.After(*k.BudgetStartedAt) { // not a key being created
			k.DurationChanges = append(k.DurationChanges, storage.DurationChange{At: now, PreviousSec: k.BudgetDurationSec})
		}
		k.BudgetDurationSec = d
	}
	if l.RPMLimit != nil {
		k.RPMLimit = l.RPMLimit
	}
	if l.TPMLimit != nil {
		k.TPMLimit = l.TPMLimit
	}
}

func (g *Gateway) createKey(w http.ResponseWriter, r *http.Request) error {
	var req createKeyRequest
	if err := decodeAdminBody(r, &req); err != nil {
		return err
	}
	if err := checkName("key_name", req.KeyName); err != nil {
		return err
	}
	if req.UserID != nil {
		if err := checkID("user_id", *req.UserID); err != nil {
			return err
		}
	}
	if err := req.keyLimits.validate(g.isRoute); err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("generating key id: %w", err)
	}
	secret, hash, err := generateKey()
	if err != nil {
		return err
	}
	now := g.now()
	k := &storage.APIKey{
		ID:        id.String(),
		KeyHash:   hash,
		KeyPrefix: secret[:keyPrefixLength],
		KeyName:   req.KeyName,
		CreatedAt: now,
		IsActive:  true,
		Metadata:  json.RawMessage(req.Metadata),
	}
	if req.ExpiresAt != nil {
		t := req.ExpiresAt.Time
		k.ExpiresAt = &t
	}
	req.keyLimits.apply(k, now)

	owner := &storage.User{CreatedAt: now, UpdatedAt: now}
	if req.UserID != nil {
		k.UserID = *req.UserID
		alias := "User " + k.UserID
		owner.Alias = &alias
	} else {
		k.UserID = "apikey-" + k.ID
		name := "unnamed"
		if req.KeyName != nil && *req.KeyName != "" {
			name = *req.KeyName
		}
		alias := "Virtual user for API key: " + name
		owner.Alias = &alias
	}
	owner.UserID = k.UserID

	err = g.store().CreateKey(k, owner)
	if errors.Is(err, storage.ErrUserDeleted) {
		return errNotFound(fmt.Sprintf("User '%s' has been deleted. Recreate via POST /v1/users first.", k.UserID))
	}
	if err != nil {
		return err
	}
	return g.writeKey(w, k, secret)
}

func keyNotFound(id string) *apiError {
	return errNotFound(fmt.Sprintf("API key with id '%s' not found", id))
}

// keyError words a failed read or write of key id for the client.
func keyError(id string, err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return keyNotFound(id)
	}
	return err
}

func (g *Gateway) listKeys(w http.ResponseWriter, r *http.Request) error {
	return writePage(w, r, g.store().ListKeys, g.keyResponse)
}

func (g *Gateway) getKey(w http.ResponseWriter, _ *http.Request, id string) error {
	k, err := g.store().GetKey(id)
	if err != nil {
		return keyError(id, err)
	}
	return g.writeKey(w, k, "")
}

func (g *Gateway) updateKey(w http.ResponseWriter, r *http.Request, id string) error {
	var req updateKeyRequest
	if err := decodeAdminBody(r, &req); err != nil {
		return err
	}
	if err := checkName("key_name", req.KeyName); err != nil {
		return err
	}
	if err := req.keyLimits.validate(g.isRoute); err != nil {
		return err
	}
	if req.IsActive != nil && *req.IsActive {
		if err := g.checkOwnerNotDeleted(id); err != nil {
			return err
		}
	}
	now := g.now()
	k, err := g.store().UpdateKey(id, func(k *storage.APIKey) error {
		if req.KeyName != nil {
			k.KeyName = req.KeyName
		}
		if req.IsActive != nil {
			k.IsActive = *req.IsActive
		}
		if req.ExpiresAt != nil {
			t := req.ExpiresAt.Time
			k.ExpiresAt = &t
		}
		if req.Metadata != nil {
			k.Metadata = json.RawMessage(req.Metadata)
		}
		req.keyLimits.apply(k, now)
		return nil
	})
	if errors.Is(err, storage.ErrUserDeleted) {
		// The user was deleted after checkOwnerNotDeleted looked.
		if err := g.checkOwnerNotDeleted(id); err != nil {
			return err
		}
	}
	if err != nil {
		return keyError(id, err)
	}
	return g.writeKey(w, k, "")
}

func (g *Gateway) deleteKey(w http.ResponseWriter, _ *http.Request, id string) error {
	if err := g.store().DeleteKey(id); err != nil {
		return keyError(id, err)
	}
	g.state.touch.forget(id)
	g.state.meter.Forget(keyAccount(id))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rotateKey gives a key a new secret; the old one stops working at once.
func (g *Gateway) rotateKey(w http.ResponseWriter, r *http.Request, id string) error {
	if _, err := readBody(r, adminBodyLimit); err != nil {
		return err
	}
	secret, hash, err := generateKey()
	if err != nil {
		return err
	}
	k, err := g.store().UpdateKey(id, func(k *storage.APIKey) error {
		k.KeyHash = hash
		k.KeyPrefix = secret[:keyPrefixLength]
		return nil
	})
	if err != nil {
		return keyError(id, err)
	}
	return g.writeKey(w, k, secret)
}

// checkOwnerNotDeleted refuses to reactivate a key whose user was deleted:
// deleting a user deactivates its keys, and only re-creating the user may
// bring them back into use.
func (g *Gateway) checkOwnerNotDeleted(keyID string) error {
	k, err := g.store().GetKey(keyID)
	if err != nil {
		return keyError(keyID, err)
	}
	u, err := g.store().GetUser(k.UserID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err == nil && u.Deleted() {
		return errNotFound(fmt.Sprintf("User '%s' has been deleted. Recreate via POST /v1/users first.", k.UserID))
	}
	return nil
}

// isRoute reports whether name is a configured route.
func (g *Gateway) isRoute(name string) bool { return g.routes[name] != nil }
