package llmgateway

import (
	"errors"
	"net/http"

	"go.uber.org/zap"
)

// The health routes (/health, /health/liveness, /health/readiness) answer
// GET and HEAD without authentication.

func (g *Gateway) serveHealth(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "healthy"})
	return nil
}

func (g *Gateway) serveLiveness(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, "I'm alive!")
	return nil
}

// serveReadiness checks the store and never reveals why it failed.
func (g *Gateway) serveReadiness(w http.ResponseWriter, _ *http.Request) error {
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
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "healthy", "database": "connected", "version": Version})
	return nil
}
