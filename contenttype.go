package llmgateway

import (
	"mime"
	"net/http"
	"strings"
)

// checkJSONContentType accepts a request body declared as JSON
// (application/json or any +json type) or not declared at all; a form or
// text body is a 415, not silently decoded as JSON.
func checkJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return nil
	}
	return newError(http.StatusUnsupportedMediaType, "unsupported_content_type", "Content-Type must be application/json")
}
