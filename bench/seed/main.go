// Command seed fills a fresh gateway store with users, virtual keys and
// usage records for the scale benchmark, as fast as the store allows: it
// calls the storage package directly (not the HTTP API) from many
// goroutines, so Badger commits many keys per fsync and the usage writer
// fills its group commits.
//
//	seed -dir bench/.run/scale-store -users 1000 -keys 100000 -records 1000000
//
// Key k belongs to user k mod users, and record r to key r mod keys, so every
// user has keys/users keys and records/users records, spread evenly over the
// last -days days. The summary (JSON on stdout) names a sample user for
// usage queries.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

type summary struct {
	Dir            string  `json:"dir"`
	Users          int     `json:"users"`
	Keys           int     `json:"keys"`
	Records        int     `json:"records"`
	UsersSeconds   float64 `json:"users_seconds"`
	KeysSeconds    float64 `json:"keys_seconds"`
	RecordsSeconds float64 `json:"records_seconds"`
	CloseSeconds   float64 `json:"close_seconds"`
	KeysPerSec     float64 `json:"keys_per_second"`
	RecordsPerSec  float64 `json:"records_per_second"`
	SampleUser     string  `json:"sample_user"`
	RecordsPerUser int     `json:"records_per_user"`
	DiskBytes      int64   `json:"disk_bytes"`
}

func main() {
	dir := flag.String("dir", "", "storage directory; must not exist yet or be empty (required)")
	users := flag.Int("users", 1000, "users")
	keys := flag.Int("keys", 100_000, "virtual keys")
	records := flag.Int("records", 1_000_000, "usage records")
	workers := flag.Int("workers", 512, "concurrent writers")
	days := flag.Int("days", 30, "records are spread over this many past days")
	provider := flag.String("provider", "mock", "provider of the records")
	model := flag.String("model", "bench", "model of the records")
	flag.Parse()

	if *dir == "" || *users < 1 || *keys < 1 || *records < 0 || *workers < 1 || *days < 1 {
		fmt.Fprintln(os.Stderr, "seed: -dir is required; -users, -keys, -workers, -days >= 1; -records >= 0")
		os.Exit(2)
	}
	if entries, err := os.ReadDir(*dir); err == nil && len(entries) > 0 {
		fmt.Fprintf(os.Stderr, "seed: %s is not empty; the scale run wants a fresh store\n", *dir)
		os.Exit(2)
	}

	st, err := storage.Open(storage.Options{Dir: *dir})
	if err != nil {
		fatal(err)
	}
	sum := summary{Dir: *dir, Users: *users, Keys: *keys, Records: *records}
	now := time.Now().UTC()

	// Users.
	t := time.Now()
	parallel(*users, *workers, "users", func(i int) error {
		alias := fmt.Sprintf("Seed user %d", i)
		return st.CreateUser(&storage.User{UserID: userID(i), Alias: &alias, CreatedAt: now, UpdatedAt: now})
	})
	sum.UsersSeconds = time.Since(t).Seconds()

	// Keys: random secrets as the gateway makes them; only hashes are kept.
	keyIDs := make([]string, *keys)
	t = time.Now()
	parallel(*keys, *workers, "keys", func(i int) error {
		var raw [48]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return err
		}
		secret := "gw-" + base64.RawURLEncoding.EncodeToString(raw[:])
		hash := sha256.Sum256([]byte(secret))
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("seed-%d", i)
		k := &storage.APIKey{
			ID:        id.String(),
			KeyHash:   hex.EncodeToString(hash[:]),
			KeyPrefix: secret[:8],
			KeyName:   &name,
			UserID:    userID(i % *users),
			CreatedAt: now,
			IsActive:  true,
		}
		keyIDs[i] = k.ID
		return st.CreateKey(k, nil)
	})
	sum.KeysSeconds = time.Since(t).Seconds()
	sum.KeysPerSec = float64(*keys) / sum.KeysSeconds

	// Usage records, oldest first, evenly over the period.
	const promptTokens, completionTokens = 12, 250
	cost := storage.TokenCost(promptTokens, completionTokens, 0.15, 0.60)
	span := time.Duration(*days) * 24 * time.Hour
	step := time.Duration(0)
	if *records > 0 {
		step = span / time.Duration(*records)
	}
	begin := now.Add(-span)
	t = time.Now()
	parallel(*records, *workers, "records", func(i int) error {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		k := i % *keys
		rec := &storage.UsageRecord{
			ID:               id.String(),
			RequestID:        id.String(),
			UserID:           userID(k % *users),
			APIKeyID:         keyIDs[k],
			Timestamp:        begin.Add(time.Duration(i) * step),
			Model:            *model,
			Provider:         *provider,
			Endpoint:         "/v1/chat/completions",
			PromptTokens:     promptTokens,
			CompletionTokens: completionTokens,
			TotalTokens:      promptTokens + completionTokens,
			Cost:             cost,
			Status:           "success",
			StatusCode:       200,
			LatencyMS:        42,
			UsageSource:      "provider",
		}
		return st.RecordUsage(context.Background(), rec)
	})
	sum.RecordsSeconds = time.Since(t).Seconds()
	if sum.RecordsSeconds > 0 {
		sum.RecordsPerSec = float64(*records) / sum.RecordsSeconds
	}

	t = time.Now()
	if err := st.Close(); err != nil {
		fatal(err)
	}
	sum.CloseSeconds = time.Since(t).Seconds()
	sum.SampleUser = userID(0)
	sum.RecordsPerUser = *records / *users
	sum.DiskBytes = duBytes(*dir)

	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(sum)
}

func userID(i int) string { return fmt.Sprintf("seed-user-%05d", i) }

// parallel runs fn(0..n-1) on workers goroutines, printing progress to
// stderr about once a second, and exits on the first error.
func parallel(n, workers int, what string, fn func(i int) error) {
	var (
		next  atomic.Int64
		done  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				fmt.Fprintf(os.Stderr, "seed: %s %d/%d\n", what, done.Load(), n)
			}
		}
	}()
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = fmt.Errorf("%s %d: %w", what, i, err) })
					next.Store(int64(n)) // stop the others
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if first != nil {
		fatal(first)
	}
	fmt.Fprintf(os.Stderr, "seed: %s %d/%d done\n", what, done.Load(), n)
}

func duBytes(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || info.IsDir() {
			continue
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512 // allocated, not apparent: vlog files are preallocated
		} else {
			total += info.Size()
		}
	}
	return total
}

func fatal(err error) {
	if errors.Is(err, storage.ErrClosed) {
		err = fmt.Errorf("%w (store closed early)", err)
	}
	fmt.Fprintf(os.Stderr, "seed: %v\n", err)
	os.Exit(1)
}
