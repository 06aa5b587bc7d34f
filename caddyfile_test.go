package llmgateway

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		want    *Gateway
		wantErr string
	}{
		{
			name:  "empty block",
			input: `llm_gateway`,
			want:  &Gateway{},
		},
		{
			name: "everything",
			input: `llm_gateway {
				master_key {env.GATEWAY_MASTER_KEY}
				storage_path /var/lib/caddy/llm-gateway
				durability fsync
				provider openai {
					api_key {env.OPENAI_API_KEY}
					base_url https://api.openai.com/v1
				}
				provider mylocal {
					base_url http://127.0.0.1:9000/v1 http://127.0.0.1:9001/v1
					models llama-3.1-8b qwen2.5-7b
					timeout 2m
					dial_timeout 5s
					response_header_timeout 30s
				}
				price openai:gpt-4o-mini 0.15 0.60
				price mylocal/llama-3.1-8b 0 0
				rate_limit_rpm 600
				default_max_tokens 4096
				cors_allow_origins https://app.example.com http://localhost:3000
				max_request_body 10MiB
			}`,
			want: &Gateway{
				MasterKey:   "{env.GATEWAY_MASTER_KEY}",
				StoragePath: "/var/lib/caddy/llm-gateway",
				Durability:  "fsync",
				Providers: map[string]*ProviderConfig{
					"openai": {APIKey: "{env.OPENAI_API_KEY}", BaseURLs: []string{"https://api.openai.com/v1"}},
					"mylocal": {
						BaseURLs:              []string{"http://127.0.0.1:9000/v1", "http://127.0.0.1:9001/v1"},
						Models:                []string{"llama-3.1-8b", "qwen2.5-7b"},
						Timeout:               caddy.Duration(2 * time.Minute),
						DialTimeout:           caddy.Duration(5 * time.Second),
						ResponseHeaderTimeout: caddy.Duration(30 * time.Second),
					},
				},
				Pricing: map[string]PriceConfig{
					"openai:gpt-4o-mini":   {InputPricePerMillion: 0.15, OutputPricePerMillion: 0.60},
					"mylocal:llama-3.1-8b": {},
				},
				RateLimitRPM:     600,
				DefaultMaxTokens: 4096,
				CORSAllowOrigins: []string{"https://app.example.com", "http://localhost:3000"},
				MaxRequestBody:   10 << 20,
			},
		},
		{
			name:  "price before its provider block",
			input: "llm_gateway {\n price mine:m 1 2\n provider mine {\n base_url http://127.0.0.1:1/v1\n }\n}",
			want: &Gateway{
				Providers: map[string]*ProviderConfig{"mine": {BaseURLs: []string{"http://127.0.0.1:1/v1"}}},
				Pricing:   map[string]PriceConfig{"mine:m": {InputPricePerMillion: 1, OutputPricePerMillion: 2}},
			},
		},
		{
			name:  "storage_path from a placeholder",
			input: "llm_gateway {\n storage_path {env.GW_DIR}\n}",
			want:  &Gateway{StoragePath: "{env.GW_DIR}"},
		},
		{
			name:  "database_url from a placeholder, with a pool size",
			input: "llm_gateway {\n database_url {env.GATEWAY_DATABASE_URL}\n database_max_conns 32\n}",
			want:  &Gateway{DatabaseURL: "{env.GATEWAY_DATABASE_URL}", DatabaseMaxConns: 32},
		},
		{
			name:  "auto_migrate off",
			input: "llm_gateway {\n database_url {env.GATEWAY_DATABASE_URL}\n auto_migrate off\n}",
			want:  &Gateway{DatabaseURL: "{env.GATEWAY_DATABASE_URL}", AutoMigrate: new(false)},
		},
		{
			name:  "auto_migrate on",
			input: "llm_gateway {\n database_url {env.GATEWAY_DATABASE_URL}\n auto_migrate on\n}",
			want:  &Gateway{DatabaseURL: "{env.GATEWAY_DATABASE_URL}", AutoMigrate: new(true)},
		},
		{
			name:  "database_url postgresql://",
			input: "llm_gateway {\n database_url postgresql://gw@db.internal/gw?sslmode=require\n}",
			want:  &Gateway{DatabaseURL: "postgresql://gw@db.internal/gw?sslmode=require"},
		},
		{
			name:  "known provider without block",
			input: "llm_gateway {\n provider ollama\n}",
			want:  &Gateway{Providers: map[string]*ProviderConfig{"ollama": {}}},
		},
		{name: "argument on directive", input: `llm_gateway foo`, wantErr: "wrong argument count"},
		{name: "unknown subdirective", input: "llm_gateway {\n\tbogus 1\n}", wantErr: "unrecognized subdirective 'bogus'"},
		{name: "unknown subdirective names the line", input: "llm_gateway {\n\tmaster_key x\n\tbogus 1\n}", wantErr: "Testfile:3"},
		{name: "master_key without value", input: "llm_gateway {\n master_key\n}", wantErr: "wrong argument count"},
		{name: "master_key with two values", input: "llm_gateway {\n master_key a b\n}", wantErr: "wrong argument count"},
		{name: "unknown provider without base_url", input: "llm_gateway {\n provider mine {\n api_key k\n }\n}", wantErr: "base_url is required"},
		{name: "azure without base_url", input: "llm_gateway {\n provider azureopenai {\n api_key k\n }\n}", wantErr: "base_url is required"},
		{name: "bad base_url", input: "llm_gateway {\n provider mine {\n base_url ftp://x\n }\n}", wantErr: "invalid base_url"},
		{name: "bad provider name", input: "llm_gateway {\n provider My:Prov {\n base_url http://x\n }\n}", wantErr: "name must be"},
		{name: "duplicate provider", input: "llm_gateway {\n provider openai\n provider openai\n}", wantErr: "defined twice"},
		{name: "unknown provider subdirective", input: "llm_gateway {\n provider openai {\n apikey k\n }\n}", wantErr: "unrecognized subdirective 'apikey'"},
		{name: "bad timeout", input: "llm_gateway {\n provider openai {\n timeout soon\n }\n}", wantErr: "invalid duration"},
		{name: "negative price", input: "llm_gateway {\n price openai:gpt-4o -1 2\n}", wantErr: "non-negative"},
		{name: "price not a number", input: "llm_gateway {\n price openai:gpt-4o cheap 2\n}", wantErr: "non-negative"},
		{name: "price infinite", input: "llm_gateway {\n price openai:gpt-4o Inf 2\n}", wantErr: "non-negative"},
		{name: "price missing output", input: "llm_gateway {\n price openai:gpt-4o 1\n}", wantErr: "wrong argument count"},
		{name: "price bad model key", input: "llm_gateway {\n price gpt-4o 1 2\n}", wantErr: "provider:model"},
		{name: "duplicate price", input: "llm_gateway {\n price openai:gpt-4o 1 2\n price openai/gpt-4o 1 2\n}", wantErr: "defined twice"},
		{name: "negative rpm", input: "llm_gateway {\n rate_limit_rpm -5\n}", wantErr: "non-negative integer"},
		{name: "rpm not a number", input: "llm_gateway {\n rate_limit_rpm many\n}", wantErr: "non-negative integer"},
		{name: "bad max_request_body", input: "llm_gateway {\n max_request_body huge\n}", wantErr: "invalid size"},
		{name: "bad origin", input: "llm_gateway {\n cors_allow_origins app.example.com\n}", wantErr: "invalid origin"},
		{name: "price for a provider not configured names the line", input: "llm_gateway {\n provider openai\n price opnai:gpt-4o 1 2\n}", wantErr: `provider "opnai" is not configured in this llm_gateway block (add a ` + "`provider opnai`" + ` block or fix the name), at Testfile:3`},
		{name: "price for a known provider without a provider line", input: "llm_gateway {\n price openai:gpt-4o 1 2\n}", wantErr: `price openai:gpt-4o: provider "openai" is not configured`},
		{name: "relative storage_path", input: "llm_gateway {\n storage_path ./llm_gateway_data\n}", wantErr: `storage_path "./llm_gateway_data" is relative`},
		{name: "database_url of another scheme names the line", input: "llm_gateway {\n master_key x\n database_url mysql://gw:pw@db/gw\n}",
			wantErr: `database_url has scheme "mysql": it must be a postgres:// or postgresql:// URL, at Testfile:3`},
		{name: "database_url not a URL", input: "llm_gateway {\n database_url host=db user=gw\n}", wantErr: "wrong argument count"},
		{name: "database_url without scheme", input: "llm_gateway {\n database_url gw:pw@db/gw\n}", wantErr: "database_url must be a postgres:// or postgresql:// URL"},
		{name: "usage_retention", input: "llm_gateway {\n usage_retention 90d\n}", want: &Gateway{UsageRetention: caddy.Duration(90 * 24 * time.Hour)}},
		{name: "usage_retention zero", input: "llm_gateway {\n master_key x\n usage_retention 0s\n}", wantErr: `usage_retention "0s": want a positive duration such as 2160h (90 days), at Testfile:3`},
		{name: "usage_retention not a duration", input: "llm_gateway {\n usage_retention forever\n}", wantErr: "want a positive duration"},
		{name: "durability os", input: "llm_gateway {\n durability os\n}", want: &Gateway{Durability: "os"}},
		{name: "unknown durability names the line", input: "llm_gateway {\n master_key x\n durability always\n}", wantErr: `durability "always": want os`},
		{name: "durability line of its own", input: "llm_gateway {\n master_key x\n durability fsync\n durability always\n}", wantErr: "Testfile:4"},
		{name: "durability without value", input: "llm_gateway {\n durability\n}", wantErr: "wrong argument count"},
		{name: "database_max_conns not a number", input: "llm_gateway {\n database_max_conns many\n}", wantErr: "non-negative integer"},
		{name: "auto_migrate neither on nor off names the line", input: "llm_gateway {\n database_url postgres://db/gw\n auto_migrate no\n}", wantErr: `Testfile:3`},
		{name: "auto_migrate without value", input: "llm_gateway {\n auto_migrate\n}", wantErr: "wrong argument count"},
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
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(g, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", g, tt.want)
			}
		})
	}
}

func TestValidateRejectsBadJSONConfig(t *testing.T) {
	t.Parallel()
	tests := map[string]*Gateway{
		"negative body limit": {MaxRequestBody: -1},
		"negative price": {
			Providers: map[string]*ProviderConfig{"openai": {}},
			Pricing:   map[string]PriceConfig{"openai:x": {InputPricePerMillion: -1}},
		},
		"price of a provider not configured": {
			Providers: map[string]*ProviderConfig{"openai": {}},
			Pricing:   map[string]PriceConfig{"opnai:x": {InputPricePerMillion: 1}},
		},
		"bad model key":      {Pricing: map[string]PriceConfig{"nomodel": {}}},
		"provider no url":    {Providers: map[string]*ProviderConfig{"custom": {}}},
		"bad origin":         {CORSAllowOrigins: []string{"not a url"}},
		"bad durability":     {Durability: "sometimes"},
		"negative retention": {UsageRetention: -1},
	}
	for name, g := range tests {
		if err := g.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil, want an error", name)
		}
	}
}

// TestProvisionHasNoSideEffects provisions and validates configs as
// `caddy validate` does, without starting them: nothing is created on disk,
// whether the config is valid or not; a relative storage_path is refused.
func TestProvisionHasNoSideEffects(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	tests := []struct {
		name    string
		g       *Gateway
		wantErr string
	}{
		{name: "valid", g: &Gateway{
			StoragePath: dir,
			Providers:   map[string]*ProviderConfig{"openai": {APIKey: "sk-x"}},
			Pricing:     map[string]PriceConfig{"openai:gpt-4o": {InputPricePerMillion: 1, OutputPricePerMillion: 2}},
		}},
		{name: "negative price", wantErr: "must not be negative", g: &Gateway{
			StoragePath: dir,
			Providers:   map[string]*ProviderConfig{"openai": {APIKey: "sk-x"}},
			Pricing:     map[string]PriceConfig{"openai:gpt-4o": {InputPricePerMillion: -1}},
		}},
		{name: "unconfigured provider", wantErr: `provider "opnai" is not configured`, g: &Gateway{
			StoragePath: dir,
			Providers:   map[string]*ProviderConfig{"openai": {APIKey: "sk-x"}},
			Pricing:     map[string]PriceConfig{"opnai:gpt-4o": {InputPricePerMillion: 1}},
		}},
		{name: "relative storage_path", wantErr: `storage_path "rel/store" is relative`, g: &Gateway{StoragePath: "rel/store"}},
		// With a database, storage_path is unused: nothing is created there
		// either, and provisioning does not connect.
		{name: "database", g: &Gateway{StoragePath: dir, DatabaseURL: "postgres://gw:pw@127.0.0.1:1/gw"}},
		{name: "database_url of another scheme", wantErr: `database_url has scheme "mysql"`, g: &Gateway{DatabaseURL: "mysql://gw:pw@db/gw"}},
		{name: "database_url resolving to nothing", wantErr: "database_url resolves to an empty value", g: &Gateway{DatabaseURL: "{env.GATEWAY_TEST_UNSET_VARIABLE}"}},
		{name: "negative database_max_conns", wantErr: "database_max_conns must not be negative", g: &Gateway{DatabaseURL: "postgres://db/gw", DatabaseMaxConns: -1}},
		{name: "auto_migrate without a database", wantErr: "auto_migrate applies only with database_url", g: &Gateway{StoragePath: dir, AutoMigrate: new(false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, err := caddy.ProvisionContext(&caddy.Config{})
			if err != nil {
				t.Fatal(err)
			}
			err = tt.g.Provision(ctx)
			if err == nil {
				err = tt.g.Validate()
			}
			if cerr := tt.g.Cleanup(); cerr != nil {
				t.Errorf("Cleanup: %v", cerr)
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			entries, err := os.ReadDir(root)
			if err != nil || len(entries) != 0 {
				t.Fatalf("provisioning and validating wrote %v (%v)", entries, err)
			}
		})
	}
}
