package llmgateway

import (
	"net/http"
	"net/url"
	"strings"
)

// serveV1 routes a request under /v1 to its handler.
func (g *Gateway) serveV1(w http.ResponseWriter, r *http.Request) error {
	segs, ok := pathSegments(r.URL.EscapedPath())
	if !ok {
		return errNotFound("Not found")
	}
	if len(segs) == 0 {
		return errNotFound("Not found")
	}
	resource, rest := segs[0], segs[1:]
	if c, ok := g.collections[resource]; ok {
		return g.routeCollection(w, r, c, rest)
	}
	switch resource {
	case "pricing":
		return g.routePricing(w, r, rest)
	case "usage":
		if len(rest) != 0 {
			return errNotFound("Not found")
		}
		if r.Method != http.MethodGet {
			return methodNotAllowed(http.MethodGet)
		}
		return g.listUsage(w, r)
	}
	return g.routeInference(w, r, resource, rest)
}

// pathSegments splits an escaped path below /v1/ into unescaped segments,
// so an id may contain an escaped '/'. A trailing slash is ignored.
func pathSegments(escaped string) ([]string, bool) {
	rest := strings.TrimPrefix(escaped, "/v1")
	rest = strings.TrimPrefix(rest, "/")
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

// collection is an admin resource: /v1/<name> lists and creates,
// /v1/<name>/{id} reads, updates and deletes, /v1/<name>/{id}/<action>
// runs an action. Every route needs the master key.
type collection struct {
	list, create        func(http.ResponseWriter, *http.Request) error
	get, update, remove idHandler
	actions             map[string]collectionAction
}

type idHandler func(w http.ResponseWriter, r *http.Request, id string) error

type collectionAction struct {
	method string
	handle idHandler
}

// adminCollections maps /v1/<name> to its handlers.
func (g *Gateway) adminCollections() map[string]collection {
	return map[string]collection{
		"users": {
			list: g.listUsers, create: g.createUser,
			get: g.getUser, update: g.updateUser, remove: g.deleteUser,
			actions: map[string]collectionAction{
				"usage":          {http.MethodGet, g.userUsage},
				"budget-history": {http.MethodGet, g.userBudgetHistory},
			},
		},
		"keys": {
			list: g.listKeys, create: g.createKey,
			get: g.getKey, update: g.updateKey, remove: g.deleteKey,
			actions: map[string]collectionAction{
				"rotate":         {http.MethodPost, g.rotateKey},
				"budget-history": {http.MethodGet, g.keyBudgetHistory},
			},
		},
		"budgets": {
			list: g.listBudgets, create: g.createBudget,
			get: g.getBudget, update: g.updateBudget, remove: g.deleteBudget,
		},
	}
}

// routeCollection dispatches a request below /v1/<name> of c.
func (g *Gateway) routeCollection(w http.ResponseWriter, r *http.Request, c collection, rest []string) error {
	switch len(rest) {
	case 0:
		var h func(http.ResponseWriter, *http.Request) error
		switch r.Method {
		case http.MethodGet:
			h = c.list
		case http.MethodPost:
			h = c.create
		}
		if h == nil {
			return methodNotAllowed(http.MethodGet, http.MethodPost)
		}
		return g.withMaster(w, r, h)
	case 1:
		var h idHandler
		switch r.Method {
		case http.MethodGet:
			h = c.get
		case http.MethodPatch:
			h = c.update
		case http.MethodDelete:
			h = c.remove
		}
		if h == nil {
			return methodNotAllowed(http.MethodGet, http.MethodPatch, http.MethodDelete)
		}
		return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return h(w, r, rest[0]) })
	case 2:
		a, ok := c.actions[rest[1]]
		if !ok {
			break
		}
		if r.Method != a.method {
			return methodNotAllowed(a.method)
		}
		return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.handle(w, r, rest[0]) })
	}
	return errNotFound("Not found")
}

func (g *Gateway) routePricing(w http.ResponseWriter, r *http.Request, rest []string) error {
	if len(rest) == 0 {
		switch r.Method {
		case http.MethodGet:
			return g.withAnyKey(w, r, g.listPrices)
		case http.MethodPost:
			return g.withMaster(w, r, g.upsertPrice)
		}
		return methodNotAllowed(http.MethodGet, http.MethodPost)
	}
	// A model key may contain '/' (openrouter:openai/gpt-4o), so the rest
	// of the path is the key.
	key := strings.Join(rest, "/")
	switch r.Method {
	case http.MethodGet:
		return g.withAnyKey(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.getPrice(w, r, key) })
	case http.MethodDelete:
		return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.deletePrice(w, r, key) })
	}
	return methodNotAllowed(http.MethodGet, http.MethodDelete)
}

// withMaster runs h if the request carries the master key.
func (g *Gateway) withMaster(w http.ResponseWriter, r *http.Request, h func(http.ResponseWriter, *http.Request) error) error {
	if err := g.requireMaster(r); err != nil {
		return err
	}
	return h(w, r)
}

// withAnyKey runs h for the master key or any valid virtual key.
func (g *Gateway) withAnyKey(w http.ResponseWriter, r *http.Request, h func(http.ResponseWriter, *http.Request) error) error {
	if _, err := g.authenticate(r); err != nil {
		return err
	}
	return h(w, r)
}
