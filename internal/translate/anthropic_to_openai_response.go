package translate

import (
	"encoding/json"
	"fmt"
	"strings"
)

// chatResponseFromAnthropic translates an Anthropic Messages response into
// an OpenAI chat.completion reporting clientModel.
func chatResponseFromAnthropic(body []byte, clientModel string, created int64) ([]byte, Usage, error) {
	root, err := translationInput(body)
	if err != nil {
		return nil, Usage{}, fmt.Errorf("anthropic response: %w", err)
	}
	if err := anthropicBodyError(root); err != nil {
		return nil, Usage{}, fmt.Errorf("anthropic response: %w", err)
	}
	if t := root.Get("type").String(); t != "" && t != "message" {
		return nil, Usage{}, fmt.Errorf("anthropic response: unexpected type %q", t)
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
				return nil, Usage{}, fmt.Errorf("anthropic response: tool_use %q input: %w", b.Get("id").String(), err)
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
	usage := parseUsage(root.Get("usage"))
	resp := openaiCompletion{
		ID:      "chatcmpl-" + root.Get("id").String(),
		Object:  "chat.completion",
		Created: created,
		Model:   clientModel,
		Choices: []openaiChoice{{Message: msg, FinishReason: finishReasonFromAnthropic(root.Get("stop_reason").String())}},
	}
	if usage.Seen {
		resp.Usage = openaiUsageOf(usage)
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, Usage{}, fmt.Errorf("encoding chat response: %w", err)
	}
	return out, usage, nil
}

func openaiUsageOf(u Usage) *openaiUsage {
	return &openaiUsage{
		PromptTokens:        u.Prompt,
		CompletionTokens:    u.Completion,
		TotalTokens:         u.Prompt + u.Completion,
		PromptTokensDetails: openaiPromptDetails{CachedTokens: u.CachedPrompt},
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
