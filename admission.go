package llmgateway

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// maxTokensCeiling caps a max-tokens field as read for a reservation, so
// that a silly value cannot overflow the arithmetic (it is still refused:
// no budget holds 10^9 tokens of any priced model).
const maxTokensCeiling = 1_000_000_000

// completionBound is the most completion tokens the provider can produce
// for the request: the max-tokens field it obeys for this endpoint and
// format (the largest of those it may obey), else fallback, times the
// choices it generates (chat's n; the legacy Completions API's n or
// best_of, for each prompt of a list). It must agree with what the
// translations send.
func completionBound(root gjson.Result, ep endpointKind, format apiFormat, fallback int) int64 {
	var limit int64
	def := int64(fallback)
	switch {
	case ep == kindEmbeddings:
		return 0
	case ep == kindResponses:
		limit = maxTokensField(root.Get("max_output_tokens"), def)
	case ep == kindMessages:
		// Native, and translated: chatRequestFromAnthropic sends max_tokens.
		limit = maxTokensField(root.Get("max_tokens"), def)
	case format == formatAnthropic:
		// anthropicRequestFromChat sends the first of the two that is set.
		for _, field := range [...]string{"max_completion_tokens", "max_tokens"} {
			if v := root.Get(field); v.Exists() && v.Type != gjson.Null {
				limit = maxTokensField(v, def)
				break
			}
		}
	default:
		// An OpenAI-compatible server may obey either field.
		limit = max(maxTokensField(root.Get("max_completion_tokens"), def), maxTokensField(root.Get("max_tokens"), def))
	}
	if limit <= 0 {
		limit = def
	}
	switch ep {
	case kindChat:
		limit = saturatingMul(limit, choicesField(root.Get("n")))
	case kindCompletions:
		// Each prompt of a list is completed n times, best_of (billed
		// whole, at least n) generated server-side.
		choices := max(choicesField(root.Get("n")), choicesField(root.Get("best_of")))
		limit = saturatingMul(saturatingMul(limit, choices), promptCount(root.Get("prompt")))
	}
	return limit
}

// completionCeiling caps a reservation's completion tokens, far above any
// budget's reach, so that adding and summing them cannot overflow.
const completionCeiling = 1_000_000_000_000

// maxTokensField reads a max-tokens value, rounding a fraction up; 0 when
// it is absent or not a positive number. A number written as a string is
// read too, as at least fallback: lenient providers (pydantic's lax mode,
// as in vLLM) obey it, strict ones refuse it, others use their default.
func maxTokensField(v gjson.Result, fallback int64) int64 {
	f, ok := lenientNumber(v)
	if !ok || !(f > 0) {
		return 0
	}
	n := int64(math.Ceil(min(f, maxTokensCeiling)))
	if v.Type == gjson.String {
		n = max(n, fallback)
	}
	return n
}

// choicesField reads a count of choices (n, best_of): at least 1.
func choicesField(v gjson.Result) int64 {
	f, ok := lenientNumber(v)
	if !ok || !(f > 1) {
		return 1
	}
	return int64(math.Ceil(min(f, maxTokensCeiling)))
}

// lenientNumber reads a JSON number, or a number in a string.
func lenientNumber(v gjson.Result) (float64, bool) {
	switch v.Type {
	case gjson.Number:
		return v.Float(), true
	case gjson.String:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.Str), 64)
		return f, err == nil
	}
	return 0, false
}

// promptCount is how many prompts a legacy Completions prompt holds: a
// list of strings or of token lists is one prompt per element; a string or
// one token list is one.
func promptCount(v gjson.Result) int64 {
	if !v.IsArray() {
		return 1
	}
	var n int64
	v.ForEach(func(_, e gjson.Result) bool {
		if e.Type == gjson.String || e.IsArray() {
			n++
		}
		return true
	})
	return max(n, 1) // a list of token ids is one prompt
}

// saturatingMul multiplies token counts, stopping at completionCeiling.
func saturatingMul(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return max(a, 0) * max(b, 0)
	}
	if a > completionCeiling/b {
		return completionCeiling
	}
	return a * b
}

// admitCall asks the meter to admit the call: the rate limits of its user
// and key, then its worst-case cost (its token bounds at the current
// price) reserved against the user's and the key's budgets. A model priced
// at zero is always allowed; a model with no price cannot be billed to a
// budget, so a user or key that has one is refused. The X-RateLimit-*
// headers are set whenever the rate limits admitted the call.
func (g *Gateway) admitCall(ctx context.Context, w http.ResponseWriter, c *call, key *storage.APIKey, user *storage.User) error {
	now := g.now()
	budget, sched, err := g.userSchedule(user)
	if err != nil {
		return err
	}
	req := metering.Request{Now: now, Tokens: c.prompt + c.completionBound}
	req.Rates = g.appendRates(c.meterRates[:0], key, user)
	req.Budgets = append(c.meterBudgets[:0], metering.Budget{Account: userAccount(user.UserID), Period: sched.Start(now)})
	if budget != nil {
		req.Budgets[0].Max = budget.MaxBudget
		req.Budgets[0].Resets = sched.Next(now)
	}
	if key != nil {
		ks := keySchedule(key)
		req.Budgets = append(req.Budgets, metering.Budget{
			Account: keyAccount(key.ID),
			Max:     key.MaxBudget,
			Period:  ks.Start(now),
			Resets:  ks.Next(now),
		})
	}
	var price *storage.Price
	if c.route != nil {
		if err := g.reserveRoute(c, &req); err != nil {
			return err
		}
	} else if price, err = g.price(c.provider, c.model); err != nil {
		return err
	}
	switch {
	case c.route != nil:
	case price == nil:
		req.Unpriced = true
	case price.InputPricePerMillion == 0 && price.OutputPricePerMillion == 0:
		for i := range req.Budgets {
			req.Budgets[i].Max = nil // free models are always allowed
		}
	default:
		req.Cost = priceTokens(price, c.promptBound, c.completionBound)
	}

	hold, err := g.state.meter.Admit(ctx, req)
	var budgetRefusal *metering.BudgetRefusal
	var rateRefusal *metering.RateRefusal
	switch {
	case errors.As(err, &rateRefusal):
		return rateLimited(rateRefusal)
	case errors.As(err, &budgetRefusal):
		setRateHeaders(w.Header(), budgetRefusal.RateStatus)
		return budgetRefused(budgetRefusal, c)
	case errors.Is(err, metering.ErrBusy):
		return newError(http.StatusServiceUnavailable, "budget_busy", "Budget period changed during the request; retry")
	case err != nil:
		return storeError{err}
	}
	setRateHeaders(w.Header(), hold.RateStatus)
	c.hold, c.price = hold, price
	return nil
}

// release frees whatever the call still holds: its budget reservation and
// its token estimate in the rate windows (it still counts as a request
// there). It is safe to call after settlement, which it leaves alone.
func (g *Gateway) release(c *call) {
	g.state.meter.Settle(c.hold, 0, 0)
}
