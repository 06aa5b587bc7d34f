package llmgateway

import (
	"net/http"
	"slices"
)

const (
	corsAllowMethods = "GET, POST, PATCH, DELETE, OPTIONS"
	corsAllowHeaders = "Content-Type, Authorization, X-AnyLLM-Key, AnyLLM-Key, x-api-key"
)

// handleCORS adds CORS headers for an allowed Origin and answers preflight
// requests itself (reporting true). CORS is off without cors_allow_origins.
func (g *Gateway) handleCORS(w http.ResponseWriter, r *http.Request) bool {
	if len(g.CORSAllowOrigins) == 0 {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	wildcard := slices.Contains(g.CORSAllowOrigins, "*")
	if !wildcard && !slices.Contains(g.CORSAllowOrigins, origin) {
		return false
	}
	if wildcard {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Set("Access-Control-Expose-Headers", "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", corsAllowMethods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}
