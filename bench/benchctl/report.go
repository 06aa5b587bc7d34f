package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// loadResult is the part of loadgen's JSON output the report uses.
type loadResult struct {
	Concurrency  int              `json:"concurrency"`
	Seconds      float64          `json:"seconds"`
	Requests     int64            `json:"requests"`
	Errors       int64            `json:"errors"`
	ErrorKinds   map[string]int64 `json:"error_kinds"`
	ErrorSamples []string         `json:"error_samples"`
	RPS          float64          `json:"rps"`
	CPUPerReqUS  float64          `json:"server_cpu_us_per_request"`
	AllocsPerReq float64          `json:"server_allocs_per_request"`
	CPUSeconds   float64          `json:"server_cpu_seconds"`
	Latency      latency          `json:"latency"`
	TTFB         *latency         `json:"ttfb"`
}

type latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// row is one loadgen run and the peak RSS of caddy during it (0: unknown
// or not applicable).
type row struct {
	res    *loadResult
	rssKB  int64
	rssHow string
	anonKB int64 // largest RssAnon sampled
}

// readRow reads NAME.json and NAME.rss ("<kB> <method>") from dir; nil when
// the row was not run.
func readRow(dir, name string) (*row, error) {
	raw, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r := &row{res: &loadResult{}}
	if err := json.Unmarshal(raw, r.res); err != nil {
		return nil, fmt.Errorf("%s.json: %w", name, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, name+".rss")); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 0 {
			r.rssKB, _ = strconv.ParseInt(f[0], 10, 64)
		}
		if len(f) > 1 {
			r.rssHow = f[1]
		}
		if len(f) > 2 {
			r.anonKB, _ = strconv.ParseInt(f[2], 10, 64)
		}
	}
	return r, nil
}

var targets = []struct{ id, name string }{
	{"a", "(a) mock direct"},
	{"b", "(b) caddy reverse_proxy"},
	{"c", "(c) llm_gateway"},
	{"d", "(d) llm_gateway, durability fsync"},
}

var modes = []struct{ id, name string }{
	{"nonstream", "non-stream"},
	{"stream", "stream"},
}

func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	dir := fs.String("dir", "", "directory of the row files")
	out := fs.String("out", "", "Markdown file to write (also printed)")
	command := fs.String("command", "", "the exact command that produced the run")
	goVersion := fs.String("go", runtime.Version(), "go version line")
	commit := fs.String("commit", "", "git describe --dirty of the measured tree")
	concurrency := fs.String("concurrency", "1 16 64 256", "concurrency levels, in order")
	settings := fs.String("settings", "", "one line describing the load (duration, body, response size)")
	readyRSS := fs.Int64("ready-rss", 0, "caddy's RSS in kB when it became ready")
	readyAnon := fs.Int64("ready-anon", 0, "caddy's anonymous RSS in kB when it became ready")
	startup := fs.String("startup", "", "caddy's start-up time in ms")
	_ = fs.Parse(args)

	var b strings.Builder
	reportHeader(&b, "Gateway benchmark", *command, *commit, *goVersion)
	if *settings != "" {
		fmt.Fprintf(&b, "Load: %s\n\n", *settings)
	}
	if *readyRSS > 0 {
		fmt.Fprintf(&b, "One caddy process serves (b) and (c); it was ready %s ms after launch with an RSS of %.1f MB, %.1f MB of it anonymous (empty store).\n\n",
			*startup, float64(*readyRSS)/1024, float64(*readyAnon)/1024)
	}

	b.WriteString("| mode | conc. | target | req/s | p50 ms | p90 ms | p99 ms | +p50 vs (a) ms | +p50 vs (b) ms | TTFB p50 ms | caddy CPU µs/req | caddy allocs/req | peak RSS MB (anon) | errors |\n")
	b.WriteString("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	rows := map[string]*row{}
	var samples []string
	for _, m := range modes {
		for _, c := range strings.Fields(*concurrency) {
			for _, t := range targets {
				name := fmt.Sprintf("%s-c%s-%s", m.id, c, t.id)
				r, err := readRow(*dir, name)
				if err != nil {
					return err
				}
				if r == nil {
					continue
				}
				rows[name] = r
				a := rows[fmt.Sprintf("%s-c%s-a", m.id, c)]
				bb := rows[fmt.Sprintf("%s-c%s-b", m.id, c)]
				l := r.res.Latency
				vsA, vsB := "—", "—"
				if t.id != "a" && a != nil && a.res.Requests > 0 && r.res.Requests > 0 {
					vsA = signed(l.P50 - a.res.Latency.P50)
				}
				if (t.id == "c" || t.id == "d") && bb != nil && bb.res.Requests > 0 && r.res.Requests > 0 {
					vsB = signed(l.P50 - bb.res.Latency.P50)
				}
				ttfb := "—"
				if r.res.TTFB != nil && r.res.TTFB.Count > 0 {
					ttfb = fmt.Sprintf("%.3f", r.res.TTFB.P50)
				}
				cpu := "—"
				if r.res.CPUPerReqUS > 0 && t.id != "a" {
					cpu = fmt.Sprintf("%.0f", r.res.CPUPerReqUS)
				}
				allocs := "—"
				if r.res.AllocsPerReq > 0 && t.id != "a" {
					allocs = fmt.Sprintf("%.0f", r.res.AllocsPerReq)
				}
				rss := "—"
				if r.rssKB > 0 && t.id != "a" {
					rss = fmt.Sprintf("%.0f (%.0f)", float64(r.rssKB)/1024, float64(r.anonKB)/1024)
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.3f | %.3f | %.3f | %s | %s | %s | %s | %s | %s | %d |\n",
					m.name, c, t.name, r.res.RPS, l.P50, l.P90, l.P99, vsA, vsB, ttfb, cpu, allocs, rss, r.res.Errors)
				for k, v := range r.res.ErrorKinds {
					samples = append(samples, fmt.Sprintf("- %s c=%s %s: %d × %s", m.name, c, t.name, v, k))
				}
				for _, s := range r.res.ErrorSamples {
					samples = append(samples, fmt.Sprintf("  - e.g. `%s`", strings.ReplaceAll(truncate([]byte(s), 300), "`", "'")))
				}
			}
		}
	}
	b.WriteString("\n")
	if len(samples) > 0 {
		b.WriteString("Errors:\n\n")
		b.WriteString(strings.Join(samples, "\n"))
		b.WriteString("\n\n")
	}
	fsync := readFsync(*dir)
	if fsync != nil {
		fmt.Fprintf(&b, "fsync on the store's file system (`benchctl fsync`: 512 bytes written into a preallocated file, then fdatasync, as the store syncs its log; 2,000 before the rows and 2,000 after, averaged): p50 %.3f ms, p90 %.3f ms, p99 %.3f ms.\n\n",
			fsync.P50, fsync.P90, fsync.P99)
	}
	targetsSection(&b, rows, fsync)

	return publish(*out, b.String())
}

// targetsSection compares the run with the performance targets.
func targetsSection(b *strings.Builder, rows map[string]*row, fsync *fsyncResult) {
	type check struct {
		what, value string
		ok          bool
		known       bool
	}
	var checks []check
	get := func(name string) *loadResult {
		if r := rows[name]; r != nil && r.res.Requests > 0 {
			return r.res
		}
		return nil
	}
	if b64, c64 := get("nonstream-c64-b"), get("nonstream-c64-c"); b64 != nil && c64 != nil {
		ratio := c64.RPS / b64.RPS
		checks = append(checks, check{"throughput (c) / (b), non-stream, concurrency 64 (target ≥ 0.90)",
			fmt.Sprintf("%.2f (%.0f / %.0f req/s)", ratio, c64.RPS, b64.RPS), ratio >= 0.90, true})
	}
	if b1, c1 := get("nonstream-c1-b"), get("nonstream-c1-c"); b1 != nil && c1 != nil {
		d := c1.Latency.P50 - b1.Latency.P50
		checks = append(checks, check{"added p50 of (c) over (b), non-stream, concurrency 1, durability os (target ≤ 0.2 ms)",
			fmt.Sprintf("%.3f ms", d), d <= 0.2, true})
	}
	if b1, d1 := get("nonstream-c1-b"), get("nonstream-c1-d"); b1 != nil && d1 != nil && fsync != nil {
		d := d1.Latency.P50 - b1.Latency.P50
		checks = append(checks, check{"added p50 of (d) over (b), non-stream, concurrency 1, durability fsync (target ≤ 0.2 ms + one fsync p50)",
			fmt.Sprintf("%.3f ms (0.2 + %.3f = %.3f ms allowed)", d, fsync.P50, 0.2+fsync.P50), d <= 0.2+fsync.P50, true})
	}
	if b64, d64 := get("nonstream-c64-b"), get("nonstream-c64-d"); b64 != nil && d64 != nil {
		checks = append(checks, check{"throughput (d) / (b), non-stream, concurrency 64 (for reference)",
			fmt.Sprintf("%.2f (%.0f / %.0f req/s)", d64.RPS/b64.RPS, d64.RPS, b64.RPS), true, false})
	}
	for _, c := range []string{"1", "64"} {
		bs, cs := get("stream-c"+c+"-b"), get("stream-c"+c+"-c")
		if bs != nil && cs != nil && bs.TTFB != nil && cs.TTFB != nil {
			d := cs.TTFB.P50 - bs.TTFB.P50
			checks = append(checks, check{"stream TTFB p50 of (c) − (b), concurrency " + c + " (target ≤ 1 ms)",
				fmt.Sprintf("%.3f ms", d), d <= 1, true})
		}
	}
	var peak int64
	for name, r := range rows {
		if !strings.HasSuffix(name, "-a") && r.rssKB > peak {
			peak = r.rssKB
		}
	}
	if peak > 0 {
		checks = append(checks, check{"peak RSS of caddy over the run (for reference; the 100 MB target is for the scale run)",
			fmt.Sprintf("%.1f MB", float64(peak)/1024), true, false})
	}
	if len(checks) == 0 {
		return
	}
	b.WriteString("Against the performance targets (this run):\n\n| target | measured | |\n|---|---|---|\n")
	for _, c := range checks {
		mark := ""
		if c.known {
			mark = "met"
			if !c.ok {
				mark = "**missed**"
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", c.what, c.value, mark)
	}
	b.WriteString("\n")
}

// fsyncResult is benchctl fsync's output.
type fsyncResult struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
}

// readFsync reads fsync.json and fsync-after.json from dir and returns
// their figures averaged (nil when neither is there).
func readFsync(dir string) *fsyncResult {
	var sum fsyncResult
	n := 0
	for _, name := range []string{"fsync.json", "fsync-after.json"} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		var r fsyncResult
		if json.Unmarshal(raw, &r) != nil || r.Count == 0 {
			continue
		}
		sum.Count += r.Count
		sum.P50 += r.P50
		sum.P90 += r.P90
		sum.P99 += r.P99
		n++
	}
	if n == 0 {
		return nil
	}
	return &fsyncResult{Count: sum.Count, P50: sum.P50 / float64(n), P90: sum.P90 / float64(n), P99: sum.P99 / float64(n)}
}

func signed(v float64) string {
	if math.Abs(v) < 0.0005 {
		return "0.000"
	}
	return fmt.Sprintf("%+.3f", v)
}

// reportHeader writes a report's title and what every report says first:
// when it ran, the command, the tree measured and the machine.
func reportHeader(b *strings.Builder, title, command, commit, goVersion string) {
	fmt.Fprintf(b, "# %s\n\n", title)
	fmt.Fprintf(b, "Run %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(b, "Command (from the repository root):\n\n```sh\n%s\n```\n\n", command)
	if commit != "" {
		fmt.Fprintf(b, "Tree: `%s` (`git describe --always --dirty`).\n\n", commit)
	}
	machine(b, goVersion)
}

// machine describes the host from /proc.
func machine(b *strings.Builder, goVersion string) {
	cpu := "unknown"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	kernel := "unknown"
	if v, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(v))
	}
	mem := "unknown"
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
					mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
				break
			}
		}
		f.Close()
	}
	fmt.Fprintf(b, "Machine: %d CPUs (nproc), %s, %s RAM, Linux %s, %s.\n\n",
		runtime.NumCPU(), cpu, mem, kernel, strings.TrimSpace(goVersion))
}

// publish prints a report and, when path is set, writes it there.
func publish(path, report string) error {
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			return err
		}
	}
	fmt.Print(report)
	return nil
}
