package llmgateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/internal/routing"
	"github.com/llmgateway/caddy-llm-gateway/internal/translate"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// gatewayRoute is a configured route ready to take requests.
type gatewayRoute struct {
	name           string
	r              *routing.Route
	targets        []routeTarget // as r.Targets
	attemptTimeout time.Duration
}

// routeTarget is a route's target with its provider.
type routeTarget struct {
	up       *upstream
	provider string
	model    string
	id       string // provider:model
}

// newGatewayRoute builds a route over the configured upstreams.
func newGatewayRoute(name string, rc *RouteConfig, upstreams map[string]*upstream) (*gatewayRoute, error) {
	if err := rc.validate(name); err != nil {
		return nil, err
	}
	failover, _ := routing.ParseFailover(rc.FailoverOn)
	if rc.FailoverOn == nil {
		failover = routing.DefaultFailover
	}
	policy := routing.HealthPolicy{UnhealthyAfter: defaultUnhealthyAfter, CoolDown: time.Duration(rc.CoolDown)}
	if rc.UnhealthyAfter != nil {
		policy.UnhealthyAfter = *rc.UnhealthyAfter
	}
	if policy.CoolDown == 0 {
		policy.CoolDown = defaultCoolDown
	}
	targets := rc.targets()
	gr := &gatewayRoute{
		name: name,
		r: &routing.Route{
			Name:         name,
			Targets:      targets,
			Failover:     failover,
			Retries:      rc.Retries,
			RetryBackoff: durationOr(rc.RetryBackoff, defaultRetryBackoff),
			MaxRetryWait: durationOr(rc.MaxRetryWait, defaultMaxRetryWait),
			Health:       routing.NewHealth(len(targets), policy),
		},
		attemptTimeout: time.Duration(rc.AttemptTimeout),
	}
	for _, t := range targets {
		up := upstreams[t.Provider]
		if up == nil {
			return nil, fmt.Errorf("route %s: provider %q of target %s is not configured (no such entry in providers)", name, t.Provider, t)
		}
		gr.targets = append(gr.targets, routeTarget{up: up, provider: t.Provider, model: t.Model, id: t.String()})
	}
	return gr, nil
}

func durationOr(d caddy.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// routeCall is a request's view of its route: which targets can take it,
// at what price and bound.
type routeCall struct {
	route *gatewayRoute
	// Per target of the route:
	eligible []bool // serves the endpoint (and, under a budget, priced)
	newTr    []translate.Constructor
	bound    []int64          // completion tokens the target may bill
	price    []*storage.Price // at admission
}

// prepareRoute readies a call to a route: the targets that serve the
// endpoint, the token bounds of each (the largest is the call's).
func (g *Gateway) prepareRoute(c *call, rt *gatewayRoute, root gjson.Result, body []byte) error {
	ep := c.endpoint
	if err := refuseBackground(ep, root); err != nil {
		return err
	}
	n := len(rt.targets)
	rc := &routeCall{
		route:    rt,
		eligible: make([]bool, n),
		newTr:    make([]translate.Constructor, n),
		bound:    make([]int64, n),
		price:    make([]*storage.Price, n),
	}
	first := -1
	for i, t := range rt.targets {
		rc.newTr[i] = translatorFor(ep.kind, t.up)
		if rc.newTr[i] == nil {
			continue
		}
		rc.eligible[i] = true
		rc.bound[i] = completionBound(root, ep.kind, t.up.format, g.DefaultMaxTokens)
		c.completionBound = max(c.completionBound, rc.bound[i])
		if first < 0 {
			first = i
		}
	}
	if first < 0 {
		return errBadRequest(fmt.Sprintf("Route '%s' has no target that supports %s", rt.name, ep.kind.apiName()))
	}
	c.route = rc
	// Until a target is tried, the call names the first that can serve it.
	t := rt.targets[first]
	c.up, c.provider, c.model, c.newTranslator = t.up, t.provider, t.model, rc.newTr[first]
	c.prompt = translate.EstimatePromptTokens(body)
	c.promptBound = translate.PromptTokenBound(root, body)
	return nil
}

// reserveRoute fills an admission request for a route: its cost is the
// most expensive target's worst case (each at its own price and bound). A
// target with no price cannot be billed, so under a budget it is left out;
// if that leaves none, the request is unpriced (refused by the budget).
func (g *Gateway) reserveRoute(c *call, req *metering.Request) error {
	rc := c.route
	budgeted := slices.ContainsFunc(req.Budgets, func(b metering.Budget) bool { return b.Max != nil })
	var cost storage.Money
	left, priced := 0, false
	for i, t := range rc.route.targets {
		if !rc.eligible[i] {
			continue
		}
		price, err := g.price(t.provider, t.model)
		if err != nil {
			return err
		}
		rc.price[i] = price
		if price == nil && budgeted {
			rc.eligible[i] = false
			gatewayMetrics.routeSkipped.WithLabelValues(rc.route.name, t.provider, "unpriced").Inc()
			continue
		}
		left++
		if price != nil && (price.InputPricePerMillion != 0 || price.OutputPricePerMillion != 0) {
			priced = true
			cost = max(cost, priceTokens(price, c.promptBound, rc.bound[i]))
		}
	}
	switch {
	case left == 0:
		req.Unpriced = true
	case !priced:
		for i := range req.Budgets {
			req.Budgets[i].Max = nil // free models are always allowed
		}
	default:
		req.Cost = cost
	}
	return nil
}

// routeAllowed checks a key's allow-list for a route: empty allows
// everything; else the route's name must be listed.
func routeAllowed(allowed []string, name string) bool {
	return len(allowed) == 0 || slices.Contains(allowed, name)
}

// forwardRoute tries the route's targets in their order until one answers
// (see RouteConfig), and answers the client with the last failure if none
// does. Every attempt is recorded; a failed one once it is known whether
// a target is left.
func (g *Gateway) forwardRoute(w http.ResponseWriter, r *http.Request, c *call) error {
	rc := c.route
	rt := rc.route
	seq := rt.r.Start(rt.r.Order(rc.eligible, rand.Float64))
	var pending, last *attempt // pending: failed over, not yet recorded
	var unusable error         // why a target could not take the request
	for {
		step, more := seq.Next(time.Now())
		for _, i := range step.Skipped {
			gatewayMetrics.routeSkipped.WithLabelValues(rt.name, rt.targets[i].provider, "unhealthy").Inc()
		}
		if pending != nil {
			if more {
				pending.errorMessage += "; the route tries its next target"
				gatewayMetrics.routeFailovers.WithLabelValues(rt.name, c.provider).Inc()
			}
			if err := g.record(c, pending, more); err != nil {
				return err
			}
			pending = nil
		}
		if !more {
			break
		}
		if step.Target < 0 {
			if !waitFor(r.Context(), step.Wait) {
				return nil // the client left: nobody to answer
			}
			continue
		}
		if err := g.useTarget(c, r, step.Target); err != nil {
			seq.Report(step, routing.Abandoned, 0, time.Now()) // frees a probe
			var apiErr *apiError
			if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnprocessableEntity {
				return err // the client's body: no target can take it
			}
			if ce := g.logger.Check(zapcore.DebugLevel, "route target cannot take the request"); ce != nil {
				ce.Write(zap.String("route", rt.name), zap.String("target", rt.targets[step.Target].id), zap.Error(err))
			}
			unusable = err
			continue
		}
		w.Header().Set("X-Gateway-Target", rt.targets[step.Target].id)
		a, err := g.forward(w, r, c)
		if _, changed := seq.Report(step, a.outcome, a.retryAfter, time.Now()); changed {
			g.observeTargetHealth(rt, step.Target)
		}
		if !errors.Is(err, errFailedOver) {
			return err
		}
		pending, last = a, a
	}
	switch {
	case last == nil && unusable != nil:
		return unusable
	case last == nil:
		w.Header().Del("X-Gateway-Target")
		return newError(http.StatusBadGateway, "provider_error", msgProviderError)
	case last.answerPassed != nil:
		// The last target's own 4xx (a 429): X-Gateway-Target names it.
		last.answerPassed.write(w)
		return nil
	}
	w.Header().Del("X-Gateway-Target")
	return last.answerErr
}

// useTarget points the call at target i of its route and builds the
// request that target receives.
func (g *Gateway) useTarget(c *call, r *http.Request, i int) error {
	rc := c.route
	t := rc.route.targets[i]
	c.up, c.provider, c.model = t.up, t.provider, t.model
	c.newTranslator, c.completionBound, c.price = rc.newTr[i], rc.bound[i], rc.price[i]
	c.failover, c.attemptTimeout = rc.route.r.Failover, rc.route.attemptTimeout
	c.upstreamPath, c.upstreamQuery = c.endpoint.path, ""
	if c.endpoint.kind == kindMessages && t.up.format == formatAnthropic {
		c.upstreamQuery = r.URL.RawQuery
	}
	return g.buildUpstreamBody(c, c.clientBody)
}

// waitFor waits d unless ctx ends first; false if it did.
func waitFor(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// observeTargetHealth sets a target's health gauge from its state and
// logs the change.
func (g *Gateway) observeTargetHealth(rt *gatewayRoute, i int) {
	t := rt.targets[i]
	if g.setTargetHealthGauge(rt, i) {
		g.logger.Info("route target back in service", zap.String("route", rt.name), zap.String("target", t.id))
		return
	}
	g.logger.Warn("route target out of service: skipped until its cool-down ends, then probed by one request",
		zap.String("route", rt.name), zap.String("target", t.id))
}

// setTargetHealthGauge sets a target's health gauge and returns whether
// it is in service.
func (g *Gateway) setTargetHealthGauge(rt *gatewayRoute, i int) bool {
	healthy := rt.r.Health.Healthy(i)
	v := 0.0
	if healthy {
		v = 1
	}
	t := rt.targets[i]
	gatewayMetrics.routeTargetHealthy.WithLabelValues(rt.name, t.provider, t.model).Set(v)
	return healthy
}
