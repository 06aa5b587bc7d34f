package translate

import (
	"math"

	"github.com/tidwall/gjson"
)

// Usage is what a provider reported for one call.
type Usage struct {
	Prompt       int64  // input tokens, Anthropic's cache creation and cache reads included
	Completion   int64  // output tokens
	CachedPrompt int64  // of Prompt, read from a cache (cache_read_input_tokens, prompt_tokens_details.cached_tokens)
	Seen         bool   // the provider reported usage at all
	Invalid      string // why the provider's usage cannot be billed (see InvalidUsage), or ""
}

// MaxReportedTokens is the largest token count taken from a provider: far
// beyond any model's context, so a larger one is a provider's bug or a
// hostile upstream (a prompt_tokens of 1e30 once billed 9.2e12 dollars).
const MaxReportedTokens = 100_000_000

// usageCountFields are the token counts read from usage objects.
var usageCountFields = [...]string{"prompt_tokens", "completion_tokens", "input_tokens", "output_tokens",
	"cache_creation_input_tokens", "cache_read_input_tokens"}

// invalidUsage names the first token count of a usage object that is not
// an integer from 0 to MaxReportedTokens ("prompt_tokens=-2"), or "".
func invalidUsage(u gjson.Result) string {
	for _, field := range usageCountFields {
		v := u.Get(field)
		if !v.Exists() || v.Type == gjson.Null {
			continue
		}
		if v.Type != gjson.Number || v.Num < 0 || v.Num > MaxReportedTokens || v.Num != math.Trunc(v.Num) {
			return field + "=" + truncate(v.Raw, 32)
		}
	}
	return ""
}

// parseUsage reads a usage object in any of the three formats: OpenAI chat
// ("prompt_tokens"), Responses or Anthropic ("input_tokens", whose cache
// tokens count as prompt tokens). It is the one reader of whole usage
// objects; Anthropic's stream totals are merged by anthropicStreamUsage.
func parseUsage(u gjson.Result) Usage {
	if !u.IsObject() {
		return Usage{}
	}
	usage := Usage{Seen: true, Invalid: invalidUsage(u)}
	if p := u.Get("prompt_tokens"); p.Exists() {
		usage.Prompt = p.Int()
		usage.CachedPrompt = u.Get("prompt_tokens_details.cached_tokens").Int()
	} else {
		usage.CachedPrompt = u.Get("cache_read_input_tokens").Int()
		usage.Prompt = u.Get("input_tokens").Int() + u.Get("cache_creation_input_tokens").Int() + usage.CachedPrompt
	}
	if c := u.Get("completion_tokens"); c.Exists() {
		usage.Completion = c.Int()
	} else {
		usage.Completion = u.Get("output_tokens").Int()
	}
	return usage
}

// anthropicStreamUsage follows the usage of an Anthropic event stream:
// message_start states it, message_delta repeats totals (not increments)
// and may omit fields, so only the counts present replace what was seen.
// An input_tokens of 0 in a delta means "not counted here" and keeps the
// start's.
type anthropicStreamUsage struct {
	input, cacheWrite, cacheRead, output int64
	seen                                 bool
	invalid                              string
}

// merge applies the usage object of a message_start or message_delta.
func (s *anthropicStreamUsage) merge(u gjson.Result) {
	if !u.IsObject() {
		return
	}
	s.seen = true
	if bad := invalidUsage(u); bad != "" {
		s.invalid = bad
	}
	if v := u.Get("input_tokens"); v.Type == gjson.Number && v.Int() > 0 {
		s.input = v.Int()
	}
	for _, f := range [...]struct {
		name string
		dst  *int64
	}{{"cache_creation_input_tokens", &s.cacheWrite}, {"cache_read_input_tokens", &s.cacheRead}, {"output_tokens", &s.output}} {
		if v := u.Get(f.name); v.Type == gjson.Number {
			*f.dst = v.Int()
		}
	}
}

// usage reports the totals seen so far.
func (s *anthropicStreamUsage) usage() Usage {
	return Usage{
		Prompt:       s.input + s.cacheWrite + s.cacheRead,
		Completion:   s.output,
		CachedPrompt: s.cacheRead,
		Seen:         s.seen,
		Invalid:      s.invalid,
	}
}

// truncate cuts s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
