package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// TestClaudeCodeThroughTheGateway runs the real Claude Code CLI (pinned in
// claude-code/package-lock.json) against the gateway with a virtual key,
// on a model the gateway translates (an OpenAI-compatible provider) and on
// one it passes through (an Anthropic-format provider): a text answer, a
// tool round trip (the model reads a file with Claude Code's Read tool and
// quotes it), and /context, which counts tokens. Every inference call
// leaves one usage record with the provider's tokens and Claude Code's
// metadata.user_id as end_user; count_tokens is answered and not billed.
func TestClaudeCodeThroughTheGateway(t *testing.T) {
	t.Parallel()
	claude := claudeBinary(t)

	work := t.TempDir()
	const note = "gateway-note-7f3a"
	notePath := filepath.Join(work, "note.txt")
	if err := os.WriteFile(notePath, []byte(note+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mock := newAgentMock(t, "Read", map[string]any{"file_path": notePath})
	block := fmt.Sprintf(`provider openai {
			api_key {env.PROVIDER_KEY}
			base_url %[1]s
		}
		provider anthropic {
			api_key {env.PROVIDER_KEY}
			base_url %[1]s
		}
		price openai:gpt-agent %[2]v %[3]v
		price anthropic:claude-agent %[2]v %[3]v`, mock.BaseURL(), inputPrice, outputPrice)
	g := startGateway(t, gatewayConfig{Block: block, Site: "log"})
	expect(t, g.adminDo("POST", "/v1/users", map[string]any{"user_id": "dev"}), 200)
	var k struct{ ID, Key string }
	expect(t, g.adminDo("POST", "/v1/keys", map[string]any{"user_id": "dev"}), 200).JSON(t, &k)
	ig := &inferenceGateway{gateway: g}

	run := func(t *testing.T, model, prompt string) string {
		t.Helper()
		home := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, claude, "-p", prompt, "--allowedTools", "Read", "--output-format", "text")
		cmd.Dir = work
		cmd.Env = []string{
			"PATH=" + os.Getenv("PATH"),
			"HOME=" + home,
			"TMPDIR=" + t.TempDir(),
			"ANTHROPIC_BASE_URL=" + g.URL,
			"ANTHROPIC_API_KEY=" + k.Key,
			"ANTHROPIC_MODEL=" + model,
			"ANTHROPIC_SMALL_FAST_MODEL=" + model,
			"ANTHROPIC_DEFAULT_HAIKU_MODEL=" + model,
			"ANTHROPIC_DEFAULT_SONNET_MODEL=" + model,
			"ANTHROPIC_DEFAULT_OPUS_MODEL=" + model,
			"DISABLE_TELEMETRY=1",
			"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
			"DISABLE_AUTOUPDATER=1",
			"DISABLE_ERROR_REPORTING=1",
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("claude -p %q: %v\n%s\ngateway:\n%s", prompt, err, out, g.output.String())
		}
		return string(out)
	}

	for _, tt := range []struct {
		model, upstreamPath, endUserField string
		prompt, completion                int64
	}{
		{"openai:gpt-agent", "/v1/chat/completions", "user", mockPromptTokens, mockCompletionTokens},
		{"anthropic:claude-agent", "/v1/messages", "metadata.user_id", mockClaudeInput + mockClaudeCacheRead, mockClaudeOutput},
	} {
		t.Run(tt.model, func(t *testing.T) {
			before := len(mock.Requests())
			if out := run(t, tt.model, "Answer PONG and nothing else."); !strings.Contains(out, "PONG") {
				t.Fatalf("text answer: %s", out)
			}
			if out := run(t, tt.model, "CALL_TOOL: read note.txt and tell me what it says."); !strings.Contains(out, "The tool said:") || !strings.Contains(out, note) {
				t.Fatalf("tool round trip: %s", out)
			}
			if out := run(t, tt.model, "/context"); !strings.Contains(out, "Context Usage") {
				t.Fatalf("/context: %s", out)
			}

			// One record per inference call that reached the provider, with
			// the provider's tokens and Claude Code's id as end_user.
			provider, _, _ := strings.Cut(tt.model, ":")
			var calls []mockRequest
			toolResultSeen := false
			for _, r := range mock.Requests()[before:] {
				if r.Path == tt.upstreamPath {
					if r.Path == "/v1/chat/completions" && (gjson.GetBytes(r.Body, "max_tokens").Exists() || !gjson.GetBytes(r.Body, "max_completion_tokens").Exists()) {
						t.Errorf("OpenAI got no max_completion_tokens (which its reasoning models require): %.300s", r.Body)
					}
					calls = append(calls, r)
					toolResultSeen = toolResultSeen || strings.Contains(string(r.Body), note)
				}
			}
			if len(calls) < 3 || !toolResultSeen {
				t.Fatalf("%d inference calls reached the provider (tool result seen: %v)", len(calls), toolResultSeen)
			}
			var recs []usageRecord
			for _, r := range ig.usage(t, "user_id=dev&limit=1000") {
				if r.Provider == provider {
					recs = append(recs, r)
				}
			}
			if len(recs) != len(calls) {
				t.Fatalf("%d usage records for %d calls", len(recs), len(calls))
			}
			endUsers := map[string]bool{}
			for _, c := range calls {
				endUsers[gjson.GetBytes(c.Body, tt.endUserField).String()] = true
			}
			for _, rec := range recs {
				if rec.Status != "success" || rec.PromptTokens != tt.prompt || rec.CompletionTokens != tt.completion || rec.UsageSource != "provider" ||
					rec.Endpoint != "/v1/messages" || rec.APIKeyID == nil || *rec.APIKeyID != k.ID {
					t.Fatalf("record = %+v", rec)
				}
				if rec.EndUser == nil || !strings.Contains(*rec.EndUser, "session_id") || !endUsers[*rec.EndUser] {
					t.Fatalf("end_user = %s, want Claude Code's metadata.user_id as forwarded (%v)", deref(rec.EndUser), endUsers)
				}
				assertCost(t, rec.Cost, wantCost(tt.prompt, tt.completion))
			}
		})
	}

	// Every request the CLI sent was answered, none with an error, and
	// /context's count_tokens calls among them.
	counted := 0
	sc := bufio.NewScanner(strings.NewReader(g.output.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if gjson.Get(line, "msg").String() != "handled request" {
			continue
		}
		uri, status := gjson.Get(line, "request.uri").String(), gjson.Get(line, "status").Int()
		if strings.HasPrefix(uri, "/v1/messages/count_tokens") {
			counted++
		}
		t.Logf("Claude Code sent %s %s: %d", gjson.Get(line, "request.method"), uri, status)
		if status >= 400 && strings.Contains(gjson.Get(line, "request.headers.User-Agent.0").String(), "claude") {
			t.Errorf("Claude Code's %s %s was answered %d", gjson.Get(line, "request.method"), uri, status)
		}
	}
	if counted == 0 {
		t.Error("/context sent no count_tokens through the gateway")
	}
	// The site logs with a plain `log`: no key in it.
	assertNoSecret(t, "the gateway's output", []byte(g.output.String()), k.Key, masterKey, providerKey)
}
