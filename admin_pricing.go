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
	Source                string    `json:"source"` // "config" or "api"
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
}

// Where a price comes from, as /v1/pricing shows it.
const (
	priceFromConfig = "config" // a `price` of the gateway's config: read-only through the API
	priceFromAPI    = "api"
)

func (g *Gateway) newPriceResponse(p *storage.Price) priceResponse {
	source := priceFromAPI
	if g.configOwned(p.ModelKey) {
		source = priceFromConfig
	}
	return priceResponse{
		ModelKey:              p.ModelKey,
		InputPricePerMillion:  p.InputPricePerMillion,
		OutputPricePerMillion: p.OutputPricePerMillion,
		Source:                source,
		CreatedAt:             p.CreatedAt,
		UpdatedAt:             p.UpdatedAt,
	}
}

// errConfigOwnedPrice refuses an API write to a price the config sets: the
// next reload would silently undo it.
func errConfigOwnedPrice(key string) *apiError {
	return newError(http.StatusConflict, "price_set_in_config", fmt.Sprintf(
		"Pricing for model '%s' is set in the gateway config: change the price line there and reload", key))
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
	if g.configOwned(key) {
		return errConfigOwnedPrice(key)
	}
	now := g.now()
	stored, err := g.store().PutPrice(&storage.Price{
		ModelKey:              key,
		InputPricePerMillion:  *req.InputPricePerMillion,
		OutputPricePerMillion: *req.OutputPricePerMillion,
		CreatedAt:             now,
		UpdatedAt:             now,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g.newPriceResponse(stored))
	return nil
}

func (g *Gateway) listPrices(w http.ResponseWriter, r *http.Request) error {
	return writePage(w, r, g.store().ListPrices, func(p *storage.Price) (priceResponse, error) {
		return g.newPriceResponse(p), nil
	})
}

func (g *Gateway) getPrice(w http.ResponseWriter, _ *http.Request, raw string) error {
	key, err := normalizeModelKey(raw)
	if err != nil {
		return priceNotFound(raw)
	}
	p, err := g.store().GetPrice(key)
	if errors.Is(err, storage.ErrNotFound) {
		return priceNotFound(raw)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g.newPriceResponse(p))
	return nil
}

func (g *Gateway) deletePrice(w http.ResponseWriter, _ *http.Request, raw string) error {
	key, err := normalizeModelKey(raw)
	if err != nil {
		return priceNotFound(raw)
	}
	if g.configOwned(key) {
		return errConfigOwnedPrice(key)
	}
	err = g.store().DeletePrice(key)
	if errors.Is(err, storage.ErrNotFound) {
		return priceNotFound(raw)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
