package llmgateway

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/internal/translate"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// record writes the attempt's usage record and charges its cost to the
// user and key, durably, before the caller answers.
func (g *Gateway) record(c *call, a *attempt, retrying bool) error {
	rec := &storage.UsageRecord{
		RequestID:  c.requestID,
		UserID:     c.userID,
		APIKeyID:   c.keyID,
		EndUser:    c.endUser,
		Timestamp:  a.start.UTC().Truncate(time.Microsecond),
		Model:      c.model,
		Provider:   c.provider,
		Endpoint:   "/v1" + c.endpoint.path,
		Status:     "success",
		StatusCode: a.statusCode,
		LatencyMS:  time.Since(a.start).Milliseconds(),
	}
	if id, err := uuid.NewV7(); err == nil {
		rec.ID = id.String()
	} else {
		rec.ID = newRequestID()
	}
	if a.failed {
		rec.Status, rec.ErrorMessage = "error", a.errorMessage
	}
	if a.usageSeen && a.usageInvalid == "" && (a.promptTokens < 0 || a.completionTokens < 0 ||
		a.promptTokens > translate.MaxReportedTokens || a.completionTokens > translate.MaxReportedTokens) {
		a.usageInvalid = fmt.Sprintf("prompt %d, completion %d tokens", a.promptTokens, a.completionTokens)
	}
	switch {
	case a.usageSeen && a.usageInvalid != "":
		// A count no model can produce: bill what the gateway can vouch
		// for, and say why on the record.
		rec.PromptTokens, rec.CompletionTokens, rec.UsageSource = c.prompt, translate.EstimateTokens(a.completionBytes), "estimated"
		note := "provider usage rejected (" + c.up.redact(a.usageInvalid) + "); billed the estimate"
		if rec.ErrorMessage != "" {
			note = rec.ErrorMessage + "; " + note
		}
		rec.ErrorMessage = note
		g.logger.Warn("provider reported impossible usage; billing the estimate",
			zap.String("request_id", c.requestID), zap.String("provider", c.provider), zap.String("model", c.model),
			zap.String("usage", a.usageInvalid))
	case a.usageSeen:
		rec.PromptTokens, rec.CompletionTokens, rec.UsageSource = a.promptTokens, a.completionTokens, "provider"
		if rec.PromptTokens > c.promptBound || rec.CompletionTokens > c.completionBound && c.endpoint != endpointEmbeddings {
			// More than an honest provider can bill for this request: it
			// is billed as reported (the operator pays it) and flagged.
			rec.ExceededReservation = true
			g.logger.Warn("provider reported more tokens than the request allowed",
				zap.String("request_id", c.requestID), zap.String("provider", c.provider), zap.String("model", c.model),
				zap.Int64("prompt_tokens", rec.PromptTokens), zap.Int64("prompt_bound", c.promptBound),
				zap.Int64("completion_tokens", rec.CompletionTokens), zap.Int64("completion_bound", c.completionBound))
		}
	case a.statusCode >= 200 && a.statusCode < 300 || a.billEstimate:
		// Tokens were produced (or at least the prompt was read) but the
		// provider did not say how many: never bill that as zero.
		rec.PromptTokens, rec.CompletionTokens, rec.UsageSource = c.prompt, translate.EstimateTokens(a.completionBytes), "estimated"
	default:
		rec.UsageSource = "provider"
	}
	if c.endpoint == endpointEmbeddings {
		rec.CompletionTokens = 0
	}
	rec.TotalTokens = rec.PromptTokens + rec.CompletionTokens
	a.billedPrompt, a.billedCompletion = rec.PromptTokens, rec.CompletionTokens
	// The price the request was admitted under, whatever happened to the
	// price table since: what was reserved is what the price bills.
	rec.Cost = priceTokens(c.price, rec.PromptTokens, rec.CompletionTokens)
	if rec.Status == "success" || rec.Cost > 0 {
		g.observeUsage(c.provider, c.model, rec.PromptTokens, rec.CompletionTokens, rec.Cost)
	}
	rec.UserPeriod = c.hold.Period(metering.OwnerUser)
	rec.KeyPeriod = c.hold.Period(metering.OwnerKey)

	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	// The hold is settled with the record, in one write where the store
	// allows it: never a moment when neither the reservation nor the cost
	// counts. An attempt retried elsewhere leaves the hold to the last one.
	hold := c.hold
	if retrying {
		hold = nil
	}
	return g.store().SettleUsage(ctx, hold, rec)
}

// price returns the stored price of provider:model, or nil if it has none.
func (g *Gateway) price(provider, model string) (*storage.Price, error) {
	key := provider + ":" + model
	return cached(g.state.cache.prices, key, func() (*storage.Price, error) { return g.store().GetPrice(key) })
}

// priceTokens is the contract's cost formula, exact to the nano-dollar
// (storage.TokenCost says how it rounds).
func priceTokens(p *storage.Price, prompt, completion int64) storage.Money {
	if p == nil {
		return 0
	}
	return storage.TokenCost(prompt, completion, p.InputPricePerMillion, p.OutputPricePerMillion)
}
