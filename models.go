package llmgateway

import (
	"fmt"
	"net/http"
	"sort"
)

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type modelList struct {
	Object string        `json:"object"`
	Data   []modelObject `json:"data"`
}

// models lists priced models and the models of configured providers, as
// `provider:model`, limited to what the key may use.
func (g *Gateway) models(p principal) ([]modelObject, error) {
	byID := make(map[string]modelObject)
	for skip := 0; ; skip += 1000 {
		prices, err := g.store().ListPrices(skip, 1000)
		if err != nil {
			return nil, err
		}
		for _, pr := range prices {
			provider, _, _ := splitModel(pr.ModelKey)
			byID[pr.ModelKey] = modelObject{ID: pr.ModelKey, Object: "model", Created: pr.CreatedAt.Unix(), OwnedBy: provider}
		}
		if len(prices) < 1000 {
			break
		}
	}
	for name, up := range g.upstreams {
		for _, m := range up.models {
			id := name + ":" + m
			if _, ok := byID[id]; !ok {
				byID[id] = modelObject{ID: id, Object: "model", Created: g.started.Unix(), OwnedBy: name}
			}
		}
	}
	out := make([]modelObject, 0, len(byID)+len(g.routes))
	for _, m := range byID {
		provider, model, _ := splitModel(m.ID)
		if p.key != nil && !modelAllowed(p.key.AllowedModels, provider, model) {
			continue
		}
		out = append(out, m)
	}
	for name := range g.routes {
		// A route is a model of its own (id: its name), whichever target
		// serves it.
		if p.key == nil || routeAllowed(p.key.AllowedModels, name) {
			out = append(out, modelObject{ID: name, Object: "model", Created: g.started.Unix(), OwnedBy: "llm_gateway"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// callerModels authenticates r and lists the models its caller may use.
func (g *Gateway) callerModels(r *http.Request) ([]modelObject, error) {
	p, err := g.authenticate(r)
	if err != nil {
		return nil, err
	}
	return g.models(p)
}

func (g *Gateway) listModels(w http.ResponseWriter, r *http.Request) error {
	models, err := g.callerModels(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, modelList{Object: "list", Data: models})
	return nil
}

func (g *Gateway) getModel(w http.ResponseWriter, r *http.Request, id string) error {
	models, err := g.callerModels(r)
	if err != nil {
		return err
	}
	key, keyErr := normalizeModelKey(id)
	if g.routes[id] != nil {
		key, keyErr = id, nil
	}
	for _, m := range models {
		if keyErr == nil && m.ID == key {
			writeJSON(w, http.StatusOK, m)
			return nil
		}
	}
	return errNotFound(fmt.Sprintf("Model '%s' not found", truncate(id, 128)))
}
