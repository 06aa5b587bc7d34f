// Command caddy is Caddy with the standard modules and llm_gateway, the same
// binary that xcaddy builds, for plain `go build` and the integration tests.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/llmgateway/caddy-llm-gateway"
)

func main() {
	caddycmd.Main()
}
