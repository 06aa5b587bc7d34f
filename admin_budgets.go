package llmgateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

type budgetResponse struct {
	BudgetID          string         `json:"budget_id"`
	MaxBudget         *storage.Money `json:"max_budget"`
	BudgetDurationSec *int64         `json:"budget_duration_sec"`
	CreatedAt         time.Time      `json:"created_at"`
	UpdatedAt         time.Time      `json:"updated_at"`
}

func newBudgetResponse(b *storage.Budget) budgetResponse {
	return budgetResponse{
		BudgetID:          b.BudgetID,
		MaxBudget:         b.MaxBudget,
		BudgetDurationSec: b.BudgetDurationSec,
		CreatedAt:         b.CreatedAt,
		UpdatedAt:         b.UpdatedAt,
	}
}

type budgetRequest struct {
	MaxBudget         *storage.Money `json:"max_budget"`
	BudgetDurationSec *int64         `json:"budget_duration_sec"`
}

func (req *budgetRequest) validate() error {
	if req.MaxBudget != nil && *req.MaxBudget < 0 {
		return errValidation("Field 'max_budget' must be a number >= 0")
	}
	if req.BudgetDurationSec != nil && *req.BudgetDurationSec <= 0 {
		return errValidation("Field 'budget_duration_sec' must be an integer > 0")
	}
	return nil
}

func budgetNotFound(id string) *apiError {
	return errNotFound(fmt.Sprintf("Budget with id '%s' not found", id))
}

// loadBudget returns the budget or a 404 naming it.
func (g *Gateway) loadBudget(id string) (*storage.Budget, error) {
	b, err := g.store().GetBudget(id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, budgetNotFound(id)
	}
	return b, err
}

func (g *Gateway) createBudget(w http.ResponseWriter, r *http.Request) error {
	var req budgetRequest
	if err := decodeAdminBody(r, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("generating budget id: %w", err)
	}
	now := g.now()
	b := &storage.Budget{
		BudgetID:          id.String(),
		MaxBudget:         req.MaxBudget,
		BudgetDurationSec: req.BudgetDurationSec,
		CreatedAt:         now,
		UpdatedAt:         now,
	}
	if err := g.store().CreateBudget(b); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newBudgetResponse(b))
	return nil
}

func (g *Gateway) listBudgets(w http.ResponseWriter, r *http.Request) error {
	return writePage(w, r, g.store().ListBudgets, func(b *storage.Budget) (budgetResponse, error) {
		return newBudgetResponse(b), nil
	})
}

func (g *Gateway) getBudget(w http.ResponseWriter, _ *http.Request, id string) error {
	b, err := g.loadBudget(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newBudgetResponse(b))
	return nil
}

func (g *Gateway) updateBudget(w http.ResponseWriter, r *http.Request, id string) error {
	var req budgetRequest
	if err := decodeAdminBody(r, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	now := g.now()
	b, err := g.store().UpdateBudget(id, func(b *storage.Budget) error {
		if req.MaxBudget != nil {
			b.MaxBudget = req.MaxBudget
		}
		if d := req.BudgetDurationSec; d != nil && (b.BudgetDurationSec == nil || *b.BudgetDurationSec != *d) {
			// Users keep their current periods (see budgetSchedule).
			b.DurationChanges = append(b.DurationChanges, storage.DurationChange{At: now, PreviousSec: b.BudgetDurationSec})
			b.BudgetDurationSec = d
		}
		b.UpdatedAt = now
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return budgetNotFound(id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newBudgetResponse(b))
	return nil
}

func (g *Gateway) deleteBudget(w http.ResponseWriter, _ *http.Request, id string) error {
	err := g.store().DeleteBudget(id, g.now())
	if errors.Is(err, storage.ErrNotFound) {
		return budgetNotFound(id)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
