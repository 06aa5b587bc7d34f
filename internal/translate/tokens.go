package translate

import (
	"bytes"
	"strings"

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
	BytesPerToken      = 4 // of text, per token of the estimate
	tokensPerMessage   = 4
	tokensPerCompletes = 3
)

// EstimateTokens converts a byte count of text into tokens, rounding up.
func EstimateTokens(n int) int64 {
	if n <= 0 {
		return 0
	}
	return int64((n + BytesPerToken - 1) / BytesPerToken)
}

// EstimatePromptTokens estimates the prompt of a chat, completions,
// embeddings or responses request from its text fields.
func EstimatePromptTokens(body []byte) int64 {
	root := gjson.ParseBytes(body)
	var tokens int64
	if msgs := root.Get("messages"); msgs.IsArray() {
		msgs.ForEach(func(_, m gjson.Result) bool {
			tokens += tokensPerMessage + EstimateTokens(textBytes(m.Get("content")))
			if tc := m.Get("tool_calls"); tc.Exists() {
				tokens += EstimateTokens(len(tc.Raw))
			}
			return true
		})
		tokens += tokensPerCompletes
	}
	if tools := root.Get("tools"); tools.Exists() {
		tokens += EstimateTokens(len(tools.Raw))
	}
	if prompt := root.Get("prompt"); prompt.Exists() { // legacy completions
		tokens += EstimateTokens(textBytes(prompt))
	}
	if input := root.Get("input"); input.Exists() {
		tokens += EstimateTokens(textBytes(input))
	}
	if sys := root.Get("system"); sys.Exists() {
		tokens += EstimateTokens(textBytes(sys))
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
				n += BytesPerToken // a token id (embeddings input as token arrays)
			} else if part.IsArray() {
				n += textBytes(part)
			}
			return true
		})
		return n
	}
	return 0
}

// Bounds of what a prompt can cost beyond its bytes. Reservations use them:
// they must hold for an honest provider, not be close on average.
const (
	// imageTokenBound is one image, however it is sent: providers resize
	// images to a fixed maximum (Anthropic about 1,600 tokens, OpenAI's
	// tile and patch models at most about 3,800 at high detail).
	imageTokenBound = 10_000
	// toolsTokenBound is the tool-use instructions a provider adds to the
	// prompt when a request has tools (Anthropic documents about 350).
	toolsTokenBound = 1_000
	// builtinToolTokenBound is the hidden definition of one provider-defined
	// tool (a type other than function or custom; Anthropic's computer use
	// is about 750 tokens).
	builtinToolTokenBound = 2_000
)

// PromptTokenBound is the most prompt tokens an honest provider can count
// for body: no tokenizer makes more tokens of text than it has bytes, and
// the JSON around each message is longer than the few tokens of a chat
// template, so the body's size bounds the text. Inline image data is
// replaced by imageTokenBound per image; tools add their instructions.
// Content the body only refers to (previous_response_id, file ids,
// documents by URL, what built-in tools fetch) is not bounded.
func PromptTokenBound(root gjson.Result, body []byte) int64 {
	bound := int64(len(body))
	if bytes.Contains(body, []byte("image")) {
		images, inline := imageParts(root, 0)
		bound += images*imageTokenBound - inline
	}
	if tools := root.Get("tools"); tools.IsArray() && len(tools.Raw) > 2 {
		bound += toolsTokenBound
		tools.ForEach(func(_, tool gjson.Result) bool {
			switch tool.Get("type").Str {
			case "", "function", "custom":
			default:
				bound += builtinToolTokenBound
			}
			return true
		})
	}
	return max(bound, 1)
}

// maxBodyDepth bounds the recursion of imageParts: as deep as the gateway
// lets a request body nest (it refuses deeper ones before estimating).
const maxBodyDepth = 128

// imageParts counts the image content parts under v (chat image_url,
// Responses input_image, Anthropic image blocks, at any depth: tool results
// hold images too) and the bytes of their inline data.
func imageParts(v gjson.Result, depth int) (images, inline int64) {
	if depth > maxBodyDepth {
		return 0, 0
	}
	if v.IsObject() {
		var data gjson.Result
		switch v.Get("type").Str {
		case "image_url":
			if data = v.Get("image_url.url"); !data.Exists() {
				data = v.Get("image_url")
			}
		case "input_image":
			data = v.Get("image_url")
		case "image":
			if data = v.Get("source.data"); !data.Exists() {
				data = v.Get("source.url")
			}
		}
		if data.Exists() || v.Get("type").Str == "input_image" {
			images++
			if data.Type == gjson.String && (v.Get("type").Str == "image" && v.Get("source.type").Str == "base64" || strings.HasPrefix(data.Str, "data:")) {
				inline += int64(len(data.Raw))
			}
			return images, inline
		}
	}
	if v.IsObject() || v.IsArray() {
		v.ForEach(func(_, child gjson.Result) bool {
			i, n := imageParts(child, depth+1)
			images, inline = images+i, inline+n
			return true
		})
	}
	return images, inline
}
