package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Wrap turns a command's run function into a cobra RunE. The root package
// passes one that goes through Caddy's command API, which exits with the
// code run returns.
type Wrap func(run func(fl *pflag.FlagSet) int) func(*cobra.Command, []string) error

// env is what one run of a command has: its flags, arguments, output and
// a client of the gateway.
type env struct {
	fl     *pflag.FlagSet
	args   []string
	out    io.Writer
	asJSON bool
	client *Client
}

// action is the body of one command.
type action func(ctx context.Context, e *env) error

// leaf is one command below a group: its usage, its arguments (names of
// the required positional arguments), its own flags and what it does.
type leaf struct {
	use   string
	short string
	args  []string
	flags func(fs *pflag.FlagSet)
	run   action
}

// Commands returns the admin command groups (users, keys, budgets,
// pricing, usage), each leaf run through wrap.
func Commands(wrap Wrap) []*cobra.Command {
	return []*cobra.Command{
		group("users", "Lists, creates, updates, blocks and deletes users", wrap, userLeaves()),
		group("keys", "Lists, creates, deactivates, rotates and deletes virtual keys", wrap, keyLeaves()),
		group("budgets", "Lists, creates and deletes budgets", wrap, budgetLeaves()),
		group("pricing", "Lists, sets and deletes model prices", wrap, priceLeaves()),
		usageCommand(wrap),
	}
}

// exitCodesHelp ends every command's help.
const exitCodesHelp = `
The gateway is the one at --url (default ` + DefaultURL + `); the master key is read
from $` + MasterKeyEnv + ` only. Output is a table, or with --json the gateway's JSON.

Exit codes: 0 done, 1 unexpected failure or a flag the parser refused, 2 bad
arguments, 3 not found, 4 ` + MasterKeyEnv + ` unset or refused, 5 the gateway does
not answer, 6 the gateway refused the request (the message says why).
`

func addCommonFlags(fs *pflag.FlagSet) {
	fs.String("url", DefaultURL, "the gateway's base URL")
	fs.Bool("json", false, "print the gateway's JSON instead of a table")
}

func group(name, short string, wrap Wrap, leaves []leaf) *cobra.Command {
	cmd := &cobra.Command{Use: name, Short: short, Long: short + ".\n" + exitCodesHelp}
	for _, l := range leaves {
		cmd.AddCommand(leafCommand(l, wrap))
	}
	return cmd
}

func leafCommand(l leaf, wrap Wrap) *cobra.Command {
	use := l.use
	for _, a := range l.args {
		use += " <" + a + ">"
	}
	// runLeaf prints its own failures, once; cobra's "Error: exiting with
	// status N" would only repeat them.
	cmd := &cobra.Command{Use: use, Short: l.short, Long: l.short + ".\n" + exitCodesHelp, Args: cobra.ArbitraryArgs,
		SilenceErrors: true, SilenceUsage: true}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		fmt.Fprintf(c.ErrOrStderr(), "%s: %v; see --help\n", c.CommandPath(), err)
		return err
	})
	addCommonFlags(cmd.Flags())
	if l.flags != nil {
		l.flags(cmd.Flags())
	}
	cmd.RunE = wrap(func(fl *pflag.FlagSet) int {
		return runLeaf(cmd, l, fl)
	})
	return cmd
}

// runLeaf runs one command and prints its failure, returning its exit code.
func runLeaf(cmd *cobra.Command, l leaf, fl *pflag.FlagSet) int {
	err := func() error {
		args := fl.Args()
		if len(args) != len(l.args) {
			want := "no arguments"
			if len(l.args) > 0 {
				want = "<" + strings.Join(l.args, "> <") + ">"
			}
			return fail(ExitUsage, "expected %s, got %d argument(s); see --help", want, len(args))
		}
		rawURL, _ := fl.GetString("url")
		asJSON, _ := fl.GetBool("json")
		client, err := NewClient(rawURL, os.Getenv(MasterKeyEnv))
		if err != nil {
			return err
		}
		e := &env{fl: fl, args: args, out: cmd.OutOrStdout(), asJSON: asJSON, client: client}
		return l.run(context.Background(), e)
	}()
	if err == nil {
		return ExitOK
	}
	code := ExitFailed
	if ce, ok := err.(*Error); ok {
		code = ce.Code
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", cmd.CommandPath(), err)
	return code
}

// do calls the gateway and prints the answer: the JSON as it is with
// --json, else through show.
func (e *env) do(ctx context.Context, method, path string, query url.Values, body any, show func([]byte) error) error {
	data, err := e.client.Do(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	if e.asJSON {
		if len(data) == 0 {
			return nil
		}
		return writeJSON(e.out, data)
	}
	return show(data)
}

// deleted is the table output of a DELETE.
func (e *env) deleted(what, id string) func([]byte) error {
	return func([]byte) error {
		_, err := fmt.Fprintf(e.out, "Deleted %s %s.\n", what, id)
		return err
	}
}

// flag readers: a value given on the command line, or nil when absent.

func optString(fs *pflag.FlagSet, name string) *string {
	if !fs.Changed(name) {
		return nil
	}
	v, _ := fs.GetString(name)
	return &v
}

func optBool(fs *pflag.FlagSet, name string) *bool {
	if !fs.Changed(name) {
		return nil
	}
	v, _ := fs.GetBool(name)
	return &v
}

func optInt(fs *pflag.FlagSet, name string) *int64 {
	if !fs.Changed(name) {
		return nil
	}
	v, _ := fs.GetInt64(name)
	return &v
}

// optNumber reads a decimal amount (USD) as a JSON number, exactly as
// given, so the gateway rounds it and not a float here.
func optNumber(fs *pflag.FlagSet, name string) (*json.Number, error) {
	if !fs.Changed(name) {
		return nil, nil
	}
	v, _ := fs.GetString(name)
	if _, err := strconv.ParseFloat(v, 64); err != nil || strings.ContainsAny(v, "xXpP_") {
		return nil, fail(ExitUsage, "--%s %q is not a number", name, v)
	}
	n := json.Number(v)
	return &n, nil
}

// page adds --skip and --limit and reads them into the query.
func pageFlags(fs *pflag.FlagSet) {
	fs.Int("skip", 0, "entries to skip")
	fs.Int("limit", 100, "entries to list (1..1000)")
}

func pageQuery(fs *pflag.FlagSet) url.Values {
	skip, _ := fs.GetInt("skip")
	limit, _ := fs.GetInt("limit")
	return url.Values{"skip": {strconv.Itoa(skip)}, "limit": {strconv.Itoa(limit)}}
}

// --- users --------------------------------------------------------------

var userColumns = []string{"user_id", "alias", "spend", "budget_id", "blocked", "next_budget_reset_at", "created_at"}

func userLeaves() []leaf {
	userFlags := func(fs *pflag.FlagSet) {
		fs.String("alias", "", "a display name")
		fs.String("budget-id", "", "the budget the user is on")
		fs.Bool("blocked", false, "refuse the user's requests")
	}
	userBody := func(fs *pflag.FlagSet) map[string]any {
		body := map[string]any{}
		if v := optString(fs, "alias"); v != nil {
			body["alias"] = *v
		}
		if v := optString(fs, "budget-id"); v != nil {
			body["budget_id"] = *v
		}
		if v := optBool(fs, "blocked"); v != nil {
			body["blocked"] = *v
		}
		return body
	}
	setBlocked := func(blocked bool) action {
		return func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodPatch, "/v1/users/"+escapeID(e.args[0], false), nil,
				map[string]any{"blocked": blocked}, e.showObject(userColumns))
		}
	}
	return []leaf{
		{use: "list", short: "Lists users", flags: pageFlags, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodGet, "/v1/users", pageQuery(e.fl), nil, e.showList(userColumns, "No users. Create one with: users create <user_id>"))
		}},
		{use: "get", short: "Shows a user", args: []string{"user_id"}, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodGet, "/v1/users/"+escapeID(e.args[0], false), nil, nil, e.showObject(userColumns))
		}},
		{use: "create", short: "Creates a user", args: []string{"user_id"}, flags: userFlags, run: func(ctx context.Context, e *env) error {
			body := userBody(e.fl)
			body["user_id"] = e.args[0]
			return e.do(ctx, http.MethodPost, "/v1/users", nil, body, e.showObject(userColumns))
		}},
		{use: "update", short: "Changes a user's alias, budget or blocked state (only the flags given)", args: []string{"user_id"}, flags: userFlags, run: func(ctx context.Context, e *env) error {
			body := userBody(e.fl)
			if len(body) == 0 {
				return fail(ExitUsage, "nothing to change: give --alias, --budget-id or --blocked")
			}
			return e.do(ctx, http.MethodPatch, "/v1/users/"+escapeID(e.args[0], false), nil, body, e.showObject(userColumns))
		}},
		{use: "block", short: "Blocks a user: their requests are refused", args: []string{"user_id"}, run: setBlocked(true)},
		{use: "unblock", short: "Unblocks a user", args: []string{"user_id"}, run: setBlocked(false)},
		{use: "delete", short: "Deletes a user (their keys stop working; usage history is kept)", args: []string{"user_id"}, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodDelete, "/v1/users/"+escapeID(e.args[0], false), nil, nil, e.deleted("user", e.args[0]))
		}},
	}
}

// --- keys ---------------------------------------------------------------

var keyColumns = []string{"id", "key_name", "user_id", "key_prefix", "is_active", "spend", "max_budget", "expires_at", "last_used_at"}

func keyLeaves() []leaf {
	setActive := func(active bool) action {
		return func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodPatch, "/v1/keys/"+escapeID(e.args[0], false), nil,
				map[string]any{"is_active": active}, e.showObject(keyColumns))
		}
	}
	return []leaf{
		{use: "list", short: "Lists virtual keys (never their secrets)", flags: pageFlags, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodGet, "/v1/keys", pageQuery(e.fl), nil, e.showList(keyColumns, "No keys. Create one with: keys create --user <user_id>"))
		}},
		{use: "get", short: "Shows a key", args: []string{"id"}, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodGet, "/v1/keys/"+escapeID(e.args[0], false), nil, nil, e.showObject(keyColumns))
		}},
		{use: "create", short: "Creates a key and prints its secret, once", flags: func(fs *pflag.FlagSet) {
			fs.String("name", "", "the key's name")
			fs.String("user", "", "the user it bills (created when unknown; default: a user of its own)")
			fs.String("expires-at", "", "expiry, ISO 8601")
			fs.StringSlice("allowed-models", nil, "models it may use, provider:model or provider:* (comma-separated; default all)")
			fs.String("max-budget", "", "the key's own budget, USD")
			fs.Int64("budget-duration-sec", 0, "the key budget's period, seconds")
			fs.Int64("rpm-limit", 0, "requests per minute")
			fs.Int64("tpm-limit", 0, "tokens per minute")
		}, run: func(ctx context.Context, e *env) error {
			body := map[string]any{}
			for flag, field := range map[string]string{"name": "key_name", "user": "user_id", "expires-at": "expires_at"} {
				if v := optString(e.fl, flag); v != nil {
					body[field] = *v
				}
			}
			if e.fl.Changed("allowed-models") {
				models, _ := e.fl.GetStringSlice("allowed-models")
				body["allowed_models"] = models
			}
			maxBudget, err := optNumber(e.fl, "max-budget")
			if err != nil {
				return err
			}
			if maxBudget != nil {
				body["max_budget"] = maxBudget
			}
			for flag, field := range map[string]string{"budget-duration-sec": "budget_duration_sec", "rpm-limit": "rpm_limit", "tpm-limit": "tpm_limit"} {
				if v := optInt(e.fl, flag); v != nil {
					body[field] = *v
				}
			}
			return e.do(ctx, http.MethodPost, "/v1/keys", nil, body, e.showSecret("The key is shown this once: store it now."))
		}},
		{use: "deactivate", short: "Deactivates a key: it stops working at once", args: []string{"id"}, run: setActive(false)},
		{use: "activate", short: "Activates a deactivated key", args: []string{"id"}, run: setActive(true)},
		{use: "rotate", short: "Gives a key a new secret (printed once); the old one stops working at once", args: []string{"id"}, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodPost, "/v1/keys/"+escapeID(e.args[0], false)+"/rotate", nil, nil, e.showSecret("The new key is shown this once: store it now."))
		}},
		{use: "delete", short: "Deletes a key", args: []string{"id"}, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodDelete, "/v1/keys/"+escapeID(e.args[0], false), nil, nil, e.deleted("key", e.args[0]))
		}},
	}
}

// showSecret prints a key answer with its secret, and the note that it
// is shown once.
func (e *env) showSecret(note string) func([]byte) error {
	return func(data []byte) error {
		if err := e.showObject(append([]string{"key"}, keyColumns...))(data); err != nil {
			return err
		}
		_, err := fmt.Fprintln(e.out, "\n"+note)
		return err
	}
}

// --- budgets ------------------------------------------------------------

var budgetColumns = []string{"budget_id", "max_budget", "budget_duration_sec", "created_at", "updated_at"}

func budgetLeaves() []leaf {
	return []leaf{
		{use: "list", short: "Lists budgets", flags: pageFlags, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodGet, "/v1/budgets", pageQuery(e.fl), nil, e.showList(budgetColumns, "No budgets. Create one with: budgets create --max-budget <usd>"))
		}},
		{use: "get", short: "Shows a budget", args: []string{"budget_id"}, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodGet, "/v1/budgets/"+escapeID(e.args[0], false), nil, nil, e.showObject(budgetColumns))
		}},
		{use: "create", short: "Creates a budget (a template: each user on it has their own spend)", flags: func(fs *pflag.FlagSet) {
			fs.String("max-budget", "", "the limit, USD")
			fs.Int64("duration-sec", 0, "the period after which spend resets, seconds")
		}, run: func(ctx context.Context, e *env) error {
			body := map[string]any{}
			maxBudget, err := optNumber(e.fl, "max-budget")
			if err != nil {
				return err
			}
			if maxBudget != nil {
				body["max_budget"] = maxBudget
			}
			if v := optInt(e.fl, "duration-sec"); v != nil {
				body["budget_duration_sec"] = *v
			}
			return e.do(ctx, http.MethodPost, "/v1/budgets", nil, body, e.showObject(budgetColumns))
		}},
		{use: "delete", short: "Deletes a budget (users on it lose it)", args: []string{"budget_id"}, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodDelete, "/v1/budgets/"+escapeID(e.args[0], false), nil, nil, e.deleted("budget", e.args[0]))
		}},
	}
}

// --- pricing ------------------------------------------------------------

var priceColumns = []string{"model_key", "input_price_per_million", "output_price_per_million", "source", "updated_at"}

func priceLeaves() []leaf {
	return []leaf{
		{use: "list", short: "Lists model prices (USD per million tokens)", flags: pageFlags, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodGet, "/v1/pricing", pageQuery(e.fl), nil, e.showList(priceColumns, "No prices. Set one with: pricing set <provider:model> <input> <output>"))
		}},
		{use: "get", short: "Shows a model's price", args: []string{"provider:model"}, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodGet, "/v1/pricing/"+escapeID(e.args[0], true), nil, nil, e.showObject(priceColumns))
		}},
		{use: "set", short: "Sets a model's price, USD per million input and output tokens", args: []string{"provider:model", "input", "output"}, run: func(ctx context.Context, e *env) error {
			body := map[string]any{"model_key": e.args[0]}
			for i, field := range []string{"input_price_per_million", "output_price_per_million"} {
				v := e.args[1+i]
				if _, err := strconv.ParseFloat(v, 64); err != nil || strings.ContainsAny(v, "xXpP_") {
					return fail(ExitUsage, "%s price %q is not a number", strings.TrimSuffix(field, "_price_per_million"), v)
				}
				body[field] = json.Number(v)
			}
			return e.do(ctx, http.MethodPost, "/v1/pricing", nil, body, e.showObject(priceColumns))
		}},
		{use: "delete", short: "Deletes a model's price", args: []string{"provider:model"}, run: func(ctx context.Context, e *env) error {
			return e.do(ctx, http.MethodDelete, "/v1/pricing/"+escapeID(e.args[0], true), nil, nil, e.deleted("price of", e.args[0]))
		}},
	}
}

// --- usage --------------------------------------------------------------

var summaryColumns = []string{"bucket", "group", "requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost"}

func usageCommand(wrap Wrap) *cobra.Command {
	l := leaf{use: "usage", short: "Shows usage totals per day (or hour, month) and group, from GET /v1/usage/summary", flags: func(fs *pflag.FlagSet) {
		fs.String("group-by", "", "model, provider, user_id, api_key_id or end_user (default: one group)")
		fs.String("interval", "day", "hour, day or month (UTC)")
		fs.String("start", "", "from, ISO 8601 or Unix seconds")
		fs.String("end", "", "until, ISO 8601 or Unix seconds")
		fs.String("user", "", "only this user's usage")
		fs.String("key", "", "only this key's usage (its id)")
		fs.String("model", "", "only this model (name or provider:model)")
		fs.String("end-user", "", "only this end user's usage")
	}, run: func(ctx context.Context, e *env) error {
		q := url.Values{}
		for flag, param := range map[string]string{
			"group-by": "group_by", "interval": "interval", "start": "start_date", "end": "end_date",
			"user": "user_id", "key": "api_key_id", "model": "model", "end-user": "end_user",
		} {
			if v, _ := e.fl.GetString(flag); v != "" {
				q.Set(param, v)
			}
		}
		return e.do(ctx, http.MethodGet, "/v1/usage/summary", q, nil, e.showSummary)
	}}
	cmd := leafCommand(l, wrap)
	cmd.Long = l.short + `.

  caddy llm-gateway usage --group-by model --start 2026-11-01
  caddy llm-gateway usage --interval month --group-by user_id --json
` + exitCodesHelp
	return cmd
}
