package llmgateway

// Translation between the OpenAI Chat Completions API and the Anthropic
// Messages API, so that either kind of client can reach either kind of
// provider. Everything here is pure: bodies in, bodies out, no I/O.
//
// Fields with no counterpart on the other side are dropped rather than
// rejected, because clients send them by default and failing the request
// would break them. reasoning_effort and Anthropic's output_config.effort
// map onto each other; role "system" messages inside an Anthropic request
// become chat system messages where they stand.
//
// Dropped from a chat request bound for Anthropic: frequency_penalty,
// presence_penalty, logit_bias, logprobs, top_logprobs, seed,
// response_format, verbosity, service_tier, store, metadata, modalities,
// audio, prediction, web_search_options, prompt_cache_key,
// safety_identifier, stream_options (the caller reads include_usage
// itself), the legacy functions/function_call, a message's "name", an
// image's "detail" and a tool's "strict". Dropped from an Anthropic request
// bound for an OpenAI-compatible provider: top_k (OpenAI rejects it),
// thinking, context_management, the rest of output_config, service_tier,
// container, mcp_servers, every cache_control, a tool's defer_loading, a
// tool_choice type it does not know, citations, a tool_result's is_error,
// the anthropic-beta header, and the assistant's thinking and
// redacted_thinking blocks (only Anthropic can verify their signatures).
// Content that cannot be carried over (audio, file ids, server tools) is an
// error instead: dropping it would change what the model sees.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// anthropicErrorType is the error type Anthropic uses for an HTTP status.
func anthropicErrorType(status int) string {
	var kind string
	switch {
	case status == 401:
		kind = "authentication_error"
	case status == 402:
		kind = "billing_error"
	case status == 403:
		kind = "permission_error"
	case status == 404:
		kind = "not_found_error"
	case status == 413:
		kind = "request_too_large"
	case status == 429:
		kind = "rate_limit_error"
	case status == 529:
		kind = "overloaded_error"
	case status >= 500:
		kind = "api_error"
	default:
		kind = "invalid_request_error"
	}
	return kind
}

// anthropicBodyError reports an Anthropic error body as an error.
func anthropicBodyError(root gjson.Result) error {
	if root.Get("type").String() != "error" {
		return nil
	}
	return &providerError{kind: root.Get("error.type").String(), message: root.Get("error.message").String()}
}

// providerError is an error the provider reported in place of (or in
// the middle of) a response; kind is the provider's error type, if any.
type providerError struct {
	kind, message string
}

func (e *providerError) Error() string {
	if e.kind == "" {
		return "provider error: " + e.message
	}
	return "provider error " + e.kind + ": " + e.message
}

func translationInput(body []byte) (gjson.Result, error) {
	if !gjson.ValidBytes(body) {
		return gjson.Result{}, errors.New("invalid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return gjson.Result{}, errors.New("body must be a JSON object")
	}
	return root, nil
}

// joinedBlockText reads a string, or the text of an array of text blocks/parts.
func joinedBlockText(v gjson.Result) (string, error) {
	switch {
	case !v.Exists() || v.Type == gjson.Null:
		return "", nil
	case v.Type == gjson.String:
		return v.Str, nil
	case !v.IsArray():
		return "", errors.New("must be a string or an array of text blocks")
	}
	var texts []string
	for _, b := range v.Array() {
		if t := b.Get("type").String(); t != "text" {
			return "", fmt.Errorf("unsupported block type %q", t)
		}
		if s := b.Get("text").String(); s != "" {
			texts = append(texts, s)
		}
	}
	return strings.Join(texts, "\n"), nil
}

// stopList reads a string or an array of strings; null means none.
func stopList(v gjson.Result) ([]string, error) {
	switch {
	case !v.Exists() || v.Type == gjson.Null:
		return nil, nil
	case v.Type == gjson.String:
		if v.Str == "" {
			return nil, nil
		}
		return []string{v.Str}, nil
	case !v.IsArray():
		return nil, errors.New("must be a string or an array of strings")
	}
	var out []string
	for _, s := range v.Array() {
		if s.Type != gjson.String {
			return nil, errors.New("must be a string or an array of strings")
		}
		out = append(out, s.Str)
	}
	return out, nil
}

// numericParam passes a numeric field through unchanged, so that values keep
// their exact spelling; null means unset.
func numericParam(v gjson.Result) (json.RawMessage, error) {
	switch v.Type {
	case gjson.Null:
		return nil, nil
	case gjson.Number:
		return json.RawMessage(v.Raw), nil
	default:
		return nil, errors.New("must be a number")
	}
}

// toolArguments renders a tool input object as the compact JSON string chat
// uses for arguments; a missing input is an empty object.
func toolArguments(v gjson.Result) (string, error) {
	if !v.Exists() || v.Type == gjson.Null {
		return "{}", nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(v.Raw)); err != nil {
		return "", err
	}
	return buf.String(), nil
}
