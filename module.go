// Package llmgateway is a Caddy HTTP handler that turns Caddy into an
// OpenAI-compatible LLM gateway: it hands out virtual keys, keeps users,
// budgets, prices and usage in an embedded Badger store (or, for several
// instances, in PostgreSQL), and forwards inference requests to providers
// while it meters what they cost.
package llmgateway

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
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
// `/v1/usage`) need the master key, except reading prices, which any valid
// key may; inference routes accept the master key (naming the user in the
// body) or a virtual key. The route table is in router.go.
type Gateway struct {
	// The master key: full access to every route. Use a placeholder such as
	// `{env.GATEWAY_MASTER_KEY}`, which is resolved when the config is
	// loaded, so the secret never appears in Caddy's JSON config. Without a
	// master key the admin routes answer 503.
	MasterKey string `json:"master_key,omitempty"`

	// Directory of the Badger database, an absolute path. Default: Caddy's
	// data directory + `/llm_gateway`. A relative path is refused: it would
	// depend on the directory Caddy is started from (under systemd, `/`).
	// Every handler naming the same directory shares one open database,
	// across config reloads too.
	StoragePath string `json:"storage_path,omitempty"`

	// PostgreSQL connection URL (`postgres://` or `postgresql://`): with
	// it, the database holds all state (storage_path only the spool of usage
	// records written while the database is unreachable), so several
	// Caddy instances on one database act as one gateway. Use a placeholder
	// such as `{env.GATEWAY_DATABASE_URL}`, resolved when the config is
	// loaded, so the password never appears in Caddy's JSON config. Every
	// handler naming the same URL shares one connection pool, across
	// config reloads too.
	DatabaseURL string `json:"database_url,omitempty"`

	// Most connections the database pool opens. Default: 16.
	DatabaseMaxConns int `json:"database_max_conns,omitempty"`

	// Whether the instance brings the database's schema up to date when it
	// starts (default true): it applies the migrations the schema lacks,
	// under a lock, so that several instances starting at once take turns.
	// False leaves them to an operator, who runs `caddy llm-gateway migrate
	// --schema-only` as the schema's owner: the instance then only checks
	// that the schema has every migration it needs and refuses to start
	// otherwise. Only with database_url; handlers sharing one database_url
	// share one connection pool, opened with the setting of the first.
	AutoMigrate *bool `json:"auto_migrate,omitempty"`

	// When a usage record counts as stored, which is before the client has
	// the whole response (a non-stream body, a stream's final event).
	//
	// With the embedded store (storage_path):
	//
	//   - `os` (the default): written to the operating system. It survives
	//     a crash or `kill -9` of Caddy; a background fsync puts it on disk
	//     within 100 ms, so a power loss or kernel crash may lose the
	//     records of the last 100 ms.
	//   - `fsync`: on disk (fsync) first, so it survives a power loss too.
	//     The records of concurrent requests share one fsync; a request
	//     alone waits for one (a fraction of a millisecond on a local SSD,
	//     several on network storage).
	//
	// With database_url, a record is committed in PostgreSQL before the
	// response either way, so a crash of Caddy loses nothing in both modes:
	//
	//   - `os` (the default): the settlement's transaction (records, their
	//     charges, the hold's release) commits with synchronous_commit off
	//     for itself only, without waiting for PostgreSQL's WAL flush. A
	//     crash of PostgreSQL or a power loss of its machine may lose the
	//     records (and their charges) of the last 3 × wal_writer_delay, 600
	//     ms by default; a committed record is never half lost.
	//   - `fsync`: the database's own synchronous_commit (on by default):
	//     the record is on PostgreSQL's disk before the response. The
	//     records of concurrent requests share one commit.
	//
	// Admin writes (users, keys, budgets, prices) are on disk before they
	// are answered in both modes and both stores, and so are usage records
	// delivered from the outage spool. Sites sharing a store share one
	// setting: a reload applies the new config's.
	Durability string `json:"durability,omitempty"`

	// Age from which usage records are deleted, in the background, in
	// small batches that never hold the request path for long (for
	// example `2160h`, 90 days). Unset (the default): records are kept
	// forever. Spend, budgets and their history are kept: what a deleted
	// record charged stays charged, and totals kept beside the records
	// stay; only the records themselves leave `/v1/usage`. With
	// database_url every instance deletes with its own setting, each batch
	// skipping the rows another instance is deleting. Sites sharing a
	// store share one setting: a reload applies the new config's.
	UsageRetention caddy.Duration `json:"usage_retention,omitempty"`

	// Upstream LLM providers by name. The name is the prefix clients use in
	// `provider:model`. Known providers (openai, mistral, groq, …) need only
	// an API key; any other name needs a base URL.
	Providers map[string]*ProviderConfig `json:"providers,omitempty"`

	// Model prices in USD per million tokens, by `provider:model`; the
	// provider must be one of Providers. A config price is the truth for
	// its model: it is written to the store at every start and reload
	// (replacing a price set through `/v1/pricing`), `/v1/pricing` shows it
	// with `source: "config"`, and the API refuses to change or delete it.
	Pricing map[string]PriceConfig `json:"pricing,omitempty"`

	// Routes by name: model names clients may use instead of
	// `provider:model` (aliases, weighted load balancing, fallbacks across
	// providers). A name has no `:` or `/`, so it never reads as a
	// provider:model. See RouteConfig.
	Routes map[string]*RouteConfig `json:"routes,omitempty"`

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

	// The web dashboard at `/ui/` (sign-in with the master key). Absent
	// (the default): off, and `/ui/` goes to the next handler.
	Dashboard *DashboardConfig `json:"dashboard,omitempty"`

	hasMaster    bool
	masterHash   [sha256.Size]byte
	upstreams    map[string]*upstream
	routes       map[string]*gatewayRoute
	configPrices map[string]PriceConfig // Pricing by normalised model key
	started      time.Time
	storagePath  string
	durability   storage.Durability
	database     *postgresConfig // nil: the Badger store at storagePath
	held         *gatewayState   // acquired from states by start; released by Cleanup
	state        *gatewayState   // held, once start has succeeded; read after ready
	ready        *readyGate      // opened when start has ended (or will never run)
	logger       *zap.Logger
	accessLog    *zap.Logger // Caddy's access logger, for entries without keys
	clock        func() time.Time
	ui           *dashboard // nil unless Dashboard is set
}

// PriceConfig is a model's price in USD per million tokens.
type PriceConfig struct {
	// USD per million prompt tokens.
	InputPricePerMillion float64 `json:"input_price_per_million"`
	// USD per million completion tokens.
	OutputPricePerMillion float64 `json:"output_price_per_million"`
}

// validPrice reports whether f is a usable price: finite and not negative.
func validPrice(f float64) bool {
	return f >= 0 && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// now is the gateway's clock, in UTC at microsecond precision: the times
// it stamps are shown as RFC 3339 with at most six fractional digits, which
// every client's date parser takes (Python's among them). Tests replace
// Gateway.clock.
func (g *Gateway) now() time.Time {
	if g.clock != nil {
		return g.clock().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// CaddyModule returns the Caddy module information.
func (Gateway) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.llm_gateway",
		New: func() caddy.Module { return new(Gateway) },
	}
}

// minMasterKeyLength is the length under which a master key is warned about.
const minMasterKeyLength = 32

// Provision resolves placeholders and prepares the handler. It has no side
// effect outside memory: the store is opened, and the config's prices are
// written, by start, when Caddy starts the config (see startupApp), so that
// `caddy validate` and a config that fails validation write nothing.
func (g *Gateway) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	g.accessLog = newAccessLogger(ctx)
	g.ready = newReadyGate()
	repl := caddy.NewReplacer()
	if err := initMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}

	if master := repl.ReplaceKnown(g.MasterKey, ""); master != "" {
		g.hasMaster = true
		g.masterHash = sha256Sum(master)
		if len(master) < minMasterKeyLength {
			g.logger.Warn("the master key is short: use at least 32 random characters, e.g. `openssl rand -base64 32`",
				zap.Int("length", len(master)))
		}
	} else {
		g.logger.Warn("no master key configured: admin routes will answer 503")
	}
	if g.MaxRequestBody == 0 {
		g.MaxRequestBody = defaultMaxRequestBody
	}
	if g.DefaultMaxTokens == 0 {
		g.DefaultMaxTokens = 4096
	}

	if g.DatabaseURL != "" {
		db, err := resolveDatabaseURL(repl.ReplaceKnown(g.DatabaseURL, ""))
		if err != nil {
			return err
		}
		g.database = &postgresConfig{url: db, maxConns: int32(min(g.DatabaseMaxConns, math.MaxInt32)),
			skipMigrations: g.AutoMigrate != nil && !*g.AutoMigrate}
	}
	// With a database, storage_path holds only the spool of usage records
	// written during an outage.
	dir, err := resolveStoragePath(repl.ReplaceKnown(g.StoragePath, ""))
	if err != nil {
		return err
	}
	g.storagePath = dir
	if g.durability, err = storage.ParseDurability(g.Durability); err != nil {
		return err
	}
	if g.database != nil {
		g.database.spoolDir = filepath.Join(dir, "spool")
		g.database.durability = g.durability
	}

	g.configPrices = make(map[string]PriceConfig, len(g.Pricing))
	for key, p := range g.Pricing {
		modelKey, err := normalizeModelKey(key)
		if err != nil {
			return fmt.Errorf("pricing %q: %w", key, err)
		}
		g.configPrices[modelKey] = p
	}

	g.started = time.Now()
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
		if up.apiKey == "" {
			warnMissingAPIKey(g.logger, name, cfg)
		}
	}

	g.routes = make(map[string]*gatewayRoute, len(g.Routes))
	for name, rc := range g.Routes {
		rt, err := newGatewayRoute(name, rc, g.upstreams)
		if err != nil {
			return err
		}
		g.routes[name] = rt
		for i := range rt.targets {
			g.setTargetHealthGauge(rt, i)
		}
	}

	if err := g.provisionDashboard(); err != nil {
		return err
	}

	app, err := ctx.App("llm_gateway")
	if err != nil {
		return fmt.Errorf("loading the llm_gateway app: %w", err)
	}
	app.(*startupApp).register(g)
	return nil
}

// resolveStoragePath returns the absolute store directory for the
// configured storage_path (placeholders resolved).
func resolveStoragePath(dir string) (string, error) {
	if dir == "" {
		return filepath.Join(caddy.AppDataDir(), "llm_gateway"), nil
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("storage_path %q is relative: give an absolute path, or leave storage_path out to use Caddy's data directory (%s)",
			dir, filepath.Join(caddy.AppDataDir(), "llm_gateway"))
	}
	return filepath.Clean(dir), nil
}

// resolveDatabaseURL checks the configured database_url (placeholders
// resolved): a PostgreSQL URL. Its errors never hold the URL, which may
// hold a password.
func resolveDatabaseURL(raw string) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("database_url resolves to an empty value: set its environment variable, or leave database_url out to use storage_path")
	}
	if err := checkDatabaseScheme(raw); err != nil {
		return "", err
	}
	return raw, nil
}

// checkDatabaseScheme refuses a database_url that is not postgres:// or
// postgresql://, naming only its scheme.
func checkDatabaseScheme(raw string) error {
	scheme, _, ok := strings.Cut(raw, "://")
	if ok && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql")) {
		return nil
	}
	if !ok || strings.ContainsAny(scheme, "@/:") {
		return fmt.Errorf("database_url must be a postgres:// or postgresql:// URL")
	}
	return fmt.Errorf("database_url has scheme %q: it must be a postgres:// or postgresql:// URL", scheme)
}

// warnMissingAPIKey warns about a provider that will be called without an
// API key, unless it is one that needs none (a local server, or a provider
// of the operator's own without an api_key line).
func warnMissingAPIKey(logger *zap.Logger, name string, cfg *ProviderConfig) {
	if cfg.APIKey != "" {
		// Only placeholders can resolve to nothing, so the configured
		// value is a placeholder's name, not a secret.
		logger.Warn("provider api_key resolves to an empty value: the provider will likely refuse every request",
			zap.String("provider", name), zap.String("api_key", cfg.APIKey))
		return
	}
	known, ok := knownProviders[name]
	if !ok || len(cfg.BaseURLs) > 0 || known.baseURL == "" || strings.HasPrefix(known.baseURL, "http://localhost") {
		return
	}
	logger.Warn("provider has no api_key: the provider will likely refuse every request",
		zap.String("provider", name))
}

// stateKey names the state g uses in states: its database URL or its
// storage directory (which is absolute, so never a URL).
func (g *Gateway) stateKey() string {
	if g.database != nil {
		return g.database.url
	}
	return g.storagePath
}

// storeName names g's store in logs and errors, without a password.
func (g *Gateway) storeName() zap.Field {
	if g.database != nil {
		return zap.String("database", postgres.RedactURL(g.database.url))
	}
	return zap.String("storage_path", g.storagePath)
}

// openState opens the store that g's config names.
func (g *Gateway) openState() (caddy.Destructor, error) {
	if g.database != nil {
		return newPostgresState(*g.database)
	}
	return newGatewayState(storage.Options{
		Dir:        g.storagePath,
		Logger:     caddy.Log().Named("llm_gateway.badger"),
		Durability: g.durability,
	})
}

// start acquires the store, writes the config's prices and lets requests
// in. Caddy calls it (through startupApp) when the config starts.
func (g *Gateway) start() error {
	defer g.markReady()
	val, loaded, err := states.LoadOrNew(g.stateKey(), g.openState)
	if err != nil {
		name := g.storeName()
		return fmt.Errorf("opening store at %s: %w", name.String, err)
	}
	g.held = val.(*gatewayState)
	if st, ok := g.held.store.(*storage.Store); ok {
		// A reload's settings, on the store it shares.
		st.SetDurability(g.durability)
		st.SetUsageRetention(time.Duration(g.UsageRetention))
	} else if st, ok := g.held.store.(*postgres.Store); ok {
		st.SetDurability(g.durability)
		st.SetUsageRetention(time.Duration(g.UsageRetention))
	}
	if err := g.writeConfigPrices(); err != nil {
		return err
	}
	g.held.cache.invalidate() // a reload may have changed prices
	g.state = g.held

	providers := make([]string, 0, len(g.Providers))
	for name := range g.Providers {
		providers = append(providers, name)
	}
	slices.Sort(providers)
	g.logger.Info("llm_gateway started",
		g.storeName(),
		zap.Bool("store_shared", loaded),
		zap.Stringer("durability", g.durability),
		zap.Strings("providers", providers),
		zap.Int("config_prices", len(g.configPrices)),
		zap.Bool("master_key_set", g.hasMaster))
	return nil
}

// markReady lets requests waiting for start in, with or without a store.
func (g *Gateway) markReady() { g.ready.open() }

// waitReady waits until start has ended; false if the client left first.
func (g *Gateway) waitReady(r *http.Request) bool {
	select {
	case <-g.ready.ch:
		return true
	default:
	}
	select {
	case <-g.ready.ch:
		return true
	case <-r.Context().Done():
		return false
	}
}

// readyGate is a channel closed once.
type readyGate struct {
	once sync.Once
	ch   chan struct{}
}

func newReadyGate() *readyGate { return &readyGate{ch: make(chan struct{})} }

func (r *readyGate) open() { r.once.Do(func() { close(r.ch) }) }

// writeConfigPrices makes the stored price of every model the config
// prices equal to the config's: a config price is the truth for its model,
// at every start and reload. Replacing a different stored price is logged.
func (g *Gateway) writeConfigPrices() error {
	keys := make([]string, 0, len(g.configPrices))
	for key := range g.configPrices {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	now := g.now()
	for _, key := range keys {
		p := g.configPrices[key]
		old, err := g.held.store.GetPrice(key)
		switch {
		case err == nil && old.InputPricePerMillion == p.InputPricePerMillion && old.OutputPricePerMillion == p.OutputPricePerMillion:
			continue
		case err == nil:
			g.logger.Info("config price replaces the stored price",
				zap.String("model_key", key),
				zap.Float64("old_input_price_per_million", old.InputPricePerMillion),
				zap.Float64("old_output_price_per_million", old.OutputPricePerMillion),
				zap.Float64("input_price_per_million", p.InputPricePerMillion),
				zap.Float64("output_price_per_million", p.OutputPricePerMillion))
		case !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("loading price %s: %w", key, err)
		}
		_, err = g.held.store.PutPrice(&storage.Price{
			ModelKey:              key,
			InputPricePerMillion:  p.InputPricePerMillion,
			OutputPricePerMillion: p.OutputPricePerMillion,
			CreatedAt:             now,
			UpdatedAt:             now,
		})
		if err != nil {
			return fmt.Errorf("storing the config price of %s: %w", key, err)
		}
	}
	return nil
}

// configOwned reports whether the config prices modelKey (normalised).
func (g *Gateway) configOwned(modelKey string) bool {
	_, ok := g.configPrices[modelKey]
	return ok
}

// Validate rejects configurations that cannot work.
func (g *Gateway) Validate() error {
	if g.MaxRequestBody < 0 {
		return fmt.Errorf("max_request_body must not be negative")
	}
	if g.RateLimitRPM < 0 {
		return fmt.Errorf("rate_limit_rpm must not be negative")
	}
	if g.DatabaseMaxConns < 0 {
		return fmt.Errorf("database_max_conns must not be negative")
	}
	if g.AutoMigrate != nil && g.DatabaseURL == "" {
		return fmt.Errorf("auto_migrate applies only with database_url")
	}
	if g.DefaultMaxTokens < 0 {
		return fmt.Errorf("default_max_tokens must not be negative")
	}
	if _, err := storage.ParseDurability(g.Durability); err != nil {
		return err
	}
	if g.UsageRetention < 0 {
		return fmt.Errorf("usage_retention must not be negative")
	}
	for key, p := range g.Pricing {
		if _, err := normalizeModelKey(key); err != nil {
			return fmt.Errorf("pricing %q: %w", key, err)
		}
		if !validPrice(p.InputPricePerMillion) || !validPrice(p.OutputPricePerMillion) {
			return fmt.Errorf("pricing %q: prices must not be negative", key)
		}
		if provider, _, _ := splitModel(key); g.Providers[provider] == nil {
			return fmt.Errorf("pricing %q: provider %q is not configured (no such entry in providers)", key, provider)
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
	for name, rc := range g.Routes {
		if err := rc.validate(name); err != nil {
			return err
		}
		if err := checkRouteProviders(name, rc, g.Providers); err != nil {
			return err
		}
	}
	if g.Dashboard != nil {
		if err := g.Dashboard.validate(); err != nil {
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
	g.cleanupDashboard()
	if g.ready != nil {
		g.markReady() // the config will not start (or is stopping)
	}
	if g.held == nil {
		return nil
	}
	// g.state stays set: a reload does not wait for this config's requests
	// in flight, and the pool keeps the state open while they finish.
	_, err := states.Delete(g.stateKey())
	return err
}

// ServeHTTP answers `/v1/*` and `/health*` and passes anything else on.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	path := r.URL.Path
	isV1 := path == "/v1" || strings.HasPrefix(path, "/v1/")
	isHealth := path == "/health" || strings.HasPrefix(path, "/health/")
	if g.ui != nil && isDashboardPath(path) {
		return g.serveDashboard(w, r)
	}
	if !isV1 && !isHealth {
		// Not the gateway's: the next handler's response, left untouched.
		return next.ServeHTTP(w, r)
	}
	setSecurityHeaders(w.Header(), isV1)
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
	route := lookupRoute(r.Method, r.URL.EscapedPath())
	rec := caddyhttp.NewResponseRecorder(w, nil, nil)
	w = rec
	gatewayMetrics.active.Inc()
	defer func() {
		gatewayMetrics.active.Dec()
		observeRequest(route.label, rec.Status(), time.Since(start))
	}()

	if !g.waitReady(r) {
		return nil // the client left before the config finished starting
	}
	if g.state == nil || !g.state.work.acquire() {
		g.writeError(w, r, errStoreUnavailable)
		return nil
	}
	defer g.state.work.release()

	if err := g.serveRoute(w, r, route); err != nil {
		g.writeError(w, r, err)
	}
	return nil
}

// setSecurityHeaders adds the headers every response the gateway answers
// itself carries (/v1 ones also the cache rules, Vary merged, not replaced).
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
