package llmgateway

import (
	"net/http"
	"slices"
	"strings"
)

// providerResponse is a configured provider as GET /v1/providers shows it
// (ours): what the gateway calls, never its API key.
type providerResponse struct {
	Name      string `json:"name"`
	APIFormat string `json:"api_format"` // "openai" or "anthropic"
	// BaseURLs are the provider's URLs, without any user:password part.
	BaseURLs         []string `json:"base_urls"`
	Models           []string `json:"models"`
	ResponsesAPI     bool     `json:"responses_api"`
	TimeoutSec       float64  `json:"timeout_sec"`
	APIKeyConfigured bool     `json:"api_key_configured"`
}

// routeResponse is a configured route as GET /v1/routes shows it (ours).
type routeResponse struct {
	Name    string                `json:"name"`
	Targets []routeTargetResponse `json:"targets"`
}

// routeTargetResponse is one target of a route: a `to` target with its
// weight, or a fallback; healthy is false while passive health skips it.
type routeTargetResponse struct {
	Model    string `json:"model"`
	Weight   int    `json:"weight,omitempty"`
	Fallback bool   `json:"fallback"`
	Healthy  bool   `json:"healthy"`
}

// listRoutes answers GET /v1/routes: the config's routes, by name, with
// each target's passive health now.
func (g *Gateway) listRoutes(w http.ResponseWriter, _ *http.Request) error {
	out := make([]routeResponse, 0, len(g.routes))
	for name, rt := range g.routes {
		r := routeResponse{Name: name, Targets: make([]routeTargetResponse, len(rt.r.Targets))}
		for i, t := range rt.r.Targets {
			r.Targets[i] = routeTargetResponse{Model: t.String(), Fallback: t.Fallback, Healthy: rt.r.Health.Healthy(i)}
			if !t.Fallback {
				r.Targets[i].Weight = t.Weight
			}
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b routeResponse) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
	return nil
}

// listProviders answers GET /v1/providers: the providers of the config,
// by name.
func (g *Gateway) listProviders(w http.ResponseWriter, _ *http.Request) error {
	out := make([]providerResponse, 0, len(g.upstreams))
	for name, up := range g.upstreams {
		p := providerResponse{
			Name:             name,
			APIFormat:        "openai",
			BaseURLs:         make([]string, len(up.baseURLs)),
			Models:           slices.Clone(up.models),
			ResponsesAPI:     up.responses,
			TimeoutSec:       up.timeout.Seconds(),
			APIKeyConfigured: up.apiKey != "",
		}
		if up.format == formatAnthropic {
			p.APIFormat = "anthropic"
		}
		for i, u := range up.baseURLs {
			c := *u
			c.User = nil
			p.BaseURLs[i] = c.String()
		}
		if p.Models == nil {
			p.Models = []string{}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b providerResponse) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
	return nil
}
