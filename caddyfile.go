package llmgateway

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("llm_gateway", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("llm_gateway", httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	g := new(Gateway)
	err := g.UnmarshalCaddyfile(h.Dispenser)
	return g, err
}

// UnmarshalCaddyfile sets up the gateway from Caddyfile tokens. Syntax:
//
//	llm_gateway [<matcher>] {
//		master_key         <key>            # e.g. {env.GATEWAY_MASTER_KEY}
//		storage_path       <dir>
//		durability         os|fsync         # default os
//		usage_retention    <duration>       # e.g. 2160h; default: keep forever
//		database_url       <url>            # e.g. {env.GATEWAY_DATABASE_URL}
//		database_max_conns <n>
//		auto_migrate       on|off           # off: an operator migrates the schema
//		provider <name> {
//			api_key                 <key>
//			base_url                <url> [<url>...]
//			models                  <model> [<model>...]
//			timeout                 <duration>
//			dial_timeout            <duration>
//			response_header_timeout <duration>
//			api_version             <version>
//			responses_api                    # serves /v1/responses
//			api_format              openai|anthropic
//		}
//		route <name> {                      # a model name: alias, load balancer, fallbacks
//			to       <provider:model> [weight <n>]
//			fallback <provider:model>
//			...                              # see unmarshalRoute
//		}
//		price              <provider:model> <input_usd_per_1M> <output_usd_per_1M>
//		rate_limit_rpm     <n>
//		default_max_tokens <n>
//		cors_allow_origins <origin> [<origin>...]
//		max_request_body   <size>           # e.g. 10MiB
//		dashboard [{                        # the web UI at /ui/
//			session_lifetime <duration>  # default 12h
//			session_idle     <duration>  # default 1h
//		}]
//	}
func (g *Gateway) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	// Where each price line is, to name it if its provider is missing:
	// provider blocks may come after the prices.
	var prices []priceLine
	var routes []routeLine
	for d.NextBlock(0) {
		switch d.Val() {
		case "master_key":
			if !d.AllArgs(&g.MasterKey) {
				return d.ArgErr()
			}
		case "storage_path":
			if !d.AllArgs(&g.StoragePath) {
				return d.ArgErr()
			}
			if !strings.Contains(g.StoragePath, "{") && !filepath.IsAbs(g.StoragePath) {
				return d.Errf("storage_path %q is relative: give an absolute path, or leave storage_path out to use Caddy's data directory", g.StoragePath)
			}
		case "durability":
			if !d.AllArgs(&g.Durability) {
				return d.ArgErr()
			}
			if _, err := storage.ParseDurability(g.Durability); err != nil || g.Durability == "" {
				return d.Errf("durability %q: want os (the default: in the operating system before the response, on disk within 100 ms) or fsync (on disk before the response)", g.Durability)
			}
		case "usage_retention":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(s)
			if err != nil || dur <= 0 {
				return d.Errf("usage_retention %q: want a positive duration such as 2160h (90 days)", s)
			}
			g.UsageRetention = caddy.Duration(dur)
		case "database_url":
			if !d.AllArgs(&g.DatabaseURL) {
				return d.ArgErr()
			}
			if !strings.Contains(g.DatabaseURL, "{") {
				if err := checkDatabaseScheme(g.DatabaseURL); err != nil {
					return d.Errf("%v", err)
				}
			}
		case "auto_migrate":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			switch v {
			case "on", "off":
				on := v == "on"
				g.AutoMigrate = &on
			default:
				return d.Errf("auto_migrate %q: want on or off", v)
			}
		case "database_max_conns":
			n, err := intArg(d, "database_max_conns")
			if err != nil {
				return err
			}
			g.DatabaseMaxConns = n
		case "provider":
			if err := g.unmarshalProvider(d); err != nil {
				return err
			}
		case "route":
			line, err := g.unmarshalRoute(d)
			if err != nil {
				return err
			}
			routes = append(routes, line)
		case "price":
			line := priceLine{err: d.Errf("")}
			key, err := g.unmarshalPrice(d)
			if err != nil {
				return err
			}
			line.key = key
			prices = append(prices, line)
		case "rate_limit_rpm":
			n, err := intArg(d, "rate_limit_rpm")
			if err != nil {
				return err
			}
			g.RateLimitRPM = n
		case "default_max_tokens":
			n, err := intArg(d, "default_max_tokens")
			if err != nil {
				return err
			}
			g.DefaultMaxTokens = n
		case "cors_allow_origins":
			origins := d.RemainingArgs()
			if len(origins) == 0 {
				return d.ArgErr()
			}
			for _, o := range origins {
				if err := validateOrigin(o); err != nil {
					return d.Errf("cors_allow_origins: %v", err)
				}
			}
			g.CORSAllowOrigins = append(g.CORSAllowOrigins, origins...)
		case "max_request_body":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			size, err := humanize.ParseBytes(s)
			if err != nil || size == 0 || size > 1<<40 {
				return d.Errf("max_request_body: invalid size %q", s)
			}
			g.MaxRequestBody = int64(size)
		case "dashboard":
			if err := g.unmarshalDashboard(d); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized subdirective '%s'", d.Val())
		}
	}
	for _, p := range prices {
		if provider, _, _ := splitModel(p.key); g.Providers[provider] == nil {
			return fmt.Errorf("price %s: provider %q is not configured in this llm_gateway block (add a `provider %s` block or fix the name)%w",
				p.key, provider, provider, p.err)
		}
	}
	for _, rl := range routes {
		if err := rl.checkProviders(g.Providers); err != nil {
			return err
		}
	}
	return nil
}

// priceLine is a parsed price line: its model key, and an empty error
// carrying its position in the Caddyfile.
type priceLine struct {
	key string
	err error
}

func (g *Gateway) unmarshalProvider(d *caddyfile.Dispenser) error {
	var name string
	if !d.Args(&name) {
		return d.ArgErr()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if !validProviderName(name) {
		return d.Errf("provider %q: name must be lowercase letters, digits, '-', '_' or '.'", name)
	}
	if _, dup := g.Providers[name]; dup {
		return d.Errf("provider %q defined twice", name)
	}
	p := new(ProviderConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "api_key":
			if !d.AllArgs(&p.APIKey) {
				return d.ArgErr()
			}
		case "base_url":
			urls := d.RemainingArgs()
			if len(urls) == 0 {
				return d.ArgErr()
			}
			for _, u := range urls {
				if err := validateBaseURL(u); err != nil {
					return d.Errf("provider %q: %v", name, err)
				}
			}
			p.BaseURLs = append(p.BaseURLs, urls...)
		case "models":
			models := d.RemainingArgs()
			if len(models) == 0 {
				return d.ArgErr()
			}
			p.Models = append(p.Models, models...)
		case "timeout", "dial_timeout", "response_header_timeout":
			opt := d.Val()
			dur, err := durationArg(d, fmt.Sprintf("provider %q: %s", name, opt))
			if err != nil {
				return err
			}
			*map[string]*caddy.Duration{
				"timeout":                 &p.Timeout,
				"dial_timeout":            &p.DialTimeout,
				"response_header_timeout": &p.ResponseHeaderTimeout,
			}[opt] = dur
		case "api_version":
			if !d.AllArgs(&p.APIVersion) {
				return d.ArgErr()
			}
		case "api_format":
			if !d.AllArgs(&p.APIFormat) {
				return d.ArgErr()
			}
		case "responses_api":
			if d.NextArg() {
				return d.ArgErr()
			}
			p.ResponsesAPI = true
		default:
			return d.Errf("provider %q: unrecognized subdirective '%s'", name, d.Val())
		}
	}
	if err := p.validate(name); err != nil {
		return d.Errf("%v", err)
	}
	if g.Providers == nil {
		g.Providers = make(map[string]*ProviderConfig)
	}
	g.Providers[name] = p
	return nil
}

// unmarshalDashboard parses the dashboard subdirective and its block.
func (g *Gateway) unmarshalDashboard(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if g.Dashboard != nil {
		return d.Errf("dashboard defined twice")
	}
	c := new(DashboardConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "session_lifetime", "session_idle":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(s)
			if err != nil || dur < time.Minute {
				return d.Errf("dashboard: %s: invalid duration %q (at least 1m)", opt, s)
			}
			if opt == "session_lifetime" {
				c.SessionLifetime = caddy.Duration(dur)
			} else {
				c.SessionIdle = caddy.Duration(dur)
			}
		default:
			return d.Errf("dashboard: unrecognized subdirective '%s'", opt)
		}
	}
	g.Dashboard = c
	return nil
}

// unmarshalPrice parses a price line and returns its normalised model key.
func (g *Gateway) unmarshalPrice(d *caddyfile.Dispenser) (string, error) {
	var key, in, out string
	if !d.AllArgs(&key, &in, &out) {
		return "", d.ArgErr()
	}
	modelKey, err := normalizeModelKey(key)
	if err != nil {
		return "", d.Errf("price: %v", err)
	}
	inPrice, err1 := strconv.ParseFloat(in, 64)
	outPrice, err2 := strconv.ParseFloat(out, 64)
	if err1 != nil || err2 != nil || !validPrice(inPrice) || !validPrice(outPrice) {
		return "", d.Errf("price %s: prices must be non-negative numbers (USD per 1M tokens), got %q %q", key, in, out)
	}
	if _, dup := g.Pricing[modelKey]; dup {
		return "", d.Errf("price for %s defined twice", modelKey)
	}
	if g.Pricing == nil {
		g.Pricing = make(map[string]PriceConfig)
	}
	g.Pricing[modelKey] = PriceConfig{InputPricePerMillion: inPrice, OutputPricePerMillion: outPrice}
	return modelKey, nil
}

// durationArg reads a positive duration argument; what names it in the
// error.
func durationArg(d *caddyfile.Dispenser, what string) (caddy.Duration, error) {
	var s string
	if !d.AllArgs(&s) {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s: invalid duration %q", what, s)
	}
	return caddy.Duration(dur), nil
}

func intArg(d *caddyfile.Dispenser, name string) (int, error) {
	var s string
	if !d.AllArgs(&s) {
		return 0, d.ArgErr()
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, d.Errf("%s: expected a non-negative integer, got %q", name, s)
	}
	return n, nil
}
