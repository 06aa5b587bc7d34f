package llmgateway

import (
	"net/http"
)

// routeInference routes the OpenAI-compatible inference endpoints.
func (g *Gateway) routeInference(w http.ResponseWriter, r *http.Request, resource string, rest []string) error {
	return errNotFound("Not found")
}
