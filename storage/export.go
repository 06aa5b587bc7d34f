package storage

import (
	"bytes"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// OwnedSpend is one spend counter with its owner, as Export hands it out.
type OwnedSpend struct {
	Owner SpendOwner
	ID    string
	SpendPeriod
}

// Exporter receives everything a store holds, kind by kind, from Export.
// A nil function skips its kind.
type Exporter struct {
	Budget func(*Budget) error
	User   func(*User) error // soft-deleted users too
	Key    func(*APIKey) error
	Price  func(*Price) error
	Spend  func(OwnedSpend) error
	Usage  func(*UsageRecord) error // oldest first
	// Summary receives the usage summaries, which also count records no
	// longer stored (deleted by retention).
	Summary func(*SummaryRow) error
}

// Export hands every record of the store to e, in an order in which each
// refers only to records handed out before it: budgets, users, keys,
// prices, spend counters, usage records and usage summaries. It is meant
// for copying a store into another (caddy llm-gateway migrate); each kind
// is read in one transaction of its own. An error from e stops it and is returned as is.
func (s *Store) Export(e Exporter) error {
	steps := []struct {
		prefix string
		fn     func(*badger.Item) error
	}{
		{prefixBudget, exportJSON(e.Budget)},
		{prefixUser, exportJSON(e.User)},
		{prefixKey, exportJSON(e.Key)},
		{prefixPrice, exportJSON(e.Price)},
		{prefixSpend, exportSpend(e.Spend)},
		{prefixUsageTime, exportJSON(e.Usage)},
		{prefixSummary, exportSummary(e.Summary)},
	}
	for _, step := range steps {
		if step.fn == nil {
			continue
		}
		err := s.view(func(txn *badger.Txn) error {
			opts := badger.DefaultIteratorOptions
			opts.Prefix = []byte(step.prefix)
			it := txn.NewIterator(opts)
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				if err := step.fn(it.Item()); err != nil {
					return err
				}
			}
			return nil
		})
		if ce := asCallbackError(err); ce != nil {
			return ce.err
		}
		if err != nil {
			return fmt.Errorf("exporting %s records: %w", step.prefix, err)
		}
	}
	return nil
}

// exportJSON decodes each item as a T for fn (nil: nil).
func exportJSON[T any](fn func(*T) error) func(*badger.Item) error {
	if fn == nil {
		return nil
	}
	return func(item *badger.Item) error {
		var v T
		if err := decodeItem(item, &v); err != nil {
			return err
		}
		if err := fn(&v); err != nil {
			return &callbackError{err: err}
		}
		return nil
	}
}

// zeroPeriodNanos is what the zero time's counter key holds (spendKey of a
// zero start): UnixNano of the zero time, which wraps around.
var zeroPeriodNanos = time.Time{}.UnixNano()

// exportSpend decodes each spend counter, spend/<owner>/<id> 0x00 <ts>.
func exportSpend(fn func(OwnedSpend) error) func(*badger.Item) error {
	if fn == nil {
		return nil
	}
	return func(item *badger.Item) error {
		key := item.Key()
		rest := key[len(prefixSpend):]
		sep := len(rest) - timestampKeySize - len(indexSeparator)
		if len(rest) < 2 || rest[1] != '/' || sep < 2 || !bytes.Equal(rest[sep:sep+len(indexSeparator)], []byte(indexSeparator)) {
			return fmt.Errorf("malformed spend key %q", key)
		}
		spend, err := itemSpend(item)
		if err != nil {
			return err
		}
		start := time.Unix(0, timestampAt(rest[sep+len(indexSeparator):])).UTC()
		if start.UnixNano() == zeroPeriodNanos {
			start = time.Time{} // the period of an account without a budget schedule
		}
		rec := OwnedSpend{Owner: SpendOwner(rest[0]), ID: string(rest[2:sep]), SpendPeriod: SpendPeriod{Start: start, Spend: spend}}
		if err := fn(rec); err != nil {
			return &callbackError{err: err}
		}
		return nil
	}
}
