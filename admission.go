package llmgateway

import (
	"fmt"
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// maxCompletionTokens is the most completion tokens a request may
// produce: max_completion_tokens, max_tokens (chat, Anthropic) or
// max_output_tokens (Responses), else the configured default, times n
// choices.
func maxCompletionTokens(root gjson.Result, fallback int) int64 {
	limit := int64(fallback)
	for _, field := range [...]string{"max_completion_tokens", "max_tokens", "max_output_tokens"} {
		if v := root.Get(field); v.Type == gjson.Number && v.Int() > 0 {
			limit = v.Int()
			break
		}
	}
	if n := root.Get("n"); n.Type == gjson.Number && n.Int() > 1 {
		limit *= min(n.Int(), 128)
	}
	return limit
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

// reserveBudget holds the call's worst-case cost against the user's and
// the key's budgets. A model priced at zero is always allowed; a model
// with no price cannot be billed to a budget, so a user or key that has
// one is refused.
func (g *Gateway) reserveBudget(c *call, key *storage.APIKey, user *storage.User, completion int64) error {
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
	}
	if key != nil {
		limits = append(limits, limit{
			acct:   account{storage.SpendOfKey, key.ID},
			max:    key.MaxBudget,
			period: keySchedule(key).start(now),
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
					fmt.Sprintf("No price is configured for model '%s:%s'; it cannot be billed to %s's budget", c.provider, c.model, l.acct.who()))
			}
		}
	case price.InputPricePerMillion == 0 && price.OutputPricePerMillion == 0:
		for i := range limits {
			limits[i].max = nil // free models are always allowed
		}
	default:
		amount = priceTokens(price, c.prompt, completion)
	}
	res, err := g.state.ledger.reserve(limits, amount)
	if err != nil {
		return err
	}
	c.res = res
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
	p, err := cached(g.state.cache.prices, key, func() (*storage.Price, error) { return g.state.store.GetPrice(key) })
	if err != nil {
		return nil, storeError{fmt.Errorf("loading price of %s:%s: %w", provider, model, err)}
	}
	return p, nil
}

// priceTokens is the contract's cost formula, exact to the nano-dollar
// (storage.TokenCost says how it rounds).
func priceTokens(p *storage.Price, prompt, completion int64) storage.Money {
	if p == nil {
		return 0
	}
	return storage.TokenCost(prompt, completion, p.InputPricePerMillion, p.OutputPricePerMillion)
}
