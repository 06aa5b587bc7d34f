package llmgateway

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/internal/translate"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// apiError is an error the gateway answers to the client with the contract's
// JSON body. Handlers return it; writeError turns it into the response.
type apiError struct {
	Status  int
	Code    string
	Message string
	// Header holds extra response headers such as Retry-After or Allow.
	Header http.Header
}

func (e *apiError) Error() string { return e.Message }

func newError(status int, code, message string) *apiError {
	return &apiError{Status: status, Code: code, Message: message}
}

func errBadRequest(message string) *apiError {
	return newError(http.StatusBadRequest, "invalid_request", message)
}

func errValidation(message string) *apiError {
	return newError(http.StatusUnprocessableEntity, "validation_error", message)
}

func errNotFound(message string) *apiError {
	return newError(http.StatusNotFound, "not_found", message)
}

func errUnauthorized(code, message string) *apiError {
	return newError(http.StatusUnauthorized, code, message)
}

func errForbidden(code, message string) *apiError {
	return newError(http.StatusForbidden, code, message)
}

// errStoreUnavailable is what clients see when the store cannot serve a
// request; the cause is logged, never returned.
var errStoreUnavailable = newError(http.StatusServiceUnavailable, "database_unavailable", "Database unavailable")

// errorDetail is the "error" object of the contract's error bodies.
type errorDetail = translate.ErrorDetail

// writeError answers err in the contract's shape: an *apiError as it is,
// anything else as a 503 (store failures) or 500, logged with its cause.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		if errors.Is(err, storage.ErrClosed) || isStoreError(err) {
			ae = errStoreUnavailable
			g.state.health.failed()
		} else {
			ae = newError(http.StatusInternalServerError, "internal_error", "Internal server error")
		}
		g.logger.Error("request failed",
			zap.String("method", r.Method),
			zap.String("path", r.URL.Path),
			zap.String("request_id", w.Header().Get("X-Request-Id")),
			zap.Error(err))
	}
	observeRefusal(ae)
	for k, vs := range ae.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	writeJSON(w, ae.Status, clientDialect(r).ErrorBody(ae.Status, ae.Code, ae.Message))
}

// clientDialect is the one choice of the error dialect a request's client
// reads, by its route: on the Anthropic Messages routes (/v1/messages and
// anything below it) every answer, a 404 too, and a stream's error event
// have Anthropic's shape. It reads the path as the router does.
func clientDialect(r *http.Request) translate.Dialect {
	if anthropicRoute(r.URL.EscapedPath()) {
		return translate.Anthropic
	}
	return translate.OpenAI
}

func anthropicRoute(path string) bool {
	segs, ok := pathSegments(path)
	if ok {
		return len(segs) > 0 && segs[0] == "messages"
	}
	// A path the router refuses (an empty or control segment further on,
	// as in /v1/messages//x) is still under /v1/messages.
	rest, under := strings.CutPrefix(path, "/v1/")
	first, _, _ := strings.Cut(rest, "/")
	first, err := url.PathUnescape(first)
	return under && err == nil && first == "messages"
}

// storeError marks an error that came from the store.
type storeError struct{ err error }

func (e storeError) Error() string { return e.err.Error() }
func (e storeError) Unwrap() error { return e.err }

func isStoreError(err error) bool {
	var se storeError
	return errors.As(err, &se)
}

// methodNotAllowed answers a known path with an unsupported method.
func methodNotAllowed(allowed ...string) *apiError {
	e := newError(http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed")
	e.Header = http.Header{}
	for _, m := range allowed {
		e.Header.Add("Allow", m)
	}
	return e
}
