package llmgateway

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/llmgateway/caddy-llm-gateway/internal/routing"
)

// RouteConfig is a model name clients may use instead of
// `provider:model`: an alias (one `to` target), a weighted load balancer
// over several, with fallbacks tried in order when they fail.
//
// A request picks one `to` target by weight. If that attempt fails before
// anything reached the client (by default: a connection error, a timeout,
// an upstream 5xx, 429, 401 or 403), the request moves on to the other
// `to` targets (by weight), then to each fallback in order. Other upstream
// 4xx are answered as they are. Targets may speak different APIs: the
// client gets its own format whichever answers. Every attempt writes its
// own usage record; the budget reservation covers the most expensive
// target; a target with no price is skipped for a caller under a budget.
// The response header `X-Gateway-Target` names the target that answered.
type RouteConfig struct {
	// The targets requests are balanced over, by weight.
	To []RouteTarget `json:"to,omitempty"`

	// Targets (`provider:model`) tried in order once every `to` target has
	// failed.
	Fallbacks []string `json:"fallbacks,omitempty"`

	// The failures that move a request on to the next target, among
	// `connection`, `timeout`, `5xx`, `429`, `401` and `403`, or `none`.
	// Default: all of them. A stream fails over only while nothing has
	// been sent to the client.
	FailoverOn []string `json:"failover_on,omitempty"`

	// How long a target may take to start its response (its headers)
	// before the request moves on. Default: none beyond the provider's own
	// `response_header_timeout` and `timeout`.
	AttemptTimeout caddy.Duration `json:"attempt_timeout,omitempty"`

	// How many more times the whole list of targets is tried once every
	// target has failed. Default: 0.
	Retries int `json:"retries,omitempty"`

	// The wait before the first retry round, doubled for each next one; a
	// longer `Retry-After` is waited instead when every failure of the
	// round was a 429 that named one. Default: 1s.
	RetryBackoff caddy.Duration `json:"retry_backoff,omitempty"`

	// The longest wait before a retry round; a longer one ends the retries
	// and the client gets the last failure. Default: 30s.
	MaxRetryWait caddy.Duration `json:"max_retry_wait,omitempty"`

	// Failures in a row after which a target is skipped for `cool_down`
	// (passive health: learnt from real requests, no probe traffic). 0
	// turns it off. Default: 3. A 429 with `Retry-After` skips the target
	// for that long whatever the count.
	UnhealthyAfter *int `json:"unhealthy_after,omitempty"`

	// How long a failing target is skipped; then one request probes it,
	// and its success puts the target back in service. Default: 30s.
	CoolDown caddy.Duration `json:"cool_down,omitempty"`
}

// RouteTarget is one `to` target of a route.
type RouteTarget struct {
	// The target, `provider:model`.
	Model string `json:"model"`
	// Its share of the route's requests relative to the other `to`
	// targets. Default: 1.
	Weight int `json:"weight,omitempty"`
}

// Route defaults.
const (
	defaultUnhealthyAfter = 3
	defaultCoolDown       = 30 * time.Second
	defaultRetryBackoff   = time.Second
	defaultMaxRetryWait   = 30 * time.Second
	maxRouteTargets       = 32
)

// validRouteName reports whether name can name a route: no ':' or '/'
// (so never a provider:model), no spaces or control characters.
func validRouteName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	return !strings.ContainsFunc(name, func(r rune) bool {
		return r == ':' || r == '/' || r == ' ' || r == '\t' || isControl(r)
	})
}

// validate checks the route's own fields; whether its providers exist is
// checked against the config's (checkRouteProviders).
func (rc *RouteConfig) validate(name string) error {
	if !validRouteName(name) {
		return fmt.Errorf("route %q: a route name must not contain ':', '/' or spaces (it would read as provider:model)", name)
	}
	if rc == nil || len(rc.To) == 0 {
		return fmt.Errorf("route %q: needs at least one `to` target", name)
	}
	if len(rc.To)+len(rc.Fallbacks) > maxRouteTargets {
		return fmt.Errorf("route %q: at most %d targets", name, maxRouteTargets)
	}
	seen := make(map[string]bool)
	check := func(model string) error {
		key, err := normalizeModelKey(model)
		if err != nil {
			return fmt.Errorf("route %q: %w", name, err)
		}
		if seen[key] {
			return fmt.Errorf("route %q: target %s named twice", name, key)
		}
		seen[key] = true
		return nil
	}
	for _, t := range rc.To {
		if err := check(t.Model); err != nil {
			return err
		}
		if t.Weight < 0 {
			return fmt.Errorf("route %q: weight of %s must be a positive integer", name, t.Model)
		}
	}
	for _, f := range rc.Fallbacks {
		if err := check(f); err != nil {
			return err
		}
	}
	if _, err := routing.ParseFailover(rc.FailoverOn); err != nil {
		return fmt.Errorf("route %q: failover_on: %w", name, err)
	}
	switch {
	case rc.Retries < 0:
		return fmt.Errorf("route %q: retries must not be negative", name)
	case rc.UnhealthyAfter != nil && *rc.UnhealthyAfter < 0:
		return fmt.Errorf("route %q: unhealthy_after must not be negative", name)
	case rc.AttemptTimeout < 0 || rc.RetryBackoff < 0 || rc.MaxRetryWait < 0 || rc.CoolDown < 0:
		return fmt.Errorf("route %q: durations must not be negative", name)
	}
	return nil
}

// targets returns the route's targets, `to` then fallbacks, normalised.
func (rc *RouteConfig) targets() []routing.Target {
	out := make([]routing.Target, 0, len(rc.To)+len(rc.Fallbacks))
	for _, t := range rc.To {
		key, _ := normalizeModelKey(t.Model)
		provider, model, _ := splitModel(key)
		out = append(out, routing.Target{Provider: provider, Model: model, Weight: max(t.Weight, 1)})
	}
	for _, f := range rc.Fallbacks {
		key, _ := normalizeModelKey(f)
		provider, model, _ := splitModel(key)
		out = append(out, routing.Target{Provider: provider, Model: model, Fallback: true})
	}
	return out
}

// checkRouteProviders refuses a route naming a provider the config does
// not have.
func checkRouteProviders(name string, rc *RouteConfig, providers map[string]*ProviderConfig) error {
	for _, t := range rc.targets() {
		if providers[t.Provider] == nil {
			return fmt.Errorf("route %s: provider %q of target %s is not configured in this llm_gateway block (add a `provider %s` block or fix the name)",
				name, t.Provider, t, t.Provider)
		}
	}
	return nil
}

// routeLine is a parsed route's targets, each with an empty error
// carrying its position in the Caddyfile, to name the line of a target
// whose provider is missing (provider blocks may come after routes).
type routeLine struct {
	name    string
	targets []targetLine
}

type targetLine struct {
	model string
	err   error
}

// checkProviders refuses a target naming a provider the config does not
// have, naming its line.
func (rl routeLine) checkProviders(providers map[string]*ProviderConfig) error {
	for _, t := range rl.targets {
		if provider, _, _ := splitModel(t.model); providers[provider] == nil {
			return fmt.Errorf("route %s: provider %q of target %s is not configured in this llm_gateway block (add a `provider %s` block or fix the name)%w",
				rl.name, provider, t.model, provider, t.err)
		}
	}
	return nil
}

// unmarshalRoute parses a route block:
//
//	route <name> {
//		to       <provider:model> [weight <n>]
//		fallback <provider:model>
//		failover_on     connection|timeout|5xx|429|401|403 ...|none
//		attempt_timeout <duration>
//		retries         <n>
//		retry_backoff   <duration>
//		max_retry_wait  <duration>
//		unhealthy_after <n>
//		cool_down       <duration>
//	}
func (g *Gateway) unmarshalRoute(d *caddyfile.Dispenser) (routeLine, error) {
	var name string
	if !d.Args(&name) {
		return routeLine{}, d.ArgErr()
	}
	if d.NextArg() {
		return routeLine{}, d.ArgErr()
	}
	line := routeLine{name: name}
	if !validRouteName(name) {
		return line, d.Errf("route %q: a route name must not contain ':', '/' or spaces (it would read as provider:model)", name)
	}
	if _, dup := g.Routes[name]; dup {
		return line, d.Errf("route %q defined twice", name)
	}
	rc := new(RouteConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "to":
			args := d.RemainingArgs()
			t := RouteTarget{Weight: 1}
			switch {
			case len(args) == 1:
			case len(args) == 3 && args[1] == "weight":
				w, err := strconv.Atoi(args[2])
				if err != nil || w < 1 || w > 1_000_000 {
					return line, d.Errf("route %q: weight of %s must be a positive integer, got %q", name, args[0], args[2])
				}
				t.Weight = w
			default:
				return line, d.Errf("route %q: expected `to <provider:model> [weight <n>]`", name)
			}
			t.Model = args[0]
			rc.To = append(rc.To, t)
			line.targets = append(line.targets, targetLine{args[0], d.Errf("")})
		case "fallback":
			var model string
			if !d.AllArgs(&model) {
				return line, d.ArgErr()
			}
			rc.Fallbacks = append(rc.Fallbacks, model)
			line.targets = append(line.targets, targetLine{model, d.Errf("")})
		case "failover_on":
			names := d.RemainingArgs()
			if len(names) == 0 {
				return line, d.ArgErr()
			}
			if _, err := routing.ParseFailover(names); err != nil {
				return line, d.Errf("route %q: failover_on: %v", name, err)
			}
			rc.FailoverOn = names
		case "attempt_timeout", "retry_backoff", "max_retry_wait", "cool_down":
			dur, err := durationArg(d, fmt.Sprintf("route %q: %s", name, opt))
			if err != nil {
				return line, err
			}
			*map[string]*caddy.Duration{
				"attempt_timeout": &rc.AttemptTimeout,
				"retry_backoff":   &rc.RetryBackoff,
				"max_retry_wait":  &rc.MaxRetryWait,
				"cool_down":       &rc.CoolDown,
			}[opt] = dur
		case "retries", "unhealthy_after":
			n, err := intArg(d, "route "+strconv.Quote(name)+": "+opt)
			if err != nil {
				return line, err
			}
			if opt == "retries" {
				rc.Retries = n
			} else {
				rc.UnhealthyAfter = &n
			}
		default:
			return line, d.Errf("route %q: unrecognized subdirective '%s'", name, opt)
		}
	}
	if err := rc.validate(name); err != nil {
		return line, d.Errf("%v", err)
	}
	if g.Routes == nil {
		g.Routes = make(map[string]*RouteConfig)
	}
	g.Routes[name] = rc
	return line, nil
}
