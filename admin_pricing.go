package llmgateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

type priceResponse struct {
	ModelKey              string    `json:"model_key"`
	InputPricePerMillion  float64   `json:"input_price_per_million"`
	OutputPricePerMillion float64   `json:"output_price_per_million"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
}

func newPriceResponse(p *storage.Price) priceResponse {
	return priceResponse{
		ModelKey:              p.ModelKey,
		InputPricePerMillion:  p.InputPricePerMillion,
		OutputPricePerMillion: p.OutputPricePerMillion,
		CreatedAt:             p.CreatedAt,
		UpdatedAt:             p.UpdatedAt,
	}
}

type priceRequest struct {
	ModelKey              *string  `json:"model_key"`
	InputPricePerMillion  *float64 `json:"input_price_per_million"`
	OutputPricePerMillion *float64 `json:"output_price_per_million"`
}

func priceNotFound(key string) *apiError {
	return errNotFound(fmt.Sprintf("Pricing for model '%s' not found", key))
}

func (g *Gateway) upsertPrice(w http.ResponseWriter, r *http.Request) error {
	var req priceRequest
	if err := decodeAdminBody(r, &req); err != nil {
		return err
	}
	switch {
	case req.ModelKey == nil:
		return errValidation("Field 'model_key' is required")
	case req.InputPricePerMillion == nil:
		return errValidation("Field 'input_price_per_million' is required")
	case req.OutputPricePerMillion == nil:
		return errValidation("Field 'output_price_per_million' is required")
	case !validPrice(*req.InputPricePerMillion):
		return errValidation("Field 'input_price_per_million' must be a number >= 0")
	case !validPrice(*req.OutputPricePerMillion):
		return errValidation("Field 'output_price_per_million' must be a number >= 0")
	}
	key, err := normalizeModelKey(*req.ModelKey)
	if err != nil {
		return errValidation("Field 'model_key' must be 'provider:model'")
	}
	now := g.now()
	var stored *storage.Price
	err = g.adminWrite(func() (err error) {
		stored, err = g.state.store.PutPrice(&storage.Price{
			ModelKey:              key,
			InputPricePerMillion:  *req.InputPricePerMillion,
			OutputPricePerMillion: *req.OutputPricePerMillion,
			CreatedAt:             now,
			UpdatedAt:             now,
		})
		return err
	})
	if err != nil {
		return storeError{fmt.Errorf("storing price %s: %w", key, err)}
	}
	writeJSON(w, http.StatusOK, newPriceResponse(stored))
	return nil
}

func (g *Gateway) listPrices(w http.ResponseWriter, r *http.Request) error {
	skip, limit, err := pagination(r)
	if err != nil {
		return err
	}
	prices, err := g.state.store.ListPrices(skip, limit)
	if err != nil {
		return storeError{fmt.Errorf("listing prices: %w", err)}
	}
	out := make([]priceResponse, len(prices))
	for i := range prices {
		out[i] = newPriceResponse(&prices[i])
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (g *Gateway) getPrice(w http.ResponseWriter, _ *http.Request, raw string) error {
	key, err := normalizeModelKey(raw)
	if err != nil {
		return priceNotFound(raw)
	}
	p, err := g.state.store.GetPrice(key)
	if errors.Is(err, storage.ErrNotFound) {
		return priceNotFound(raw)
	}
	if err != nil {
		return storeError{fmt.Errorf("loading price %s: %w", key, err)}
	}
	writeJSON(w, http.StatusOK, newPriceResponse(p))
	return nil
}

func (g *Gateway) deletePrice(w http.ResponseWriter, _ *http.Request, raw string) error {
	key, err := normalizeModelKey(raw)
	if err != nil {
		return priceNotFound(raw)
	}
	err = g.adminWrite(func() error { return g.state.store.DeletePrice(key) })
	if errors.Is(err, storage.ErrNotFound) {
		return priceNotFound(raw)
	}
	if err != nil {
		return storeError{fmt.Errorf("deleting price %s: %w", key, err)}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
