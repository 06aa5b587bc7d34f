package llmgateway

import (
	"net/http"
	"strconv"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// appendRates appends the rate limits of a call to rates: the configured
// requests per minute of the user, and the key's own rpm_limit and
// tpm_limit.
func (g *Gateway) appendRates(rates []metering.Rate, key *storage.APIKey, user *storage.User) []metering.Rate {
	if g.RateLimitRPM > 0 {
		rates = append(rates, metering.Rate{Account: userAccount(user.UserID), RPM: int64(g.RateLimitRPM)})
	}
	if key != nil && (key.RPMLimit != nil || key.TPMLimit != nil) {
		r := metering.Rate{Account: keyAccount(key.ID)}
		if key.RPMLimit != nil {
			r.RPM = *key.RPMLimit
		}
		if key.TPMLimit != nil {
			r.TPM = *key.TPMLimit
		}
		rates = append(rates, r)
	}
	return rates
}

// setRateHeaders adds X-RateLimit-* for the most constraining requests-per-
// minute limit.
func setRateHeaders(h http.Header, s metering.RateStatus) {
	if s.Limit == 0 {
		return
	}
	h.Set("X-RateLimit-Limit", strconv.FormatInt(s.Limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(max(s.Remaining, 0), 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.Reset.Unix(), 10))
}

// rateLimited is the contract's 429 for a rate refusal.
func rateLimited(r *metering.RateRefusal) *apiError {
	e := newError(http.StatusTooManyRequests, "rate_limit_exceeded", "Rate limit exceeded")
	e.Header = http.Header{"Retry-After": {strconv.FormatInt(r.RetryAfterSeconds(), 10)}}
	return e
}
