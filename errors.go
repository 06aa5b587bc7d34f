package llmgateway

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

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

// errorType maps a status to the contract's error "type".
func errorType(status int, code string) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		if code == "budget_exceeded" {
			return "budget_exceeded"
		}
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
		return "upstream_error"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}

type errorBody struct {
	Detail string      `json:"detail"`
	Error  errorDetail `json:"error"`
}

type errorDetail struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    string `json:"code"`
}

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
	if anthropicRoute(r) {
		// Anthropic clients read {"type":"error","error":{"type","message"}};
		// detail keeps any-llm clients working there too.
		writeJSON(w, ae.Status, anthropicErrorResponse{
			Type:   "error",
			Detail: ae.Message,
			Error:  errorDetail{Message: ae.Message, Type: anthropicErrorType(ae.Status), Code: ae.Code},
		})
		return
	}
	writeJSON(w, ae.Status, errorBody{
		Detail: ae.Message,
		Error:  errorDetail{Message: ae.Message, Type: errorType(ae.Status, ae.Code), Code: ae.Code},
	})
}

// anthropicRoute reports whether r is on the Anthropic Messages routes
// (/v1/messages and anything below it), where every answer, a 404 too, has
// Anthropic's error shape. It reads the path as the router does.
func anthropicRoute(r *http.Request) bool {
	segs, ok := pathSegments(r.URL.EscapedPath())
	if ok {
		return len(segs) > 0 && segs[0] == "messages"
	}
	// A path the router refuses (an empty or control segment further on,
	// as in /v1/messages//x) is still under /v1/messages.
	rest, under := strings.CutPrefix(r.URL.EscapedPath(), "/v1/")
	first, _, _ := strings.Cut(rest, "/")
	first, err := url.PathUnescape(first)
	return under && err == nil && first == "messages"
}

type anthropicErrorResponse struct {
	Type   string      `json:"type"`
	Error  errorDetail `json:"error"`
	Detail string      `json:"detail"`
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
