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
