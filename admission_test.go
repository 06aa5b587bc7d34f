package llmgateway

import (
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmgateway/caddy-llm-gateway/internal/translate"
)

func TestCompletionBoundIsTheFieldTheProviderObeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ep     endpointKind
		format apiFormat
		body   string
		want   int64
	}{
		{"chat default", kindChat, formatOpenAI, `{}`, 4096},
		{"chat max_tokens", kindChat, formatOpenAI, `{"max_tokens":10}`, 10},
		{"chat the larger of both", kindChat, formatOpenAI, `{"max_completion_tokens":1,"max_tokens":16}`, 16},
		{"chat the larger of both, other order", kindChat, formatOpenAI, `{"max_tokens":1,"max_completion_tokens":16}`, 16},
		{"chat ignores max_output_tokens", kindChat, formatOpenAI, `{"max_output_tokens":1}`, 4096},
		{"chat times n", kindChat, formatOpenAI, `{"max_tokens":10,"n":3}`, 30},
		{"chat n as an OpenAI-compatible server obeys it", kindChat, formatOpenAI, `{"max_tokens":10,"n":100000}`, 1_000_000},
		{"chat n in a string", kindChat, formatOpenAI, `{"max_tokens":10,"n":"50"}`, 500},
		{"chat max_tokens in a string: at least the default", kindChat, formatOpenAI, `{"max_tokens":"100000"}`, 100000},
		{"chat small max_tokens in a string", kindChat, formatOpenAI, `{"max_tokens":"10"}`, 4096},
		{"chat not a number", kindChat, formatOpenAI, `{"max_tokens":"lots","n":"many"}`, 4096},
		{"chat huge n saturates", kindChat, formatOpenAI, `{"max_tokens":1e300,"n":1e300}`, completionCeiling},
		{"completions", kindCompletions, formatOpenAI, `{"max_tokens":10,"prompt":"hi"}`, 10},
		{"completions times n", kindCompletions, formatOpenAI, `{"max_tokens":10,"n":100,"prompt":"hi"}`, 1000},
		{"completions best_of", kindCompletions, formatOpenAI, `{"max_tokens":10,"n":2,"best_of":5,"prompt":"hi"}`, 50},
		{"completions per prompt", kindCompletions, formatOpenAI, `{"max_tokens":10,"n":2,"prompt":["a","b","c"]}`, 60},
		{"completions token lists", kindCompletions, formatOpenAI, `{"max_tokens":10,"prompt":[[1,2],[3]]}`, 20},
		{"completions one token list", kindCompletions, formatOpenAI, `{"max_tokens":10,"prompt":[1,2,3]}`, 10},
		{"messages max_tokens in a string", kindMessages, formatAnthropic, `{"max_tokens":"100000"}`, 100000},
		{"chat fraction rounds up", kindChat, formatOpenAI, `{"max_tokens":1.5}`, 2},
		{"chat zero is the default", kindChat, formatOpenAI, `{"max_tokens":0}`, 4096},
		{"chat huge is capped", kindChat, formatOpenAI, `{"max_tokens":1e300}`, maxTokensCeiling},
		{"chat to anthropic: first set", kindChat, formatAnthropic, `{"max_completion_tokens":5,"max_tokens":16}`, 5},
		{"chat to anthropic: max_tokens", kindChat, formatAnthropic, `{"max_completion_tokens":null,"max_tokens":16}`, 16},
		{"messages", kindMessages, formatAnthropic, `{"max_tokens":4096,"max_completion_tokens":1}`, 4096},
		{"messages translated", kindMessages, formatOpenAI, `{"max_tokens":4096,"max_completion_tokens":1}`, 4096},
		{"messages ignores n", kindMessages, formatAnthropic, `{"max_tokens":7,"n":5}`, 7},
		{"responses", kindResponses, formatOpenAI, `{"max_output_tokens":50,"max_tokens":1}`, 50},
		{"responses ignores max_tokens", kindResponses, formatOpenAI, `{"max_tokens":1}`, 4096},
		{"embeddings", kindEmbeddings, formatOpenAI, `{"max_tokens":100}`, 0},
	}
	for _, tt := range tests {
		if got := completionBound(gjson.Parse(tt.body), tt.ep, tt.format, 4096); got != tt.want {
			t.Errorf("%s: completionBound = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestCompletionBoundMatchesTranslations: a translated request is reserved
// for the max_tokens the translation sends.
func TestCompletionBoundMatchesTranslations(t *testing.T) {
	t.Parallel()
	chats := []string{
		`{"model":"x","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"x","max_completion_tokens":3,"max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"x","max_tokens":16,"max_completion_tokens":30,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"x","messages":[{"role":"user","content":"hi"}]}`,
	}
	for _, body := range chats {
		out, _, err := translate.NewOpenAIToAnthropic(translate.Options{Model: "m", DefaultMaxTokens: 4096}).Request([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if sent, bound := gjson.GetBytes(out, "max_tokens").Int(), completionBound(gjson.Parse(body), kindChat, formatAnthropic, 4096); bound < sent {
			t.Errorf("%s: reserved %d, sent %d", body, bound, sent)
		}
	}
	messages := []string{
		`{"model":"x","max_tokens":4096,"max_completion_tokens":1,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"x","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"x","max_tokens":1.5,"messages":[{"role":"user","content":"hi"}]}`,
	}
	for _, body := range messages {
		out, _, err := translate.NewAnthropicToOpenAI(translate.Options{Model: "m"}).Request([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		root := gjson.ParseBytes(out)
		sent := max(root.Get("max_tokens").Int(), root.Get("max_completion_tokens").Int())
		if bound := completionBound(gjson.Parse(body), kindMessages, formatOpenAI, 4096); bound < sent {
			t.Errorf("%s: reserved %d, sent %d", body, bound, sent)
		}
	}
}
