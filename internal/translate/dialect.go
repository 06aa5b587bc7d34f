package translate

// Dialect is the API family a client speaks, and so the shape of the
// errors it can read. The route a request arrives on decides it.
type Dialect uint8

const (
	// OpenAI is the OpenAI-compatible APIs (chat, completions, embeddings,
	// responses) and the gateway's own contract.
	OpenAI Dialect = iota
	// Anthropic is the Anthropic Messages API.
	Anthropic
)

// MsgStreamError is the contract's message of a stream that failed midway.
const MsgStreamError = "An error occurred during streaming"

var (
	openaiStreamError    = []byte("data: {\"error\": {\"message\": \"" + MsgStreamError + "\", \"type\": \"server_error\"}}\n\ndata: [DONE]\n\n")
	anthropicStreamError = []byte("event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"api_error\", \"message\": \"" + MsgStreamError + "\"}}\n\n")
)

// StreamError is what a client receives when its stream fails midway.
func (d Dialect) StreamError() []byte {
	if d == Anthropic {
		return anthropicStreamError
	}
	return openaiStreamError
}

// ErrorBody is the JSON body of an error answered with status: the
// contract's shape, or for Anthropic clients {"type":"error","error":
// {"type","message"}}, where detail keeps any-llm clients working too.
func (d Dialect) ErrorBody(status int, code, message string) any {
	if d == Anthropic {
		return anthropicErrorBody{
			Type:   "error",
			Detail: message,
			Error:  ErrorDetail{Message: message, Type: anthropicErrorType(status), Code: code},
		}
	}
	return openaiErrorBody{Detail: message, Error: ErrorDetail{Message: message, Type: contractErrorType(status, code), Code: code}}
}

// ErrorDetail is the "error" object of an error body.
type ErrorDetail struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    string `json:"code"`
}

type openaiErrorBody struct {
	Detail string      `json:"detail"`
	Error  ErrorDetail `json:"error"`
}

type anthropicErrorBody struct {
	Type   string      `json:"type"`
	Error  ErrorDetail `json:"error"`
	Detail string      `json:"detail"`
}

// anthropicErrorType is the error type Anthropic uses for an HTTP status.
func anthropicErrorType(status int) string {
	switch {
	case status == 401:
		return "authentication_error"
	case status == 402:
		return "billing_error"
	case status == 403:
		return "permission_error"
	case status == 404:
		return "not_found_error"
	case status == 413:
		return "request_too_large"
	case status == 429:
		return "rate_limit_error"
	case status == 529:
		return "overloaded_error"
	case status >= 500:
		return "api_error"
	default:
		return "invalid_request_error"
	}
}

// contractErrorType maps a status to the contract's error "type".
func contractErrorType(status int, code string) string {
	switch {
	case status == 401:
		return "authentication_error"
	case status == 403:
		if code == "budget_exceeded" {
			return "budget_exceeded"
		}
		return "permission_error"
	case status == 404:
		return "not_found_error"
	case status == 429:
		return "rate_limit_error"
	case status == 502 || status == 504:
		return "upstream_error"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}
