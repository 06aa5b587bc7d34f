package integration

import (
	"net/http"

	"github.com/openai/openai-go/v3/packages/param"
)

func openaiString(s string) param.Opt[string] { return param.NewOpt(s) }

// doLikeSDK sends a request the way the OpenAI and Anthropic SDKs do: a
// connection error (no response at all) is retried, up to four times. Caddy
// closes the old config's sockets on reload, and a connection the kernel
// queued on one of them at that instant is reset before the gateway ever
// reads it; clients recover by resending.
func (g *gateway) doLikeSDK(method, path string, body any, headers ...string) *response {
	g.t.Helper()
	client := http.DefaultClient
	for attempt := 0; ; attempt++ {
		r, err := g.tryDoWith(client, method, path, body, headers...)
		if err == nil {
			return r
		}
		if attempt == 4 {
			g.t.Fatalf("%s %s: %v", method, path, err)
		}
		// Resend on a connection of its own: the shared pool may hold
		// more connections that the reload is closing ("server closed
		// idle connection" on each in turn).
		client = freshClient
	}
}

// freshClient dials a new connection for every request.
var freshClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
