package llmgateway

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(startupApp{})
}

// startupApp is the Caddy app `llm_gateway`, loaded by the gateway handlers
// of a config, never configured by hand. It exists for its Start: Caddy
// starts apps only for a config it runs, after every module of it has been
// provisioned and validated, while `caddy validate` (and `caddy adapt
// --validate`) provisions and validates a config without starting it. So
// the handlers' Provision only checks and prepares, and everything with a
// side effect (creating and opening the store, writing the config's prices)
// happens here: a config that fails validation, or is only validated,
// writes nothing.
//
// Caddy provisions and starts a config's modules from one goroutine, so
// handlers needs no lock.
type startupApp struct {
	handlers []*Gateway
}

// CaddyModule returns the Caddy module information.
func (startupApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "llm_gateway",
		New: func() caddy.Module { return new(startupApp) },
	}
}

// register makes g start with the config.
func (a *startupApp) register(g *Gateway) {
	a.handlers = append(a.handlers, g)
}

// Start opens the store of every handler of the config. Caddy starts the
// http app in no particular order with this one: a request that arrives
// before its handler's store is open waits for it (see Gateway.ServeHTTP).
func (a *startupApp) Start() error {
	for i, g := range a.handlers {
		if err := g.start(); err != nil {
			// The config will not run: requests already waiting on the
			// handlers not started are answered 503 rather than held.
			for _, rest := range a.handlers[i:] {
				rest.markReady()
			}
			return fmt.Errorf("starting llm_gateway: %w", err)
		}
	}
	return nil
}

// Stop does nothing: a handler's store is released by its Cleanup, which
// Caddy runs after every app of the config has stopped (so the http app's
// graceful shutdown still has the store for the requests it drains).
func (a *startupApp) Stop() error { return nil }

// Interface guards
var _ caddy.App = (*startupApp)(nil)
