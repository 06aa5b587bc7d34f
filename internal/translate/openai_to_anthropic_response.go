package translate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// anthropicResponseFromChat translates an OpenAI chat.completion into an
// Anthropic Messages response reporting clientModel. Only the first choice
// is kept; reasoning text is dropped, since a thinking block would need a
// signature only Anthropic can make.
func anthropicResponseFromChat(body []byte, clientModel string) ([]byte, Usage, error) {
	root, err := translationInput(body)
	if err != nil {
		return nil, Usage{}, fmt.Errorf("chat response: %w", err)
	}
	if e := root.Get("error"); e.Exists() && e.Type != gjson.Null {
		return nil, Usage{}, fmt.Errorf("chat response: provider error: %s", e.Get("message").String())
	}
	choice := root.Get("choices.0")
	if !choice.Exists() {
		return nil, Usage{}, errors.New("chat response: no choices")
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
		return nil, Usage{}, fmt.Errorf("chat response: content: %w", err)
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
			return nil, Usage{}, fmt.Errorf("chat response: tool_calls[%d]: arguments: %w", k, err)
		}
		resp.Content = append(resp.Content, anthropicBlock{
			Type:  "tool_use",
			ID:    call.Get("id").String(),
			Name:  call.Get("function.name").String(),
			Input: input,
		})
	}
	usage := parseUsage(root.Get("usage"))
	resp.Usage = anthropicUsageOf(usage)
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, Usage{}, fmt.Errorf("encoding anthropic response: %w", err)
	}
	return out, usage, nil
}

// anthropicUsageOf splits a prompt total back into Anthropic's fields.
// Cache writes are not reported by OpenAI-compatible providers, so the
// uncached rest all counts as input_tokens.
func anthropicUsageOf(u Usage) anthropicUsage {
	return anthropicUsage{
		InputTokens:          max(u.Prompt-u.CachedPrompt, 0),
		OutputTokens:         u.Completion,
		CacheReadInputTokens: u.CachedPrompt,
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
