package llmgateway

import (
	"github.com/tidwall/gjson"
)

// Token estimates are used only when a provider reports no usage (a stream
// that ends or is cut without its usage chunk). They count about four bytes
// of text per token, the usual ratio of BPE tokenizers on English text and
// code (cl100k/o200k average 3.6–4.2 bytes per token there), plus a small
// per-message overhead. The estimate errs by roughly ±25% on such text and
// undercounts dense non-Latin scripts; it exists so that a stream is never
// billed as zero, not to replace provider usage.
const (
	bytesPerToken      = 4
	tokensPerMessage   = 4
	tokensPerCompletes = 3
)

// estimateTokens converts a byte count of text into tokens, rounding up.
func estimateTokens(n int) int64 {
	if n <= 0 {
		return 0
	}
	return int64((n + bytesPerToken - 1) / bytesPerToken)
}

// estimatePromptTokens estimates the prompt of a chat, embeddings or
// responses request from its text fields.
func estimatePromptTokens(body []byte) int64 {
	root := gjson.ParseBytes(body)
	var tokens int64
	if msgs := root.Get("messages"); msgs.IsArray() {
		msgs.ForEach(func(_, m gjson.Result) bool {
			tokens += tokensPerMessage + estimateTokens(textBytes(m.Get("content")))
			if tc := m.Get("tool_calls"); tc.Exists() {
				tokens += estimateTokens(len(tc.Raw))
			}
			return true
		})
		tokens += tokensPerCompletes
	}
	if tools := root.Get("tools"); tools.Exists() {
		tokens += estimateTokens(len(tools.Raw))
	}
	if input := root.Get("input"); input.Exists() {
		tokens += estimateTokens(textBytes(input))
	}
	if sys := root.Get("system"); sys.Exists() {
		tokens += estimateTokens(textBytes(sys))
	}
	return tokens
}

// textBytes counts the bytes of text in a content value: a string, or an
// array of strings and parts with "text".
func textBytes(v gjson.Result) int {
	switch {
	case v.Type == gjson.String:
		return len(v.Str)
	case v.IsArray():
		n := 0
		v.ForEach(func(_, part gjson.Result) bool {
			if part.Type == gjson.String {
				n += len(part.Str)
			} else if t := part.Get("text"); t.Type == gjson.String {
				n += len(t.Str)
			} else if part.Type == gjson.Number {
				n += bytesPerToken // a token id (embeddings input as token arrays)
			} else if part.IsArray() {
				n += textBytes(part)
			}
			return true
		})
		return n
	}
	return 0
}
