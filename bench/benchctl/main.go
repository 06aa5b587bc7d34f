// Command benchctl holds the small steps of bench/run.sh that would
// otherwise need curl and jq: waiting for readiness, creating the bench
// budget, user and virtual key through the admin API, a smoke test, and
// turning the loadgen JSON files into the Markdown report.
//
//	benchctl wait   -url URL [-since UNIX_NANOS] [-timeout 60s]
//	benchctl setup  -url BASE -master KEY [-user ID] [-max-budget USD]
//	benchctl check  -url URL -key KEY -body-file FILE [-stream]
//	benchctl count  -url URL -key KEY
//	benchctl report -dir ROWS -out FILE -command CMD [...]
//	benchctl scale-report -dir DIR -out FILE -command CMD
//	benchctl fsync  -dir DIR [-n 1000]
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "wait":
		err = cmdWait(args)
	case "setup":
		err = cmdSetup(args)
	case "check":
		err = cmdCheck(args)
	case "count":
		err = cmdCount(args)
	case "report":
		err = cmdReport(args)
	case "scale-report":
		err = cmdScaleReport(args)
	case "fsync":
		err = cmdFsync(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchctl %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchctl wait|setup|check|count|report|scale-report|fsync [flags]")
	os.Exit(2)
}

var client = &http.Client{Timeout: 30 * time.Second}

// cmdWait polls URL until it answers 200 and prints the milliseconds since
// -since (Unix nanoseconds; default: when benchctl started).
func cmdWait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	url := fs.String("url", "", "URL that answers 200 when ready")
	since := fs.Int64("since", 0, "start time in Unix nanoseconds (date +%s%N)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	_ = fs.Parse(args)
	start := time.Now()
	if *since > 0 {
		start = time.Unix(0, *since)
	}
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(*timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.Get(*url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Printf("%.1f\n", float64(time.Since(start).Microseconds())/1000)
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s (last: %s)", *url, *timeout, last)
}

// send sends req and reads the whole answer.
func send(req *http.Request) (*http.Response, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp, raw, err
}

// call sends a JSON request with the master key and decodes the answer.
func call(method, url, key string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("X-AnyLLM-Key", "Bearer "+key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, raw, err := send(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decoding %s: %w", method, url, raw, err)
		}
	}
	return nil
}

// cmdSetup creates a budget, a user on it and a virtual key for the user,
// as documented in README.md and API.md, and prints the key's secret.
func cmdSetup(args []string) error {
	fs := flag.NewFlagSet("setup", flag.ExitOnError)
	base := fs.String("url", "", "gateway base URL, e.g. http://127.0.0.1:18402")
	master := fs.String("master", "", "master key")
	user := fs.String("user", "bench-user", "user id")
	maxBudget := fs.Float64("max-budget", 1e9, "budget in USD")
	_ = fs.Parse(args)
	if *base == "" || *master == "" {
		return errors.New("-url and -master are required")
	}
	b := strings.TrimSuffix(*base, "/")

	var budget struct {
		BudgetID string `json:"budget_id"`
	}
	if err := call(http.MethodPost, b+"/v1/budgets", *master,
		map[string]any{"max_budget": *maxBudget}, &budget); err != nil {
		return err
	}
	if err := call(http.MethodPost, b+"/v1/users", *master,
		map[string]any{"user_id": *user, "alias": "Benchmark", "budget_id": budget.BudgetID}, nil); err != nil {
		return err
	}
	var key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if err := call(http.MethodPost, b+"/v1/keys", *master,
		map[string]any{"key_name": "bench", "user_id": *user}, &key); err != nil {
		return err
	}
	if !strings.HasPrefix(key.Key, "gw-") {
		return fmt.Errorf("POST /v1/keys returned no key: %+v", key)
	}
	fmt.Fprintf(os.Stderr, "benchctl setup: budget %s (max %g USD), user %s, key %s\n", budget.BudgetID, *maxBudget, *user, key.ID)
	fmt.Println(key.Key)
	return nil
}

// cmdCheck sends one inference request and fails, printing the answer,
// unless it is a 200 (for a stream: one that ends with [DONE]).
func cmdCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	url := fs.String("url", "", "inference URL")
	key := fs.String("key", "", "bearer token (Authorization header)")
	bodyFile := fs.String("body-file", "", "request body")
	stream := fs.Bool("stream", false, "expect an SSE stream ending with [DONE]")
	_ = fs.Parse(args)
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, *url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if *key != "" {
		req.Header.Set("Authorization", "Bearer "+*key)
	}
	resp, raw, err := send(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || (*stream && !bytes.Contains(raw, []byte("data: [DONE]"))) {
		return fmt.Errorf("POST %s: %s (X-Request-Id %s): %s", *url, resp.Status,
			resp.Header.Get("X-Request-Id"), truncate(raw, 2000))
	}
	return nil
}

// cmdCount GETs a JSON array with the master key and prints its length.
func cmdCount(args []string) error {
	fs := flag.NewFlagSet("count", flag.ExitOnError)
	url := fs.String("url", "", "URL answering a JSON array")
	key := fs.String("key", "", "master key")
	_ = fs.Parse(args)
	var items []json.RawMessage
	if err := call(http.MethodGet, *url, *key, nil, &items); err != nil {
		return err
	}
	fmt.Println(len(items))
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
