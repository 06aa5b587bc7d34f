package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/dgraph-io/badger/v4"
)

// FormatVersion is the version of the key layout and value encodings this
// package writes. The store records it under formatKey; Open refuses a
// version it does not know and migrates older ones.
//
//	1  spend counters are float64 dollars; no version recorded
//	2  spend counters and money fields are exact nano-dollars (Money)
const FormatVersion = 2

var (
	// formatKey holds the store's format version as decimal ASCII.
	formatKey = []byte("format-version")
	// migrationKey holds the last key a running migration converted, so
	// that a migration cut by a crash resumes where it stopped instead of
	// converting a counter twice.
	migrationKey = []byte("format-migration")
)

// ErrUnknownFormat means the store was written in a format this build does
// not know, by a newer gateway.
var ErrUnknownFormat = errors.New("unknown store format")

// migrationBatch is how many counters one migration transaction converts.
const migrationBatch = 1000

// checkFormat reads the store's format version, records it in a new
// store, migrates an older one and refuses a newer one.
func checkFormat(db *badger.DB) error {
	version, err := readFormat(db)
	if err != nil {
		return err
	}
	switch {
	case version == FormatVersion:
		return nil
	case version > FormatVersion:
		return fmt.Errorf("%w: the store has format version %d, but this gateway reads versions up to %d; "+
			"run the gateway version that wrote it (or a newer one), or restore a backup made before the upgrade",
			ErrUnknownFormat, version, FormatVersion)
	case version == 0:
		return db.Update(func(txn *badger.Txn) error {
			return txn.Set(formatKey, []byte(strconv.Itoa(FormatVersion)))
		})
	}
	return migrateFrom1(db)
}

// readFormat returns the recorded version; 1 for a store with data but no
// version (written before versions were recorded), 0 for an empty store.
func readFormat(db *badger.DB) (int, error) {
	var version int
	err := db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(formatKey)
		if err == nil {
			return item.Value(func(v []byte) error {
				n, err := strconv.Atoi(string(v))
				if err != nil || n < 1 {
					return fmt.Errorf("%w: the store's format version %.16q is not a version number", ErrUnknownFormat, v)
				}
				version = n
				return nil
			})
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Rewind()
		if it.Valid() {
			version = 1
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reading store format version: %w", err)
	}
	return version, nil
}

// migrateFrom1 converts format 1 to 2: every spend counter from float64
// dollars to Money, rounded to the nearest nano-dollar. Money fields in
// JSON values (costs, max_budget) need no rewrite: Money decodes the
// numbers format 1 wrote. Counters are converted in batches, each batch
// committing the last key it converted; the version is written last.
func migrateFrom1(db *badger.DB) error {
	prefix := []byte(prefixSpend)
	for {
		done := false
		err := db.Update(func(txn *badger.Txn) error {
			start := prefix
			if item, err := txn.Get(migrationKey); err == nil {
				last, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				start = append(last, 0) // the smallest key after last
			} else if !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}

			opts := badger.DefaultIteratorOptions
			opts.Prefix = prefix
			it := txn.NewIterator(opts)
			type counter struct{ key, value []byte }
			var batch []counter
			for it.Seek(start); it.ValidForPrefix(prefix) && len(batch) < migrationBatch; it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				if len(v) != 8 {
					it.Close()
					return fmt.Errorf("malformed spend counter %q of %d bytes", it.Item().Key(), len(v))
				}
				spend := Dollars(math.Float64frombits(binary.BigEndian.Uint64(v)))
				batch = append(batch, counter{it.Item().KeyCopy(nil), encodeSpend(spend)})
			}
			it.Close()

			for _, c := range batch {
				if err := txn.Set(c.key, c.value); err != nil {
					return err
				}
			}
			if len(batch) == migrationBatch {
				return txn.Set(migrationKey, batch[len(batch)-1].key)
			}
			done = true
			if err := txn.Delete(migrationKey); err != nil {
				return err
			}
			return txn.Set(formatKey, []byte(strconv.Itoa(FormatVersion)))
		})
		if err != nil {
			return fmt.Errorf("migrating store from format version 1 to %d: %w", FormatVersion, err)
		}
		if done {
			return nil
		}
	}
}
