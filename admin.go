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
	switch resource {
	case "users":
		return g.routeUsers(w, r, rest)
	case "keys":
		return g.routeKeys(w, r, rest)
	case "budgets":
		return g.routeBudgets(w, r, rest)
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

func (g *Gateway) routeUsers(w http.ResponseWriter, r *http.Request, rest []string) error {
	switch {
	case len(rest) == 0:
		switch r.Method {
		case http.MethodGet:
			return g.withMaster(w, r, g.listUsers)
		case http.MethodPost:
			return g.withMaster(w, r, g.createUser)
		}
		return methodNotAllowed(http.MethodGet, http.MethodPost)
	case len(rest) == 1:
		id := rest[0]
		switch r.Method {
		case http.MethodGet:
			return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.getUser(w, r, id) })
		case http.MethodPatch:
			return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.updateUser(w, r, id) })
		case http.MethodDelete:
			return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.deleteUser(w, r, id) })
		}
		return methodNotAllowed(http.MethodGet, http.MethodPatch, http.MethodDelete)
	case len(rest) == 2 && rest[1] == "usage":
		if r.Method != http.MethodGet {
			return methodNotAllowed(http.MethodGet)
		}
		return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.userUsage(w, r, rest[0]) })
	}
	return errNotFound("Not found")
}

func (g *Gateway) routeKeys(w http.ResponseWriter, r *http.Request, rest []string) error {
	switch {
	case len(rest) == 0:
		switch r.Method {
		case http.MethodGet:
			return g.withMaster(w, r, g.listKeys)
		case http.MethodPost:
			return g.withMaster(w, r, g.createKey)
		}
		return methodNotAllowed(http.MethodGet, http.MethodPost)
	case len(rest) == 1:
		id := rest[0]
		switch r.Method {
		case http.MethodGet:
			return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.getKey(w, r, id) })
		case http.MethodPatch:
			return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.updateKey(w, r, id) })
		case http.MethodDelete:
			return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.deleteKey(w, r, id) })
		}
		return methodNotAllowed(http.MethodGet, http.MethodPatch, http.MethodDelete)
	case len(rest) == 2 && rest[1] == "rotate":
		if r.Method != http.MethodPost {
			return methodNotAllowed(http.MethodPost)
		}
		return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.rotateKey(w, r, rest[0]) })
	}
	return errNotFound("Not found")
}

func (g *Gateway) routeBudgets(w http.ResponseWriter, r *http.Request, rest []string) error {
	switch len(rest) {
	case 0:
		switch r.Method {
		case http.MethodGet:
			return g.withMaster(w, r, g.listBudgets)
		case http.MethodPost:
			return g.withMaster(w, r, g.createBudget)
		}
		return methodNotAllowed(http.MethodGet, http.MethodPost)
	case 1:
		id := rest[0]
		switch r.Method {
		case http.MethodGet:
			return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.getBudget(w, r, id) })
		case http.MethodPatch:
			return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.updateBudget(w, r, id) })
		case http.MethodDelete:
			return g.withMaster(w, r, func(w http.ResponseWriter, r *http.Request) error { return g.deleteBudget(w, r, id) })
		}
		return methodNotAllowed(http.MethodGet, http.MethodPatch, http.MethodDelete)
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

// adminWrite runs a store write and invalidates the key cache after it, so
// the request path never authenticates against stale data.
func (g *Gateway) adminWrite(fn func() error) error {
	defer g.state.keys.invalidate()
	return fn()
}
