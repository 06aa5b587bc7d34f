package llmgateway

import (
	"net/http"
	"net/url"
	"strings"
)

// routes is the gateway's route table: every path it answers, with the
// method, who may call it, the handler, and the endpoint label its
// requests are counted under in the metrics. Routing and the metrics both
// read it. A path with routes but none for the request's method is
// answered 405 with Allow listing the methods in the table's order; any
// other path under /v1 or /health, 404.
var routes = compileRoutes([]route{
	// Inference: the handler authenticates, in the contract's order of checks.
	{http.MethodPost, "/v1/chat/completions", "/v1/chat/completions", authInHandler, completion(endpointChat)},
	{http.MethodPost, "/v1/completions", "/v1/completions", authInHandler, completion(endpointCompletions)},
	{http.MethodPost, "/v1/embeddings", "/v1/embeddings", authInHandler, completion(endpointEmbeddings)},
	{http.MethodPost, "/v1/messages", "/v1/messages", authInHandler, completion(endpointMessages)},
	// Not an any-llm route: counted under "other", as it always was.
	{http.MethodPost, "/v1/messages/count_tokens", "other", authInHandler, noParam((*Gateway).countTokens)},
	{http.MethodPost, "/v1/responses", "/v1/responses", authInHandler, completion(endpointResponses)},
	{http.MethodGet, "/v1/models", "/v1/models", authInHandler, noParam((*Gateway).listModels)},
	// A model id may contain '/' (openrouter:openai/gpt-4o).
	{http.MethodGet, "/v1/models/{id...}", "/v1/models/{id}", authInHandler, (*Gateway).getModel},

	{http.MethodGet, "/v1/users", "/v1/users", authMaster, noParam((*Gateway).listUsers)},
	{http.MethodPost, "/v1/users", "/v1/users", authMaster, noParam((*Gateway).createUser)},
	{http.MethodGet, "/v1/users/{id}", "/v1/users/{id}", authMaster, (*Gateway).getUser},
	{http.MethodPatch, "/v1/users/{id}", "/v1/users/{id}", authMaster, (*Gateway).updateUser},
	{http.MethodDelete, "/v1/users/{id}", "/v1/users/{id}", authMaster, (*Gateway).deleteUser},
	{http.MethodGet, "/v1/users/{id}/usage", "/v1/users/{id}/usage", authMaster, (*Gateway).userUsage},
	{http.MethodGet, "/v1/users/{id}/budget-history", "/v1/users/{id}/budget-history", authMaster, (*Gateway).userBudgetHistory},

	{http.MethodGet, "/v1/keys", "/v1/keys", authMaster, noParam((*Gateway).listKeys)},
	{http.MethodPost, "/v1/keys", "/v1/keys", authMaster, noParam((*Gateway).createKey)},
	{http.MethodGet, "/v1/keys/{id}", "/v1/keys/{id}", authMaster, (*Gateway).getKey},
	{http.MethodPatch, "/v1/keys/{id}", "/v1/keys/{id}", authMaster, (*Gateway).updateKey},
	{http.MethodDelete, "/v1/keys/{id}", "/v1/keys/{id}", authMaster, (*Gateway).deleteKey},
	{http.MethodPost, "/v1/keys/{id}/rotate", "/v1/keys/{id}/rotate", authMaster, (*Gateway).rotateKey},
	{http.MethodGet, "/v1/keys/{id}/budget-history", "/v1/keys/{id}/budget-history", authMaster, (*Gateway).keyBudgetHistory},

	{http.MethodGet, "/v1/budgets", "/v1/budgets", authMaster, noParam((*Gateway).listBudgets)},
	{http.MethodPost, "/v1/budgets", "/v1/budgets", authMaster, noParam((*Gateway).createBudget)},
	{http.MethodGet, "/v1/budgets/{id}", "/v1/budgets/{id}", authMaster, (*Gateway).getBudget},
	{http.MethodPatch, "/v1/budgets/{id}", "/v1/budgets/{id}", authMaster, (*Gateway).updateBudget},
	{http.MethodDelete, "/v1/budgets/{id}", "/v1/budgets/{id}", authMaster, (*Gateway).deleteBudget},

	// Prices are public to every key; changing them needs the master key.
	{http.MethodGet, "/v1/pricing", "/v1/pricing", authAnyKey, noParam((*Gateway).listPrices)},
	{http.MethodPost, "/v1/pricing", "/v1/pricing", authMaster, noParam((*Gateway).upsertPrice)},
	// A model key may contain '/' (openrouter:openai/gpt-4o).
	{http.MethodGet, "/v1/pricing/{model_key...}", "/v1/pricing/{id}", authAnyKey, (*Gateway).getPrice},
	{http.MethodDelete, "/v1/pricing/{model_key...}", "/v1/pricing/{id}", authMaster, (*Gateway).deletePrice},

	{http.MethodGet, "/v1/usage", "/v1/usage", authMaster, noParam((*Gateway).listUsage)},
	{http.MethodGet, "/v1/usage/summary", "/v1/usage/summary", authMaster, noParam((*Gateway).usageSummary)},

	// Ours: the config's providers and routes, for the dashboard and the CLI.
	{http.MethodGet, "/v1/providers", "other", authMaster, noParam((*Gateway).listProviders)},
	{http.MethodGet, "/v1/routes", "other", authMaster, noParam((*Gateway).listRoutes)},

	{http.MethodGet, "/health", "/health", authNone, noParam((*Gateway).serveHealth)},
	{http.MethodHead, "/health", "/health", authNone, noParam((*Gateway).serveHealth)},
	{http.MethodGet, "/health/liveness", "/health/liveness", authNone, noParam((*Gateway).serveLiveness)},
	{http.MethodHead, "/health/liveness", "/health/liveness", authNone, noParam((*Gateway).serveLiveness)},
	{http.MethodGet, "/health/readiness", "/health/readiness", authNone, noParam((*Gateway).serveReadiness)},
	{http.MethodHead, "/health/readiness", "/health/readiness", authNone, noParam((*Gateway).serveReadiness)},
})

// route is one row of the route table.
type route struct {
	method string
	// pattern is the path: {name} stands for one segment (it may hold an
	// escaped '/'), a last {name...} for the rest of the path, '/'s and all.
	pattern string
	// label is the metrics' endpoint label: any-llm's route template.
	label  string
	access access
	handle routeHandler
}

// compiledRoute is a route with its pattern split, for matching.
type compiledRoute struct {
	route
	segs []patternSeg
}

// access says who may call a route.
type access uint8

const (
	authNone      access = iota // anyone (health)
	authInHandler               // the handler authenticates: it needs the caller
	authMaster                  // the master key
	authAnyKey                  // the master key or any valid virtual key
)

// routeHandler answers one route; param is the pattern's parameter, if any.
type routeHandler func(g *Gateway, w http.ResponseWriter, r *http.Request, param string) error

// noParam adapts the handler of a route without a path parameter.
func noParam(h func(*Gateway, http.ResponseWriter, *http.Request) error) routeHandler {
	return func(g *Gateway, w http.ResponseWriter, r *http.Request, _ string) error { return h(g, w, r) }
}

// completion is the handler of an inference endpoint.
func completion(ep endpoint) routeHandler {
	return func(g *Gateway, w http.ResponseWriter, r *http.Request, _ string) error {
		return g.serveCompletion(w, r, ep)
	}
}

// patternSeg is one segment of a route pattern.
type patternSeg struct {
	literal string // empty for a parameter
	rest    bool   // {name...}
}

func compileRoutes(table []route) []compiledRoute {
	compiled := make([]compiledRoute, len(table))
	for i, r := range table {
		rt := &compiled[i]
		rt.route = r
		for s := range strings.SplitSeq(strings.TrimPrefix(r.pattern, "/"), "/") {
			switch {
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "...}"):
				rt.segs = append(rt.segs, patternSeg{rest: true})
			case strings.HasPrefix(s, "{"):
				rt.segs = append(rt.segs, patternSeg{})
			default:
				rt.segs = append(rt.segs, patternSeg{literal: s})
			}
		}
	}
	return compiled
}

// match reports whether a path's segments fit the route's pattern, and
// the value of its parameter.
func (rt *compiledRoute) match(segs []string) (param string, ok bool) {
	for i, p := range rt.segs {
		switch {
		case i >= len(segs):
			return "", false
		case p.rest:
			return strings.Join(segs[i:], "/"), true
		case p.literal == "":
			param = segs[i]
		case p.literal != segs[i]:
			return "", false
		}
	}
	return param, len(segs) == len(rt.segs)
}

// routeMatch is where the route table sends a request.
type routeMatch struct {
	route *compiledRoute // nil: err answers the request
	param string
	label string    // the endpoint label, "other" for an unknown path
	err   *apiError // 404, or 405 with Allow
}

// lookupRoute finds the route of a request by its method and escaped path.
func lookupRoute(method, escapedPath string) routeMatch {
	m := routeMatch{label: "other"}
	segs, ok := splitPath(escapedPath)
	// The first segment (v1, health) must be written as it is, not escaped.
	if !ok || len(segs) == 0 || !strings.HasPrefix(escapedPath, "/"+segs[0]) {
		m.err = errNotFound("Not found")
		return m
	}
	var allowed []string
	for i := range routes {
		rt := &routes[i]
		param, ok := rt.match(segs)
		if !ok {
			continue
		}
		if rt.method == method {
			return routeMatch{route: rt, param: param, label: rt.label}
		}
		allowed = append(allowed, rt.method)
		m.label = rt.label
	}
	if allowed == nil {
		m.err = errNotFound("Not found")
	} else {
		m.err = methodNotAllowed(allowed...)
	}
	return m
}

// serveRoute checks the caller's access to the matched route and runs it.
func (g *Gateway) serveRoute(w http.ResponseWriter, r *http.Request, m routeMatch) error {
	if m.route == nil {
		return m.err
	}
	switch m.route.access {
	case authMaster:
		if err := g.requireMaster(r); err != nil {
			return err
		}
	case authAnyKey:
		if _, err := g.authenticate(r); err != nil {
			return err
		}
	}
	return m.route.handle(g, w, r, m.param)
}

// splitPath splits an escaped path into unescaped segments, so that an id
// may contain an escaped '/'. A trailing slash is ignored; an empty
// segment, or one that does not unescape or holds a control character,
// makes the path invalid.
func splitPath(escaped string) ([]string, bool) {
	rest := strings.TrimPrefix(escaped, "/")
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return nil, true
	}
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		s, err := url.PathUnescape(p)
		if err != nil || s == "" || strings.ContainsFunc(s, isControl) {
			return nil, false
		}
		parts[i] = s
	}
	return parts, true
}

// pathSegments splits an escaped path below /v1/ into unescaped segments,
// as splitPath does.
func pathSegments(escaped string) ([]string, bool) {
	return splitPath(strings.TrimPrefix(escaped, "/v1"))
}
