package integration

import "github.com/openai/openai-go/v3/packages/param"

func openaiString(s string) param.Opt[string] { return param.NewOpt(s) }

// doLikeSDK sends a request the way the OpenAI and Anthropic SDKs do: a
// connection error (no response at all) is retried, up to twice. Caddy
// closes the old config's sockets on reload, and a connection the kernel
// queued on one of them at that instant is reset before the gateway ever
// reads it; clients recover by resending.
func (g *gateway) doLikeSDK(method, path string, body any, headers ...string) *response {
	g.t.Helper()
	for attempt := 0; ; attempt++ {
		r, err := g.tryDo(method, path, body, headers...)
		if err == nil {
			return r
		}
		if attempt == 2 {
			g.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}
