// Package llmgateway is a Caddy HTTP handler that turns Caddy into an
// OpenAI-compatible LLM gateway: it hands out virtual keys, keeps users,
// budgets, prices and usage in an embedded Badger store, and forwards
// inference requests to providers while it meters what they cost.
package llmgateway

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

func init() {
	caddy.RegisterModule(Gateway{})
}

// Version is reported by /health/readiness.
const Version = "0.1.0"

// defaultMaxRequestBody caps inference request bodies unless configured.
const defaultMaxRequestBody = 10 << 20

// Gateway is an OpenAI-compatible LLM gateway. It owns the paths `/v1/*`
// and `/health*`; every other request goes to the next handler.
//
// Admin routes (`/v1/users`, `/v1/keys`, `/v1/budgets`, `/v1/pricing`,
// `/v1/usage`) need the master key; inference routes accept the master key
// (naming the user in the body) or a virtual key.
type Gateway struct {
	// The master key: full access to every route. Use a placeholder such as
	// `{env.GATEWAY_MASTER_KEY}`, which is resolved when the config is
	// loaded, so the secret never appears in Caddy's JSON config. Without a
	// master key the admin routes answer 503.
	MasterKey string `json:"master_key,omitempty"`

	// Directory of the Badger database. Default: Caddy's data directory +
	// `/llm_gateway`. Every handler naming the same directory shares one
	// open database, across config reloads too.
	StoragePath string `json:"storage_path,omitempty"`

	// Upstream LLM providers by name. The name is the prefix clients use in
	// `provider:model`. Known providers (openai, mistral, groq, …) need only
	// an API key; any other name needs a base URL.
	Providers map[string]*ProviderConfig `json:"providers,omitempty"`

	// Model prices in USD per million tokens, by `provider:model`. They seed
	// the price table at start; prices already stored (set through
	// `/v1/pricing`) win.
	Pricing map[string]PriceConfig `json:"pricing,omitempty"`

	// Requests per minute allowed per user across all their keys. 0: no limit.
	RateLimitRPM int `json:"rate_limit_rpm,omitempty"`

	// Completion tokens assumed for a request that sets no `max_tokens`,
	// when reserving budget before forwarding it. Default: 4096.
	DefaultMaxTokens int `json:"default_max_tokens,omitempty"`

	// Origins allowed to call the gateway from a browser. Empty (the
	// default): CORS is off. With `*`, credentials are not allowed.
	CORSAllowOrigins []string `json:"cors_allow_origins,omitempty"`

	// Largest inference request body in bytes; larger ones get 413.
	// Default: 10 MiB. Admin routes are always capped at 1 MiB.
	MaxRequestBody int64 `json:"max_request_body,omitempty"`

	hasMaster   bool
	masterHash  [sha256.Size]byte
	upstreams   map[string]*upstream
	collections map[string]collection
	started     time.Time
	storagePath string
	state       *gatewayState
	logger      *zap.Logger
	accessLog   *zap.Logger // Caddy's access logger, for entries without keys
	clock       func() time.Time
}

// PriceConfig is a model's price in USD per million tokens.
type PriceConfig struct {
	// USD per million prompt tokens.
	InputPricePerMillion float64 `json:"input_price_per_million"`
	// USD per million completion tokens.
	OutputPricePerMillion float64 `json:"output_price_per_million"`
}

// CaddyModule returns the Caddy module information.
func (Gateway) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.llm_gateway",
		New: func() caddy.Module { return new(Gateway) },
	}
}

// Provision resolves placeholders, opens (or shares) the store and seeds
// the configured prices.
func (g *Gateway) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	g.accessLog = newAccessLogger(ctx)
	repl := caddy.NewReplacer()
	if err := initMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}

	if master := repl.ReplaceKnown(g.MasterKey, ""); master != "" {
		g.hasMaster = true
		g.masterHash = sha256Sum(master)
	} else {
		g.logger.Warn("no master key configured: admin routes will answer 503")
	}
	if g.MaxRequestBody == 0 {
		g.MaxRequestBody = defaultMaxRequestBody
	}
	if g.DefaultMaxTokens == 0 {
		g.DefaultMaxTokens = 4096
	}

	dir := repl.ReplaceKnown(g.StoragePath, "")
	if dir == "" {
		dir = filepath.Join(caddy.AppDataDir(), "llm_gateway")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolving storage_path: %w", err)
	}
	val, loaded, err := states.LoadOrNew(dir, func() (caddy.Destructor, error) {
		return newGatewayState(storage.Options{
			Dir:    dir,
			Logger: caddy.Log().Named("llm_gateway.badger"),
		})
	})
	if err != nil {
		return fmt.Errorf("opening store at %s: %w", dir, err)
	}
	g.state, g.storagePath = val.(*gatewayState), dir
	g.logger.Debug("store ready", zap.String("storage_path", dir), zap.Bool("shared", loaded))

	if err := g.seedPrices(); err != nil {
		return err
	}
	g.state.cache.invalidate() // a reload may have seeded prices

	g.started = time.Now()
	g.collections = g.adminCollections()
	g.upstreams = make(map[string]*upstream, len(g.Providers))
	for name, cfg := range g.Providers {
		if err := cfg.validate(name); err != nil {
			return err
		}
		up, err := newUpstream(name, cfg, repl)
		if err != nil {
			return err
		}
		g.upstreams[name] = up
	}
	return nil
}

// seedPrices stores configured prices that the store does not have yet.
func (g *Gateway) seedPrices() error {
	now := g.now()
	for key, p := range g.Pricing {
		modelKey, err := normalizeModelKey(key)
		if err != nil {
			return fmt.Errorf("price %q: %w", key, err)
		}
		_, err = g.state.store.SeedPrice(&storage.Price{
			ModelKey:              modelKey,
			InputPricePerMillion:  p.InputPricePerMillion,
			OutputPricePerMillion: p.OutputPricePerMillion,
			CreatedAt:             now,
			UpdatedAt:             now,
		})
		if err != nil {
			return fmt.Errorf("seeding price %s: %w", modelKey, err)
		}
	}
	return nil
}

// Validate rejects configurations that cannot work.
func (g *Gateway) Validate() error {
	if g.MaxRequestBody < 0 {
		return fmt.Errorf("max_request_body must not be negative")
	}
	if g.RateLimitRPM < 0 {
		return fmt.Errorf("rate_limit_rpm must not be negative")
	}
	if g.DefaultMaxTokens < 0 {
		return fmt.Errorf("default_max_tokens must not be negative")
	}
	for key, p := range g.Pricing {
		if _, err := normalizeModelKey(key); err != nil {
			return fmt.Errorf("pricing %q: %w", key, err)
		}
		if !validPrice(p.InputPricePerMillion) || !validPrice(p.OutputPricePerMillion) {
			return fmt.Errorf("pricing %q: prices must not be negative", key)
		}
	}
	for _, origin := range g.CORSAllowOrigins {
		if err := validateOrigin(origin); err != nil {
			return fmt.Errorf("cors_allow_origins: %w", err)
		}
	}
	for name, p := range g.Providers {
		if err := p.validate(name); err != nil {
			return err
		}
	}
	return nil
}

// Cleanup releases the shared state acquired by Provision.
func (g *Gateway) Cleanup() error {
	for _, up := range g.upstreams {
		up.close()
	}
	if g.state == nil {
		return nil
	}
	// g.state stays set: a reload does not wait for this config's requests
	// in flight, and the pool keeps the state open while they finish.
	_, err := states.Delete(g.storagePath)
	return err
}

// ServeHTTP answers `/v1/*` and `/health*` and passes anything else on.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	path := r.URL.Path
	isV1 := path == "/v1" || strings.HasPrefix(path, "/v1/")
	isHealth := path == "/health" || strings.HasPrefix(path, "/health/")
	setSecurityHeaders(w.Header(), isV1)
	if !isV1 && !isHealth {
		return next.ServeHTTP(w, r)
	}
	if lw, entry := g.takeOverAccessLog(w, r); entry != nil {
		w = lw
		defer entry.write() // last, once the answer is complete
	}
	if isV1 {
		w.Header().Set("X-Request-Id", newRequestID())
	}
	if g.handleCORS(w, r) {
		return nil
	}

	start := time.Now()
	rec := caddyhttp.NewResponseRecorder(w, nil, nil)
	w = rec
	gatewayMetrics.active.Inc()
	defer func() {
		gatewayMetrics.active.Dec()
		observeRequest(endpointLabel(path), rec.Status(), time.Since(start))
	}()

	if !g.state.work.acquire() {
		g.writeError(w, r, errStoreUnavailable)
		return nil
	}
	defer g.state.work.release()

	if isHealth {
		g.serveHealth(w, r)
		return nil
	}
	if err := g.serveV1(w, r); err != nil {
		g.writeError(w, r, err)
	}
	return nil
}

// setSecurityHeaders adds the headers every gateway response carries.
func setSecurityHeaders(h http.Header, cacheControl bool) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	if cacheControl {
		h.Set("Cache-Control", "private, no-store, no-cache")
		h.Add("Vary", "Authorization")
	}
}

// newRequestID returns a random UUID (v4) for X-Request-Id.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

func validateOrigin(origin string) error {
	if origin == "*" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("invalid origin %q: expected scheme://host[:port] or *", origin)
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Gateway)(nil)
	_ caddy.Validator             = (*Gateway)(nil)
	_ caddy.CleanerUpper          = (*Gateway)(nil)
	_ caddyhttp.MiddlewareHandler = (*Gateway)(nil)
	_ caddyfile.Unmarshaler       = (*Gateway)(nil)
)
