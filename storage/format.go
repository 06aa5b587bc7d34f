package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// FormatVersion is the version of the key layout and value encodings this
// package writes. The store records it under formatKey; Open refuses a
// version it does not know and migrates older ones.
//
//	1  spend counters are float64 dollars; no version recorded
//	2  spend counters and money fields are exact nano-dollars (Money)
//	3  an index of active users and an index of usage records by model
const FormatVersion = 3

var (
	// formatKey holds the store's format version as decimal ASCII.
	formatKey = []byte("format-version")
	// migrationKey holds the last key the version 1 migration converted
	// (see migrationStep.progress).
	migrationKey = []byte("format-migration")
)

// ErrUnknownFormat means the store was written in a format this build does
// not know, by a newer gateway.
var ErrUnknownFormat = errors.New("unknown store format")

// migrationBatch is how many entries one migration transaction handles.
const migrationBatch = 1000

// migrationStep rewrites or indexes every entry under prefix, in batches.
// Each batch records the last key it handled under progress, so a
// migration cut by a crash resumes where it stopped instead of converting
// an entry twice; a finished step records "done".
type migrationStep struct {
	progress []byte
	prefix   []byte
	apply    func(txn *badger.Txn, key, value []byte) error
}

// migrations lists, for each old version, the steps that bring a store
// of that version to the next one.
var migrations = map[int][]migrationStep{
	1: {{progress: migrationKey, prefix: []byte(prefixSpend), apply: spendToMoney}},
	2: {
		{progress: []byte("format-migration/3-users"), prefix: []byte(prefixUser), apply: indexActiveUser},
		{progress: []byte("format-migration/3-models"), prefix: []byte(prefixUsageTime), apply: indexUsageModel},
	},
}

var migrationDone = []byte("done")

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
	for v := version; v < FormatVersion; v++ {
		if err := migrate(db, v); err != nil {
			return fmt.Errorf("migrating store from format version %d to %d: %w", v, v+1, err)
		}
	}
	return nil
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

// migrate runs the steps from version to version+1, then records the new
// version and drops the steps' progress in one transaction.
func migrate(db *badger.DB, version int) error {
	steps := migrations[version]
	for _, step := range steps {
		if err := runStep(db, step); err != nil {
			return err
		}
	}
	return db.Update(func(txn *badger.Txn) error {
		for _, step := range steps {
			if err := txn.Delete(step.progress); err != nil {
				return err
			}
		}
		return txn.Set(formatKey, []byte(strconv.Itoa(version+1)))
	})
}

// runStep applies step to every entry under its prefix, in batches.
func runStep(db *badger.DB, step migrationStep) error {
	for {
		done := false
		err := db.Update(func(txn *badger.Txn) error {
			start := step.prefix
			if item, err := txn.Get(step.progress); err == nil {
				last, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				if bytes.Equal(last, migrationDone) {
					done = true
					return nil
				}
				start = append(last, 0) // the smallest key after last
			} else if !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}

			opts := badger.DefaultIteratorOptions
			opts.Prefix = step.prefix
			it := txn.NewIterator(opts)
			type entry struct{ key, value []byte }
			var batch []entry
			for it.Seek(start); it.ValidForPrefix(step.prefix) && len(batch) < migrationBatch; it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				batch = append(batch, entry{it.Item().KeyCopy(nil), v})
			}
			it.Close()

			for _, e := range batch {
				if err := step.apply(txn, e.key, e.value); err != nil {
					return fmt.Errorf("%q: %w", e.key, err)
				}
			}
			if len(batch) == migrationBatch {
				return txn.Set(step.progress, batch[len(batch)-1].key)
			}
			done = true
			return txn.Set(step.progress, migrationDone)
		})
		if err != nil || done {
			return err
		}
	}
}

// spendToMoney converts a format 1 spend counter, float64 dollars, to
// Money rounded to the nearest nano-dollar. Money fields in JSON values
// (costs, max_budget) need no rewrite: Money decodes the numbers format 1
// wrote.
func spendToMoney(txn *badger.Txn, key, value []byte) error {
	if len(value) != 8 {
		return fmt.Errorf("malformed spend counter of %d bytes", len(value))
	}
	spend := Dollars(math.Float64frombits(binary.BigEndian.Uint64(value)))
	return txn.Set(key, encodeSpend(spend))
}

// indexActiveUser adds a user that is not deleted to the active index.
func indexActiveUser(txn *badger.Txn, key, value []byte) error {
	var u struct {
		DeletedAt *time.Time `json:"deleted_at"`
	}
	if err := json.Unmarshal(value, &u); err != nil {
		return err
	}
	if u.DeletedAt != nil {
		return nil
	}
	return txn.Set(activeUserKey(string(key[len(prefixUser):])), []byte{})
}

// indexUsageModel adds a usage record to the model index.
func indexUsageModel(txn *badger.Txn, key, value []byte) error {
	var rec struct {
		Model string `json:"model"`
	}
	if err := json.Unmarshal(value, &rec); err != nil {
		return err
	}
	if !validID(rec.Model) {
		return nil // no model, or one that cannot be indexed: never filtered for
	}
	return txn.Set(concat(usageModelPrefix(rec.Model), key[len(prefixUsageTime):]), []byte{})
}
