package llmgateway

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/llmgateway/caddy-llm-gateway/internal/cli"
)

// adminCommands are `caddy llm-gateway users|keys|budgets|pricing|usage`:
// the admin API from a terminal (internal/cli), each exiting with the
// code its run returns through Caddy's command API.
func adminCommands() []*cobra.Command {
	return cli.Commands(func(run func(fl *pflag.FlagSet) int) func(*cobra.Command, []string) error {
		return caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
			return run(fl.FlagSet), nil
		})
	})
}
