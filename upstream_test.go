package llmgateway

import "testing"

func TestRedactProviderKey(t *testing.T) {
	t.Parallel()
	withKey := &upstream{apiKey: "sk-secret"}
	if got := string(withKey.redactBytes([]byte(`{"error":"bad key sk-secret"}`))); got != `{"error":"bad key [REDACTED]"}` {
		t.Fatalf("redacted = %s", got)
	}
	if got := withKey.redact("sk-secret and sk-secret"); got != "[REDACTED] and [REDACTED]" {
		t.Fatalf("redacted = %s", got)
	}
	// A provider without a key (a local vLLM) must get its body back unchanged.
	noKey := &upstream{}
	if got := string(noKey.redactBytes([]byte(`{"error":"x"}`))); got != `{"error":"x"}` {
		t.Fatalf("body without a key to redact changed: %s", got)
	}
}

// TestEveryPairingIsTranslatedServedOrRefused pins which client API a
// provider format answers, and how: through a translator of the table, as
// the provider's own API, or refused with the API's name.
func TestEveryPairingIsTranslatedServedOrRefused(t *testing.T) {
	t.Parallel()
	openai := &upstream{format: formatOpenAI}
	withResponses := &upstream{format: formatOpenAI, responses: true}
	anthropic := &upstream{format: formatAnthropic}
	tests := []struct {
		kind       endpointKind
		up         *upstream
		translated bool
		served     bool
	}{
		{kindChat, openai, false, true},
		{kindChat, anthropic, true, false},
		{kindMessages, openai, true, false},
		{kindMessages, anthropic, false, true},
		{kindEmbeddings, openai, false, true},
		{kindEmbeddings, anthropic, false, false},
		{kindCompletions, openai, false, true},
		{kindCompletions, anthropic, false, false},
		{kindResponses, openai, false, false},
		{kindResponses, withResponses, false, true},
		{kindResponses, anthropic, false, false},
	}
	for _, tt := range tests {
		_, translated := translators[translationKey{tt.kind, tt.up.format}]
		served := !translated && tt.up.serves(tt.kind)
		if translated != tt.translated || served != tt.served {
			t.Errorf("%s to format %d (responses %v): translated %v, served %v; want %v, %v",
				tt.kind.apiName(), tt.up.format, tt.up.responses, translated, served, tt.translated, tt.served)
		}
	}
}
