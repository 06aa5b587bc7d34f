package llmgateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// chatResponseFromAnthropic translates an Anthropic Messages response into
// an OpenAI chat.completion reporting clientModel.
func chatResponseFromAnthropic(body []byte, clientModel string, created int64) ([]byte, tokenUsage, error) {
	root, err := translationInput(body)
	if err != nil {
		return nil, tokenUsage{}, fmt.Errorf("anthropic response: %w", err)
	}
	if err := anthropicBodyError(root); err != nil {
		return nil, tokenUsage{}, fmt.Errorf("anthropic response: %w", err)
	}
	if t := root.Get("type").String(); t != "" && t != "message" {
		return nil, tokenUsage{}, fmt.Errorf("anthropic response: unexpected type %q", t)
	}
	var text, reasoning strings.Builder
	var calls []openaiToolCall
	for _, b := range root.Get("content").Array() {
		switch b.Get("type").String() {
		case "text":
			text.WriteString(b.Get("text").String())
		case "thinking":
			reasoning.WriteString(b.Get("thinking").String())
		case "tool_use":
			args, err := toolArguments(b.Get("input"))
			if err != nil {
				return nil, tokenUsage{}, fmt.Errorf("anthropic response: tool_use %q input: %w", b.Get("id").String(), err)
			}
			calls = append(calls, openaiToolCall{
				ID:       b.Get("id").String(),
				Type:     "function",
				Function: openaiFunction{Name: b.Get("name").String(), Arguments: args},
			})
		}
		// redacted_thinking and server tool blocks have no chat equivalent.
	}
	msg := openaiMessage{Role: "assistant", ReasoningContent: reasoning.String(), ToolCalls: calls}
	if text.Len() > 0 || len(calls) == 0 {
		msg.Content = text.String()
	}
	usage := tokenUsageFromAnthropic(root.Get("usage"))
	resp := openaiCompletion{
		ID:      "chatcmpl-" + root.Get("id").String(),
		Object:  "chat.completion",
		Created: created,
		Model:   clientModel,
		Choices: []openaiChoice{{Message: msg, FinishReason: finishReasonFromAnthropic(root.Get("stop_reason").String())}},
	}
	if usage.seen {
		resp.Usage = openaiUsageOf(usage)
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, tokenUsage{}, fmt.Errorf("encoding chat response: %w", err)
	}
	return out, usage, nil
}

// tokenUsageFromAnthropic reads a Messages usage object. Anthropic counts
// cached input apart from input_tokens; the prompt total adds it back.
func tokenUsageFromAnthropic(u gjson.Result) tokenUsage {
	if !u.IsObject() {
		return tokenUsage{}
	}
	read := u.Get("cache_read_input_tokens").Int()
	return tokenUsage{
		prompt:       u.Get("input_tokens").Int() + u.Get("cache_creation_input_tokens").Int() + read,
		completion:   u.Get("output_tokens").Int(),
		cachedPrompt: read,
		seen:         true,
		invalid:      invalidUsage(u),
	}
}

// tokenUsageFromOpenAI reads a chat usage object.
func tokenUsageFromOpenAI(u gjson.Result) tokenUsage {
	if !u.IsObject() {
		return tokenUsage{}
	}
	return tokenUsage{
		prompt:       u.Get("prompt_tokens").Int(),
		completion:   u.Get("completion_tokens").Int(),
		cachedPrompt: u.Get("prompt_tokens_details.cached_tokens").Int(),
		seen:         true,
		invalid:      invalidUsage(u),
	}
}

func openaiUsageOf(u tokenUsage) *openaiUsage {
	return &openaiUsage{
		PromptTokens:        u.prompt,
		CompletionTokens:    u.completion,
		TotalTokens:         u.prompt + u.completion,
		PromptTokensDetails: openaiPromptDetails{CachedTokens: u.cachedPrompt},
	}
}

// anthropicUsageOf splits a prompt total back into Anthropic's fields.
// Cache writes are not reported by OpenAI-compatible providers, so the
// uncached rest all counts as input_tokens.
func anthropicUsageOf(u tokenUsage) anthropicUsage {
	return anthropicUsage{
		InputTokens:          max(u.prompt-u.cachedPrompt, 0),
		OutputTokens:         u.completion,
		CacheReadInputTokens: u.cachedPrompt,
	}
}

func finishReasonFromAnthropic(stopReason string) string {
	switch stopReason {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	default: // end_turn, stop_sequence, pause_turn
		return "stop"
	}
}

func stopReasonFromOpenAI(finishReason string) string {
	switch finishReason {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	default:
		return "end_turn"
	}
}

// anthropicResponseFromChat translates an OpenAI chat.completion into an
// Anthropic Messages response reporting clientModel. Only the first choice
// is kept; reasoning text is dropped, since a thinking block would need a
// signature only Anthropic can make.
func anthropicResponseFromChat(body []byte, clientModel string) ([]byte, tokenUsage, error) {
	root, err := translationInput(body)
	if err != nil {
		return nil, tokenUsage{}, fmt.Errorf("chat response: %w", err)
	}
	if e := root.Get("error"); e.Exists() && e.Type != gjson.Null {
		return nil, tokenUsage{}, fmt.Errorf("chat response: provider error: %s", e.Get("message").String())
	}
	choice := root.Get("choices.0")
	if !choice.Exists() {
		return nil, tokenUsage{}, errors.New("chat response: no choices")
	}
	msg := choice.Get("message")
	resp := anthropicResponse{
		ID:         "msg_" + strings.TrimPrefix(root.Get("id").String(), "chatcmpl-"),
		Type:       "message",
		Role:       "assistant",
		Model:      clientModel,
		Content:    []anthropicBlock{},
		StopReason: stopReasonFromOpenAI(choice.Get("finish_reason").String()),
	}
	text, err := joinedBlockText(msg.Get("content"))
	if err != nil {
		return nil, tokenUsage{}, fmt.Errorf("chat response: content: %w", err)
	}
	if text == "" {
		text = msg.Get("refusal").String()
	}
	if text != "" {
		resp.Content = append(resp.Content, anthropicBlock{Type: "text", Text: text})
	}
	for k, call := range msg.Get("tool_calls").Array() {
		input, err := toolInputObject(call.Get("function.arguments").String())
		if err != nil {
			return nil, tokenUsage{}, fmt.Errorf("chat response: tool_calls[%d]: arguments: %w", k, err)
		}
		resp.Content = append(resp.Content, anthropicBlock{
			Type:  "tool_use",
			ID:    call.Get("id").String(),
			Name:  call.Get("function.name").String(),
			Input: input,
		})
	}
	usage := tokenUsageFromOpenAI(root.Get("usage"))
	resp.Usage = anthropicUsageOf(usage)
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, tokenUsage{}, fmt.Errorf("encoding anthropic response: %w", err)
	}
	return out, usage, nil
}
