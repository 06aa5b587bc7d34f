package integration

import (
	"testing"
)

// TestChatMessagesValidatedBeforeForwarding: a chat request without a
// usable messages array is a 422 naming the field, and no provider sees it.
func TestChatMessagesValidatedBeforeForwarding(t *testing.T) {
	t.Parallel()
	ig := startClaudeGateway(t)
	for _, tt := range []struct{ body, field string }{
		{`{"model":"mock:ok"}`, "messages"},
		{`{"model":"mock:ok","messages":[]}`, "messages"},
		{`{"model":"mock:ok","messages":"hi"}`, "messages"},
		{`{"model":"mock:ok","messages":[{"content":"hi"}]}`, "messages[0].role"},
		{`{"model":"mock:ok","messages":[{"role":"user","content":"hi"},{"role":7}]}`, "messages[1].role"},
		{`{"model":"mock:ok","messages":["hi"]}`, "messages[0]"},
		{`{"model":"anthropic:claude-ok","messages":[]}`, "messages"},
	} {
		expectValidation(t, ig.do("POST", "/v1/chat/completions", tt.body, bearer(ig.key)...), tt.field)
	}
	if n := len(ig.mock.Requests()); n != 0 {
		t.Fatalf("the provider received %d requests", n)
	}
	if recs := ig.usage(t, "limit=1000"); len(recs) != 0 {
		t.Fatalf("%d usage records for refused requests", len(recs))
	}
}
