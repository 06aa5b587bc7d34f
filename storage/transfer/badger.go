// Package transfer copies a gateway's state into PostgreSQL: from an
// embedded (Badger) store, or from an any-llm-gateway database. It is what
// `caddy llm-gateway migrate` runs. Copies are idempotent: a record already
// in the destination is skipped, so a second run copies nothing.
package transfer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmgateway/caddy-llm-gateway/storage"
	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
)

// Errors of OpenBadger. Callers test them with errors.Is.
var (
	// ErrSourceMissing means there is no store at the source path.
	ErrSourceMissing = errors.New("no embedded store there")
	// ErrSourceLocked means another process (a running Caddy) has the
	// store open.
	ErrSourceLocked = errors.New("the store is in use by another process (stop the Caddy that runs on it first)")
)

// batchSize is how many records one transaction of the destination takes.
const batchSize = 500

// Counts are the records of each kind a copy inserted.
type Counts = postgres.ImportCounts

// OpenBadger opens the embedded store at dir for copying, failing with
// ErrSourceMissing when dir holds no store (rather than creating one) and
// with ErrSourceLocked when a running Caddy holds it.
func OpenBadger(dir string) (*storage.Store, error) {
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("opening %s: %w", dir, ErrSourceMissing)
		}
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	st, err := storage.Open(storage.Options{Dir: dir})
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("opening %s: %w", dir, ErrSourceLocked)
		}
		return nil, err
	}
	return st, nil
}

// FromBadger copies everything src holds into dst as it is: users (soft
// deleted ones too), keys with their hashes, budgets, prices, spend
// periods, usage records and usage summaries. Spend periods and summaries
// are copied, not derived again from the usage records, so spend and the
// summaries are what they were (summaries count records deleted since).
func FromBadger(src *storage.Store, dst *postgres.Store) (Counts, error) {
	w := &writer{dst: dst, carriesSummaries: true}
	err := src.Export(storage.Exporter{
		Budget: func(b *storage.Budget) error { w.im.Budgets = append(w.im.Budgets, *b); return w.flushFull() },
		User:   func(u *storage.User) error { w.im.Users = append(w.im.Users, *u); return w.flushFull() },
		Key:    func(k *storage.APIKey) error { w.im.Keys = append(w.im.Keys, *k); return w.flushFull() },
		Price:  func(p *storage.Price) error { w.im.Prices = append(w.im.Prices, *p); return w.flushFull() },
		Spend:  func(sp storage.OwnedSpend) error { w.im.Spend = append(w.im.Spend, sp); return w.flushFull() },
		Usage:  func(r *storage.UsageRecord) error { w.im.Usage = append(w.im.Usage, *r); return w.flushFull() },
		// The summaries are copied too: they count records the store no
		// longer holds, so the records must not add to them again.
		Summary: func(r *storage.SummaryRow) error { w.im.Summaries = append(w.im.Summaries, *r); return w.flushFull() },
	})
	if err == nil {
		err = w.flush()
	}
	return w.counts, err
}

// writer imports records into dst in batches. A batch holds records of
// every kind not yet written, and Import writes them in reference order,
// so a key is never written before its user.
type writer struct {
	dst    *postgres.Store
	im     postgres.Import
	counts Counts
	// carriesSummaries marks every batch as copying the source's usage
	// summaries (see postgres.Import.CarriesSummaries).
	carriesSummaries bool
}

func (w *writer) flushFull() error {
	if w.im.Len() < batchSize {
		return nil
	}
	return w.flush()
}

func (w *writer) flush() error {
	w.im.CarriesSummaries = w.carriesSummaries
	n, err := w.dst.Import(w.im)
	if err != nil {
		return err
	}
	w.counts.Add(n)
	w.im = postgres.Import{}
	return nil
}
