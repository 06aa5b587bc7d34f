package llmgateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

func TestUnmarshalDashboard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		want    *DashboardConfig
		wantErr string
	}{
		{name: "off by default", input: "llm_gateway {\n master_key x\n}"},
		{name: "bare", input: "llm_gateway {\n dashboard\n}", want: &DashboardConfig{}},
		{name: "with sessions", input: "llm_gateway {\n dashboard {\n session_lifetime 8h\n session_idle 20m\n }\n}",
			want: &DashboardConfig{SessionLifetime: caddy.Duration(8 * time.Hour), SessionIdle: caddy.Duration(20 * time.Minute)}},
		{name: "typo names the line", input: "llm_gateway {\n master_key x\n dashboard {\n session_lifetme 8h\n }\n}",
			wantErr: "dashboard: unrecognized subdirective 'session_lifetme', at Testfile:4"},
		{name: "argument", input: "llm_gateway {\n dashboard on\n}", wantErr: "wrong argument count"},
		{name: "twice", input: "llm_gateway {\n dashboard\n dashboard\n}", wantErr: "dashboard defined twice"},
		{name: "bad duration", input: "llm_gateway {\n dashboard {\n session_idle soon\n }\n}", wantErr: `session_idle: invalid duration "soon"`},
		{name: "too short", input: "llm_gateway {\n dashboard {\n session_idle 5s\n }\n}", wantErr: "at least 1m"},
		{name: "duration without value", input: "llm_gateway {\n dashboard {\n session_idle\n }\n}", wantErr: "wrong argument count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := new(Gateway)
			err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g.Dashboard, tt.want) {
				t.Fatalf("Dashboard = %+v, want %+v", g.Dashboard, tt.want)
			}
		})
	}
}

func TestDashboardTemplatesParse(t *testing.T) {
	t.Parallel()
	pages, err := dashboardTemplates()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"login", "message", "confirm", "overview", "keys", "key", "users", "user", "budgets", "budget", "pricing", "usage", "providers"} {
		if pages[name] == nil {
			t.Errorf("no template %q", name)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers map[string]string
		ok      bool
	}{
		{"no browser headers (a script: the CSRF token decides)", nil, true},
		{"same-origin fetch", map[string]string{"Sec-Fetch-Site": "same-origin"}, true},
		{"typed by the user", map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"another site", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"a sibling subdomain", map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"own origin", map[string]string{"Origin": "http://gw.example"}, true},
		{"other origin", map[string]string{"Origin": "http://evil.example"}, false},
		{"null origin", map[string]string{"Origin": "null"}, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "http://gw.example/ui/keys", nil)
		for k, v := range tt.headers {
			r.Header.Set(k, v)
		}
		if got := sameOrigin(r); got != tt.ok {
			t.Errorf("%s: sameOrigin = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

func TestFormFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		form    url.Values
		read    func(*formFields)
		want    map[string]any
		wantErr string
	}{
		{"empty fields are left out", url.Values{"key_name": {" "}, "max_budget": {""}}, func(f *formFields) {
			f.text("key_name", "key_name")
			f.money("max_budget", "max_budget", "Budget")
		}, map[string]any{}, ""},
		{"money", url.Values{"b": {"$2.50"}}, func(f *formFields) { f.money("b", "max_budget", "Budget") },
			map[string]any{"max_budget": storage.Dollars(2.5)}, ""},
		{"negative money", url.Values{"b": {"-1"}}, func(f *formFields) { f.money("b", "max_budget", "Budget") },
			nil, "Budget must be an amount of US dollars"},
		{"durations", url.Values{"a": {"30d"}, "b": {"90"}, "c": {"1h30m"}}, func(f *formFields) {
			f.durationSec("a", "a", "A")
			f.durationSec("b", "b", "B")
			f.durationSec("c", "c", "C")
		}, map[string]any{"a": int64(30 * 86400), "b": int64(90), "c": int64(5400)}, ""},
		{"bad duration", url.Values{"a": {"monthly"}}, func(f *formFields) { f.durationSec("a", "a", "Period") }, nil, "Period must be a duration"},
		{"counts", url.Values{"n": {"0"}}, func(f *formFields) { f.count("n", "rpm_limit", "Requests / minute") }, nil, "Requests / minute must be a whole number above 0"},
		{"datetime-local is UTC", url.Values{"e": {"2026-12-31T23:59"}}, func(f *formFields) { f.datetime("e", "expires_at", "Expires") },
			map[string]any{"expires_at": "2026-12-31T23:59:00Z"}, ""},
		{"models split on spaces and commas", url.Values{"m": {"openai:gpt-4o, anthropic:*  mock:ok"}}, func(f *formFields) { f.models("m", "allowed_models") },
			map[string]any{"allowed_models": []string{"openai:gpt-4o", "anthropic:*", "mock:ok"}}, ""},
	}
	for _, tt := range tests {
		f := newFormFields(tt.form)
		tt.read(f)
		if tt.wantErr != "" {
			if f.err == nil || !strings.Contains(f.err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.name, f.err, tt.wantErr)
			}
			continue
		}
		if f.err != nil || !reflect.DeepEqual(f.body, tt.want) {
			t.Errorf("%s: body = %#v, err = %v; want %#v", tt.name, f.body, f.err, tt.want)
		}
	}
}

func TestPageOf(t *testing.T) {
	t.Parallel()
	rows := make([]int, pageSize+1)
	got, p := pageOf(rows, 100, "/ui/usage", url.Values{"status": {"error"}})
	if len(got) != pageSize || p.Next != "/ui/usage?skip=150&status=error" || p.Prev != "/ui/usage?skip=50&status=error" || p.From != 101 || p.To != 150 {
		t.Fatalf("page = %d rows, %+v", len(got), p)
	}
	got, p = pageOf(rows[:3], 0, "/ui/keys", nil)
	if len(got) != 3 || p.Next != "" || p.Prev != "" || p.From != 1 || p.To != 3 {
		t.Fatalf("last page = %d rows, %+v", len(got), p)
	}
	_, p = pageOf(rows[:0], 20, "/ui/keys", nil)
	if p.Prev != "/ui/keys" || p.From != 0 {
		t.Fatalf("past the end: %+v", p)
	}
}

func TestProviderHealth(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		requests, errors int64
		want             string
	}{{0, 0, ""}, {10, 0, "healthy"}, {10, 1, "degraded"}, {10, 5, "degraded"}, {10, 6, "failing"}} {
		if got := providerHealth(summaryRow{Requests: tt.requests, Errors: tt.errors}); got != tt.want {
			t.Errorf("%d of %d failed: %q, want %q", tt.errors, tt.requests, got, tt.want)
		}
	}
}
