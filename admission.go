package llmgateway

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

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

// admit applies the rate limits: the configured requests per minute of the
// user, and the key's own rpm_limit and tpm_limit. tokens is the request's
// worst case, replaced by the real count when it settles.
func (g *Gateway) admit(w http.ResponseWriter, c *call, key *storage.APIKey, user *storage.User, tokens int64) error {
	var rules []rateRule
	if g.RateLimitRPM > 0 {
		rules = append(rules, rateRule{acct: account{storage.SpendOfUser, user.UserID}, rpm: int64(g.RateLimitRPM)})
	}
	if key != nil && (key.RPMLimit != nil || key.TPMLimit != nil) {
		r := rateRule{acct: account{storage.SpendOfKey, key.ID}}
		if key.RPMLimit != nil {
			r.rpm = *key.RPMLimit
		}
		if key.TPMLimit != nil {
			r.tpm = *key.TPMLimit
		}
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		return nil
	}
	ticket, err := g.state.limits.admit(g.now(), rules, tokens)
	if err != nil {
		return err
	}
	c.ticket = ticket
	ticket.setHeaders(w.Header())
	return nil
}

// reserveBudget holds the call's worst-case cost (its token bounds at the
// current price) against the user's and the key's budgets. A model priced at zero is always allowed; a model
// with no price cannot be billed to a budget, so a user or key that has
// one is refused.
func (g *Gateway) reserveBudget(c *call, key *storage.APIKey, user *storage.User) error {
	now := g.now()
	budget, sched, err := g.userSchedule(user)
	if err != nil {
		return err
	}
	limits := []limit{{
		acct:   account{storage.SpendOfUser, user.UserID},
		period: sched.start(now),
	}}
	if budget != nil {
		limits[0].max = budget.MaxBudget
		limits[0].resets = sched.next(now)
	}
	if key != nil {
		ks := keySchedule(key)
		limits = append(limits, limit{
			acct:   account{storage.SpendOfKey, key.ID},
			max:    key.MaxBudget,
			period: ks.start(now),
			resets: ks.next(now),
		})
	}

	price, err := g.price(c.provider, c.model)
	if err != nil {
		return err
	}
	var amount storage.Money
	switch {
	case price == nil:
		for _, l := range limits {
			if l.max != nil {
				return errForbidden("model_not_priced",
					fmt.Sprintf("No price is configured for model '%s:%s'; it cannot be billed to the budget of %s", c.provider, c.model, l.acct.who()))
			}
		}
	case price.InputPricePerMillion == 0 && price.OutputPricePerMillion == 0:
		for i := range limits {
			limits[i].max = nil // free models are always allowed
		}
	default:
		amount = priceTokens(price, c.promptBound, c.completionBound)
	}
	res, err := g.state.ledger.reserve(limits, amount)
	if err != nil {
		return err
	}
	c.res, c.price = res, price
	return nil
}

// release frees whatever the call still holds: its budget reservation and
// its rate-limit token estimate. It is safe to call after settlement.
func (g *Gateway) release(c *call) {
	g.state.ledger.settle(c.res, 0)
	c.res = nil
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
