package llmgateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// Limits on client-chosen strings.
const (
	maxIDLength   = 128
	maxNameLength = 256
)

type userResponse struct {
	UserID            string          `json:"user_id"`
	Alias             *string         `json:"alias"`
	Spend             storage.Money   `json:"spend"`
	BudgetID          *string         `json:"budget_id"`
	BudgetStartedAt   *time.Time      `json:"budget_started_at"`
	NextBudgetResetAt *time.Time      `json:"next_budget_reset_at"`
	Blocked           bool            `json:"blocked"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
	Metadata          json.RawMessage `json:"metadata"`
}

// userResponse shows u with the spend of its current budget period and
// when that period ends.
func (g *Gateway) userResponse(u *storage.User) (userResponse, error) {
	budget, sched, err := g.userSchedule(u)
	if err != nil {
		return userResponse{}, err
	}
	now := g.now()
	spend, err := g.spent(userAccount(u.UserID), sched.Start(now))
	if err != nil {
		return userResponse{}, err
	}
	var next *time.Time
	if budget != nil {
		next = sched.Next(now)
	}
	return userResponse{
		UserID:            u.UserID,
		Alias:             u.Alias,
		Spend:             spend,
		BudgetID:          u.BudgetID,
		BudgetStartedAt:   u.BudgetStartedAt,
		NextBudgetResetAt: next,
		Blocked:           u.Blocked,
		CreatedAt:         u.CreatedAt,
		UpdatedAt:         u.UpdatedAt,
		Metadata:          metadataOrEmpty(u.Metadata),
	}, nil
}

func metadataOrEmpty(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("{}")
	}
	return m
}

type createUserRequest struct {
	UserID   *string    `json:"user_id"`
	Alias    *string    `json:"alias"`
	BudgetID *string    `json:"budget_id"`
	Blocked  *bool      `json:"blocked"`
	Metadata jsonObject `json:"metadata"`
}

type updateUserRequest struct {
	Alias    *string    `json:"alias"`
	BudgetID *string    `json:"budget_id"`
	Blocked  *bool      `json:"blocked"`
	Metadata jsonObject `json:"metadata"`
}

// checkID validates a client-chosen id: 1..128 printable characters that
// survive a URL path unchanged.
func checkID(field, id string) error {
	switch {
	case id == "":
		return errValidation(fmt.Sprintf("Field '%s' must not be empty", field))
	case len(id) > maxIDLength:
		return errValidation(fmt.Sprintf("Field '%s' must be at most %d characters", field, maxIDLength))
	case id == "." || id == "..":
		return errValidation(fmt.Sprintf("Field '%s' must not be '.' or '..'", field))
	case strings.ContainsAny(id, "/\\?#%") || strings.ContainsFunc(id, isControl):
		return errValidation(fmt.Sprintf("Field '%s' must not contain control characters or any of / \\ ? # %%", field))
	}
	return nil
}

// checkName validates a free-text name such as an alias.
func checkName(field string, s *string) error {
	if s == nil {
		return nil
	}
	if utf8.RuneCountInString(*s) > maxNameLength {
		return errValidation(fmt.Sprintf("Field '%s' must be at most %d characters", field, maxNameLength))
	}
	if strings.ContainsFunc(*s, isControl) {
		return errValidation(fmt.Sprintf("Field '%s' must not contain control characters", field))
	}
	return nil
}

func (g *Gateway) createUser(w http.ResponseWriter, r *http.Request) error {
	var req createUserRequest
	if err := decodeAdminBody(r, &req); err != nil {
		return err
	}
	if req.UserID == nil {
		return errValidation("Field 'user_id' is required")
	}
	if err := checkID("user_id", *req.UserID); err != nil {
		return err
	}
	if err := checkName("alias", req.Alias); err != nil {
		return err
	}
	now := g.now()
	u := &storage.User{
		UserID:    *req.UserID,
		Alias:     req.Alias,
		Blocked:   req.Blocked != nil && *req.Blocked,
		CreatedAt: now,
		UpdatedAt: now,
		Metadata:  json.RawMessage(req.Metadata),
	}
	if req.BudgetID != nil {
		b, err := g.loadBudget(*req.BudgetID)
		if err != nil {
			return err
		}
		assignBudget(u, b, now)
	}
	err := g.store().CreateUser(u)
	switch {
	case errors.Is(err, storage.ErrBudgetMissing):
		return budgetNotFound(*req.BudgetID) // deleted since it was loaded
	case errors.Is(err, storage.ErrExists):
		return newError(http.StatusConflict, "user_exists", fmt.Sprintf("User with id '%s' already exists", u.UserID))
	case err != nil:
		return err
	}
	return g.writeUser(w, u)
}

// assignBudget puts u on budget b; its period starts now.
func assignBudget(u *storage.User, b *storage.Budget, now time.Time) {
	id := b.BudgetID
	started := now
	u.BudgetID = &id
	u.BudgetStartedAt = &started
	u.NextBudgetResetAt = nil
	if b.BudgetDurationSec != nil {
		next := now.Add(time.Duration(*b.BudgetDurationSec) * time.Second)
		u.NextBudgetResetAt = &next
	}
}

func (g *Gateway) listUsers(w http.ResponseWriter, r *http.Request) error {
	return writePage(w, r, g.store().ListUsers, g.userResponse)
}

// loadActiveUser returns a user that exists and is not deleted, else 404.
func (g *Gateway) loadActiveUser(id string) (*storage.User, error) {
	u, err := g.store().GetUser(id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Deleted()) {
		return nil, userNotFound(id)
	}
	return u, err
}

func userNotFound(id string) *apiError {
	return errNotFound(fmt.Sprintf("User with id '%s' not found", id))
}

func (g *Gateway) getUser(w http.ResponseWriter, _ *http.Request, id string) error {
	u, err := g.loadActiveUser(id)
	if err != nil {
		return err
	}
	return g.writeUser(w, u)
}

func (g *Gateway) updateUser(w http.ResponseWriter, r *http.Request, id string) error {
	var req updateUserRequest
	if err := decodeAdminBody(r, &req); err != nil {
		return err
	}
	if err := checkName("alias", req.Alias); err != nil {
		return err
	}
	var budget *storage.Budget
	if req.BudgetID != nil {
		b, err := g.loadBudget(*req.BudgetID)
		if err != nil {
			return err
		}
		budget = b
	}
	now := g.now()
	u, err := g.store().UpdateUser(id, func(u *storage.User) error {
		if u.Deleted() {
			return userNotFound(id)
		}
		if req.Alias != nil {
			u.Alias = req.Alias
		}
		if req.Blocked != nil {
			u.Blocked = *req.Blocked
		}
		if req.Metadata != nil {
			u.Metadata = json.RawMessage(req.Metadata)
		}
		// Naming the budget the user is already on changes nothing: its
		// period and spend go on. Another budget starts a period now.
		if budget != nil && (u.BudgetID == nil || *u.BudgetID != budget.BudgetID) {
			assignBudget(u, budget, now)
		}
		u.UpdatedAt = now
		return nil
	})
	if errors.Is(err, storage.ErrBudgetMissing) {
		return budgetNotFound(*req.BudgetID) // deleted since it was loaded
	}
	if err != nil {
		return userWriteError(id, err)
	}
	return g.writeUser(w, u)
}

// userWriteError words a failed write to user id for the client.
func userWriteError(id string, err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return userNotFound(id)
	}
	return err
}

func (g *Gateway) deleteUser(w http.ResponseWriter, _ *http.Request, id string) error {
	if err := g.store().DeleteUser(id, g.now()); err != nil {
		return userWriteError(id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *Gateway) userUsage(w http.ResponseWriter, r *http.Request, id string) error {
	skip, limit, err := pagination(r)
	if err != nil {
		return err
	}
	if _, err := g.store().GetUser(id); errors.Is(err, storage.ErrNotFound) {
		return userNotFound(id)
	} else if err != nil {
		return err
	}
	records, err := g.store().ListUsage(storage.UsageFilter{UserID: id}, skip, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, usageResponses(records))
	return nil
}

func (g *Gateway) writeUser(w http.ResponseWriter, u *storage.User) error {
	resp, err := g.userResponse(u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
