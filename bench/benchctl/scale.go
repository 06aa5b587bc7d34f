package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

type seedSummary struct {
	Users          int     `json:"users"`
	Keys           int     `json:"keys"`
	Records        int     `json:"records"`
	KeysSeconds    float64 `json:"keys_seconds"`
	RecordsSeconds float64 `json:"records_seconds"`
	KeysPerSec     float64 `json:"keys_per_second"`
	RecordsPerSec  float64 `json:"records_per_second"`
	RecordsPerUser int     `json:"records_per_user"`
	DiskBytes      int64   `json:"disk_bytes"`
}

func readNumber(path string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	return v
}

func cmdScaleReport(args []string) error {
	fs := flag.NewFlagSet("scale-report", flag.ExitOnError)
	dir := fs.String("dir", "", "the scale run directory")
	out := fs.String("out", "", "Markdown file to write (also printed)")
	command := fs.String("command", "", "the exact command")
	goVersion := fs.String("go", runtime.Version(), "go version line")
	commit := fs.String("commit", "", "git describe --dirty of the measured tree")
	concurrency := fs.String("concurrency", "64", "concurrency of the load rows")
	user := fs.String("user", "", "the user whose usage was listed")
	modeList := fs.String("modes", "nonstream stream", "load modes run")
	settings := fs.String("settings", "", "one line describing the load")
	_ = fs.Parse(args)

	var seed seedSummary
	raw, err := os.ReadFile(filepath.Join(*dir, "seed.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &seed); err != nil {
		return fmt.Errorf("seed.json: %w", err)
	}
	rows := filepath.Join(*dir, "rows")

	var b strings.Builder
	reportHeader(&b, "Gateway scale benchmark", *command, *commit, *goVersion)

	fmt.Fprintf(&b, "Store: %d users, %d virtual keys, %d usage records (%d per user, over 30 days), written with `bench/seed` "+
		"through the storage package: keys in %.1f s (%.0f/s), records in %.1f s (%.0f/s). On disk: %.0f MB.\n\n",
		seed.Users, seed.Keys, seed.Records, seed.RecordsPerUser, seed.KeysSeconds, seed.KeysPerSec,
		seed.RecordsSeconds, seed.RecordsPerSec, readNumber(filepath.Join(*dir, "store_kb"))/1024)
	if *settings != "" {
		fmt.Fprintf(&b, "Load: %s\n\n", *settings)
	}

	startup := readNumber(filepath.Join(*dir, "startup_ms"))
	readyRSS := readNumber(filepath.Join(*dir, "ready_rss_kb")) / 1024
	readyAnon := readNumber(filepath.Join(*dir, "ready_anon_kb")) / 1024
	endRSS := readNumber(filepath.Join(*dir, "end_rss_kb")) / 1024
	endAnon := readNumber(filepath.Join(*dir, "end_anon_kb")) / 1024
	b.WriteString("| measure | value | target | |\n|---|---:|---|---|\n")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	fmt.Fprintf(&b, "| start-up (launch to first 200 of /health/readiness) | %.0f ms | ≤ 2 s | %s |\n", startup, verdict(startup <= 2000))
	fmt.Fprintf(&b, "| RSS when ready | %.1f MB (anon %.1f MB) | | |\n", readyRSS, readyAnon)

	for _, m := range strings.Fields(*modeList) {
		r, err := readRow(rows, fmt.Sprintf("%s-c%s-c", m, *concurrency))
		if err != nil {
			return err
		}
		if r == nil {
			continue
		}
		name := "non-stream"
		if m == "stream" {
			name = "stream"
		}
		fmt.Fprintf(&b, "| (c) %s, concurrency %s: req/s · p50 · p99 · errors | %.0f · %.3f ms · %.3f ms · %d | | |\n",
			name, *concurrency, r.res.RPS, r.res.Latency.P50, r.res.Latency.P99, r.res.Errors)
		// Issue #15's targets: the heap (anonymous memory) ≤ 100 MB and
		// the whole RSS, mapped store files included, ≤ 200 MB.
		fmt.Fprintf(&b, "| heap during that load (largest RssAnon sampled) | %.1f MB | ≤ 100 MB | %s |\n",
			float64(r.anonKB)/1024, verdict(r.anonKB > 0 && r.anonKB <= 100*1024))
		fmt.Fprintf(&b, "| peak RSS during that load (%s) | %.1f MB | ≤ 200 MB | %s |\n",
			orDash(r.rssHow), float64(r.rssKB)/1024, verdict(r.rssKB > 0 && r.rssKB <= 200*1024))
	}
	fmt.Fprintf(&b, "| RSS at the end | %.1f MB (anon %.1f MB) | | |\n", endRSS, endAnon)
	count := readNumber(filepath.Join(*dir, "usage_count"))
	for _, u := range []struct{ file, what string }{
		{"usage-idle.json", "idle"},
		{"usage-load.json", "during non-stream load at concurrency " + *concurrency},
	} {
		r, err := readRow(rows, strings.TrimSuffix(u.file, ".json"))
		if err != nil {
			return err
		}
		if r == nil {
			continue
		}
		l := r.res.Latency
		fmt.Fprintf(&b, "| `GET /v1/usage?user_id=%s&limit=100` (%.0f records returned), %s: p50 · p99 over %d requests | %.3f ms · %.3f ms | ≤ 10 ms (judged on p50) | %s |\n",
			*user, count, u.what, l.Count, l.P50, l.P99, verdict(l.P50 <= 10 && r.res.Errors == 0))
		if r.res.Errors > 0 {
			fmt.Fprintf(&b, "| … errors | %d (%v) | | |\n", r.res.Errors, r.res.ErrorSamples)
		}
	}
	if r, err := readRow(rows, "summary-idle"); err != nil {
		return err
	} else if r != nil {
		l := r.res.Latency
		fmt.Fprintf(&b, "| `GET /v1/usage/summary?interval=day&group_by=model` over the 30 days of records, idle: p50 · p99 over %d requests | %.3f ms · %.3f ms | ≤ 20 ms (judged on p50) | %s |\n",
			l.Count, l.P50, l.P99, verdict(l.P50 <= 20 && r.res.Errors == 0))
	}
	b.WriteString("\n")

	return publish(*out, b.String())
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
