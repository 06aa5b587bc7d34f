package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestVirtualKeyUserIsTheCallersEndUser: with a virtual key, the body's
// user (metadata.user_id on /v1/messages) is the caller's own end-user id:
// forwarded unchanged, billed to the key's user, recorded as end_user and
// filterable; with the master key it still names the gateway user.
func TestVirtualKeyUserIsTheCallersEndUser(t *testing.T) {
	t.Parallel()
	ig := startClaudeGateway(t)
	claudeCodeUser := `{"device_id":"fdf30377d9ca","account_uuid":"","session_id":"ae244c8e-4ce3"}`
	long := strings.Repeat("é", 300) // 600 bytes, 300 characters

	for _, tt := range []struct {
		name, path, body, key string
		wantUser              string
		wantEndUser           *string
		upstreamField         string
		upstreamValue         string
	}{
		{"chat with user", "/v1/chat/completions", `{"model":"mock:ok","user":"bob","messages":[{"role":"user","content":"hi"}]}`,
			ig.key, "alice", ptr("bob"), "user", "bob"},
		{"messages with Claude Code's metadata", "/v1/messages", `{"model":"anthropic:claude-ok","max_tokens":10,"metadata":{"user_id":` + jsonString(claudeCodeUser) + `},"messages":[{"role":"user","content":"hi"}]}`,
			ig.key, "alice", ptr(claudeCodeUser), "metadata.user_id", claudeCodeUser},
		{"messages translated to chat", "/v1/messages", `{"model":"mock:ok","max_tokens":10,"metadata":{"user_id":"carol"},"messages":[{"role":"user","content":"hi"}]}`,
			ig.key, "alice", ptr("carol"), "user", "carol"},
		{"a long id is cut to 256 characters", "/v1/chat/completions", `{"model":"mock:ok","user":"` + long + `","messages":[{"role":"user","content":"hi"}]}`,
			ig.key, "alice", ptr(strings.Repeat("é", 256)), "user", long},
		{"a 10,000-character id is forwarded whole", "/v1/chat/completions", `{"model":"mock:ok","user":"` + strings.Repeat("u", 10_000) + `","messages":[{"role":"user","content":"hi"}]}`,
			ig.key, "alice", ptr(strings.Repeat("u", 256)), "user", strings.Repeat("u", 10_000)},
		{"an id with NUL", "/v1/chat/completions", `{"model":"mock:ok","user":"alice\u0000","messages":[{"role":"user","content":"hi"}]}`,
			ig.key, "alice", ptr("alice\x00"), "user", "alice\x00"},
		{"no user", "/v1/chat/completions", `{"model":"mock:ok","messages":[{"role":"user","content":"hi"}]}`,
			ig.key, "alice", nil, "", ""},
		{"master key names the gateway user", "/v1/chat/completions", `{"model":"mock:ok","user":"alice","messages":[{"role":"user","content":"hi"}]}`,
			masterKey, "alice", nil, "user", "alice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, ig.on(t).do("POST", tt.path, tt.body, "x-api-key", tt.key), http.StatusOK)
			rec := ig.recordFor(t, r.Header.Get("X-Request-Id"))
			if rec.UserID != tt.wantUser {
				t.Fatalf("billed %q, want %q", rec.UserID, tt.wantUser)
			}
			if (rec.EndUser == nil) != (tt.wantEndUser == nil) || (rec.EndUser != nil && *rec.EndUser != *tt.wantEndUser) {
				t.Fatalf("end_user = %v, want %v", deref(rec.EndUser), deref(tt.wantEndUser))
			}
			if tt.upstreamField != "" {
				if got := gjson.GetBytes(ig.mock.last(t).Body, tt.upstreamField).String(); got != tt.upstreamValue {
					t.Fatalf("upstream %s = %v, want it unchanged", tt.upstreamField, got)
				}
			}
		})
	}

	// The records are filterable by end user.
	recs := ig.usage(t, "end_user=bob")
	if len(recs) != 1 || deref(recs[0].EndUser) != "bob" {
		t.Fatalf("?end_user=bob listed %d records: %+v", len(recs), recs)
	}
	if recs := ig.usage(t, "user_id=alice&end_user="+url.QueryEscape(claudeCodeUser)); len(recs) != 1 {
		t.Fatalf("?user_id=alice&end_user=<claude code id> listed %d records", len(recs))
	}
	if recs := ig.usage(t, "end_user=nobody"); len(recs) != 0 {
		t.Fatalf("?end_user=nobody listed %d records", len(recs))
	}
}

func ptr(s string) *string { return &s }

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
