package llmgateway

import (
	"errors"
	"net/http"

	"go.uber.org/zap"
)

// serveHealth answers /health, /health/liveness and /health/readiness
// without authentication. Readiness checks the store and never reveals why
// it failed.
func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		g.writeError(w, r, methodNotAllowed(http.MethodGet, http.MethodHead))
		return
	}
	switch r.URL.Path {
	case "/health", "/health/":
		writeJSON(w, http.StatusOK, map[string]string{"status": "healthy"})
	case "/health/liveness":
		writeJSON(w, http.StatusOK, "I'm alive!")
	case "/health/readiness":
		err := g.state.store.Ping()
		if err == nil && !g.state.health.writable(g.state.store, g.now()) {
			err = errors.New("the store fails writes")
		}
		if err != nil {
			g.logger.Warn("readiness check failed", zap.Error(err))
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{
				"detail": map[string]string{"status": "unhealthy", "database": "unavailable", "version": Version},
				"error":  errorDetail{Message: "Database unavailable", Type: "server_error", Code: "database_unavailable"},
			})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "healthy", "database": "connected", "version": Version})
	default:
		g.writeError(w, r, errNotFound("Not found"))
	}
}
