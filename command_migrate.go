package llmgateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
	"github.com/llmgateway/caddy-llm-gateway/storage/transfer"
)

// Exit codes of `caddy llm-gateway migrate` (1: the copy failed).
const (
	exitMigrateUsage       = 2 // bad flags
	exitMigrateNoSource    = 3 // no store at --from
	exitMigrateLocked      = 4 // the store at --from is open in a running Caddy
	exitMigrateUnreachable = 5 // the database does not answer
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "llm-gateway",
		Short: "Manages the LLM gateway's state",
		Long: `
Commands of the LLM gateway module.

  migrate   copies an embedded store, or an any-llm-gateway database, into PostgreSQL
  users     lists, creates, updates, blocks and deletes users       } over the admin
  keys      lists, creates, deactivates, rotates and deletes keys   } API of a running
  budgets   lists, creates and deletes budgets                      } gateway (--url;
  pricing   lists, sets and deletes model prices                    } the master key
  usage     usage totals per day and model, user, key…              } from $GATEWAY_MASTER_KEY)
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(migrateCommand())
			cmd.AddCommand(adminCommands()...)
		},
	})
}

// migrateCommand is `caddy llm-gateway migrate`.
func migrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate --from <storage_path> | --from-anyllm <postgres url> | --schema-only  [--to <database_url>] [--json]",
		Short: "Copies an embedded store or an any-llm-gateway database into PostgreSQL",
		Long: `
Copies users, keys, budgets, prices, spend periods and usage records into the
PostgreSQL database at --to (default: $GATEWAY_DATABASE_URL), creating its schema
when needed. The source is either the embedded store at --from (the storage_path
of a stopped Caddy) or the any-llm-gateway database at --from-anyllm. Keys keep
working: both store the SHA-256 of the same secrets. A record already in the
database is skipped, so running the command again copies nothing twice.

With --schema-only it copies nothing: it brings the schema at --to up to date
(what each instance does at start unless its Caddyfile says auto_migrate off).

Exit codes: 0 copied, 1 the copy failed, 2 bad flags, 3 no store at --from,
4 the store is in use by a running Caddy, 5 the database does not answer.
`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().String("from", "", "the embedded store's directory (storage_path)")
	cmd.Flags().String("from-anyllm", "", "the any-llm-gateway PostgreSQL database URL")
	cmd.Flags().String("to", "", "the PostgreSQL database URL (default $GATEWAY_DATABASE_URL)")
	cmd.Flags().Bool("schema-only", false, "only create or migrate the schema at --to")
	cmd.Flags().Bool("json", false, "print the summary as JSON")
	cmd.RunE = caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
		return runMigrate(cmd.OutOrStdout(), migrateFlags{
			from:       fl.String("from"),
			fromAnyLLM: fl.String("from-anyllm"),
			to:         fl.String("to"),
			schemaOnly: fl.Bool("schema-only"),
			json:       fl.Bool("json"),
		})
	})
	return cmd
}

type migrateFlags struct {
	from, fromAnyLLM, to string
	schemaOnly, json     bool
}

// runMigrate runs the copy the flags describe and prints its summary to
// out. It returns the exit code and the error to show, which never holds
// a database password.
func runMigrate(out io.Writer, f migrateFlags) (int, error) {
	if f.to == "" {
		f.to = os.Getenv("GATEWAY_DATABASE_URL")
	}
	sources := 0
	for _, given := range []bool{f.from != "", f.fromAnyLLM != "", f.schemaOnly} {
		if given {
			sources++
		}
	}
	switch {
	case sources != 1:
		return exitMigrateUsage, errors.New("migrate: give exactly one of --from <storage_path>, --from-anyllm <postgres url> and --schema-only")
	case f.to == "":
		return exitMigrateUsage, errors.New("migrate: no destination: give --to <database_url> or set GATEWAY_DATABASE_URL")
	}
	var src *storage.Store
	if f.from != "" {
		// The source first: a missing or busy store touches no database.
		var err error
		if src, err = transfer.OpenBadger(f.from); err != nil {
			return migrateExitCode(err), fmt.Errorf("migrate: %w", err)
		}
		defer src.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dst, err := postgres.Open(ctx, postgres.Options{URL: f.to})
	if err != nil {
		return migrateExitCode(err), fmt.Errorf("migrate: destination %s: %w", postgres.RedactURL(f.to), err)
	}
	defer dst.Close()
	if f.schemaOnly {
		return writeSchemaSummary(out, f.json, postgres.RedactURL(f.to))
	}

	var counts transfer.Counts
	source := f.from
	if src != nil {
		counts, err = transfer.FromBadger(src, dst)
	} else {
		source = postgres.RedactURL(f.fromAnyLLM)
		counts, err = transfer.FromAnyLLM(ctx, f.fromAnyLLM, dst)
	}
	if err != nil {
		return migrateExitCode(err), fmt.Errorf("migrate: copying from %s: %w (copied before the failure: %s)", source, err, countsLine(counts))
	}
	return writeMigrateSummary(out, f.json, source, postgres.RedactURL(f.to), counts)
}

// migrateExitCode is the exit code for a failed migration.
func migrateExitCode(err error) int {
	switch {
	case errors.Is(err, transfer.ErrSourceMissing):
		return exitMigrateNoSource
	case errors.Is(err, transfer.ErrSourceLocked):
		return exitMigrateLocked
	case postgres.IsUnavailable(err):
		return exitMigrateUnreachable
	}
	return 1
}

func writeMigrateSummary(out io.Writer, asJSON bool, from, to string, c transfer.Counts) (int, error) {
	var err error
	if asJSON {
		err = json.NewEncoder(out).Encode(map[string]any{"from": from, "to": to, "copied": c})
	} else {
		_, err = fmt.Fprintf(out, "Copied from %s to %s:\n  %s\n", from, to, countsLine(c))
	}
	if err != nil {
		return 1, fmt.Errorf("migrate: writing the summary: %w", err)
	}
	return 0, nil
}

// writeSchemaSummary reports a --schema-only run: Open migrated the schema.
func writeSchemaSummary(out io.Writer, asJSON bool, to string) (int, error) {
	var err error
	if asJSON {
		err = json.NewEncoder(out).Encode(map[string]any{"to": to, "schema": "up to date"})
	} else {
		_, err = fmt.Fprintf(out, "The schema of %s is up to date.\n", to)
	}
	if err != nil {
		return 1, fmt.Errorf("migrate: writing the summary: %w", err)
	}
	return 0, nil
}

func countsLine(c transfer.Counts) string {
	return fmt.Sprintf("%d users, %d keys, %d budgets, %d prices, %d spend periods, %d usage records",
		c.Users, c.Keys, c.Budgets, c.Prices, c.Spend, c.Usage)
}
