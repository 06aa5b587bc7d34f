package llmgateway

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

const routeProviders = `
	provider openai
	provider anthropic
	provider azureopenai {
		base_url https://example.openai.azure.com/openai/deployments/gpt-4o
	}
	provider mylocal {
		base_url http://127.0.0.1:9000/v1
	}
`

func TestUnmarshalRoutes(t *testing.T) {
	t.Parallel()
	three := 3
	off := 0
	tests := []struct {
		name    string
		routes  string
		want    map[string]*RouteConfig
		wantErr string // with the line it names
	}{
		{
			name: "the issue's syntax",
			routes: `route smart {
				to openai:gpt-4o-mini weight 3
				to mylocal:llama-3.1-8b weight 1
				fallback anthropic:claude-sonnet-4-5
			}
			route gpt-4o {
				to azureopenai:gpt-4o
			}`,
			want: map[string]*RouteConfig{
				"smart": {
					To:        []RouteTarget{{Model: "openai:gpt-4o-mini", Weight: 3}, {Model: "mylocal:llama-3.1-8b", Weight: 1}},
					Fallbacks: []string{"anthropic:claude-sonnet-4-5"},
				},
				"gpt-4o": {To: []RouteTarget{{Model: "azureopenai:gpt-4o", Weight: 1}}},
			},
		},
		{
			name: "every subdirective",
			routes: `route r {
				to openai:gpt-4o
				fallback anthropic:claude
				fallback mylocal/llama
				failover_on connection timeout 5xx
				attempt_timeout 20s
				retries 2
				retry_backoff 250ms
				max_retry_wait 5s
				unhealthy_after 3
				cool_down 1m
			}
			route quiet {
				to openai:gpt-4o
				unhealthy_after 0
				failover_on none
			}`,
			want: map[string]*RouteConfig{
				"r": {
					To:             []RouteTarget{{Model: "openai:gpt-4o", Weight: 1}},
					Fallbacks:      []string{"anthropic:claude", "mylocal/llama"},
					FailoverOn:     []string{"connection", "timeout", "5xx"},
					AttemptTimeout: caddy.Duration(20 * time.Second),
					Retries:        2,
					RetryBackoff:   caddy.Duration(250 * time.Millisecond),
					MaxRetryWait:   caddy.Duration(5 * time.Second),
					UnhealthyAfter: &three,
					CoolDown:       caddy.Duration(time.Minute),
				},
				"quiet": {To: []RouteTarget{{Model: "openai:gpt-4o", Weight: 1}}, UnhealthyAfter: &off, FailoverOn: []string{"none"}},
			},
		},
		{name: "unknown subdirective", routes: "route r {\n to openai:gpt-4o\n retry 3\n}", wantErr: "unrecognized subdirective 'retry', at Testfile:13"},
		{name: "unknown provider", routes: "route r {\n to openai:gpt-4o\n fallback opnai:gpt-4o\n}", wantErr: "provider \"opnai\" of target opnai:gpt-4o is not configured in this llm_gateway block (add a `provider opnai` block or fix the name), at Testfile:13"},
		{name: "name with a colon", routes: "route a:b {\n to openai:gpt-4o\n}", wantErr: `route "a:b": a route name must not contain ':'`},
		{name: "name with a slash", routes: "route a/b {\n to openai:gpt-4o\n}", wantErr: `route "a/b": a route name must not contain ':', '/'`},
		{name: "duplicate name", routes: "route r {\n to openai:gpt-4o\n}\nroute r {\n to openai:gpt-4o\n}", wantErr: `route "r" defined twice, at Testfile:14`},
		{name: "no to", routes: "route r {\n fallback openai:gpt-4o\n}", wantErr: "needs at least one `to` target"},
		{name: "bad weight", routes: "route r {\n to openai:gpt-4o weight 0\n}", wantErr: "weight of openai:gpt-4o must be a positive integer"},
		{name: "weight without keyword", routes: "route r {\n to openai:gpt-4o 3\n}", wantErr: "expected `to <provider:model> [weight <n>]`"},
		{name: "target twice", routes: "route r {\n to openai:gpt-4o\n fallback openai/gpt-4o\n}", wantErr: "target openai:gpt-4o named twice"},
		{name: "target without model", routes: "route r {\n to openai\n}", wantErr: "must be 'provider:model'"},
		{name: "bad failover outcome", routes: "route r {\n to openai:gpt-4o\n failover_on 4xx\n}", wantErr: `unknown failover outcome "4xx"`},
		{name: "bad duration", routes: "route r {\n to openai:gpt-4o\n cool_down soon\n}", wantErr: `cool_down: invalid duration "soon"`},
		{name: "negative count", routes: "route r {\n to openai:gpt-4o\n retries -1\n}", wantErr: "retries: expected a non-negative integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := new(Gateway)
			err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser("llm_gateway {\n" + routeProviders + tc.routes + "\n}"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g.Routes, tc.want) {
				t.Fatalf("routes = %#v, want %#v", g.Routes, tc.want)
			}
			if err := g.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

// TestValidateRoutes: a JSON config (no Caddyfile parser before it) is
// refused by Validate for the same mistakes.
func TestValidateRoutes(t *testing.T) {
	t.Parallel()
	providers := map[string]*ProviderConfig{"openai": {}}
	for _, tc := range []struct {
		name    string
		routes  map[string]*RouteConfig
		wantErr string
	}{
		{"unknown provider", map[string]*RouteConfig{"r": {To: []RouteTarget{{Model: "nope:m"}}}}, `provider "nope"`},
		{"name with a colon", map[string]*RouteConfig{"a:b": {To: []RouteTarget{{Model: "openai:m"}}}}, "must not contain ':'"},
		{"negative weight", map[string]*RouteConfig{"r": {To: []RouteTarget{{Model: "openai:m", Weight: -1}}}}, "positive integer"},
		{"empty", map[string]*RouteConfig{"r": {}}, "at least one `to`"},
		{"nil", map[string]*RouteConfig{"r": nil}, "at least one `to`"},
	} {
		g := &Gateway{Providers: providers, Routes: tc.routes}
		if err := g.Validate(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Validate = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestRetryAfterDuration(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {" 7 ", 7 * time.Second}, {"0", 0}, {"-5", 0}, {"soon", 0},
		{"999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(timeFormatHTTP), 90 * time.Second},
		{now.Add(-time.Minute).Format(timeFormatHTTP), 0},
	} {
		if got := retryAfterDuration(tc.in, now); got != tc.want {
			t.Errorf("retryAfterDuration(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

const timeFormatHTTP = "Mon, 02 Jan 2006 15:04:05 GMT"
