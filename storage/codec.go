package storage

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// getJSON decodes the value stored under key into v. It returns ErrNotFound
// when the key is absent. The value is decoded inside the item callback, so
// v never aliases Badger's memory.
func getJSON(txn *badger.Txn, key []byte, v any) error {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return decodeItem(item, v)
}

// decodeItem decodes the JSON value of item into v.
func decodeItem(item *badger.Item, v any) error {
	return item.Value(func(val []byte) error {
		if err := json.Unmarshal(val, v); err != nil {
			return fmt.Errorf("decoding %q: %w", item.Key(), err)
		}
		return nil
	})
}

// putJSON stores the JSON encoding of v under key.
func putJSON(txn *badger.Txn, key []byte, v any) error {
	val, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %q: %w", key, err)
	}
	return txn.Set(key, val)
}

// touch rewrites the value under key unchanged. A transaction that read
// key and commits after this one then conflicts and is retried: touch
// makes a write depend on a record it only checked.
func touch(txn *badger.Txn, key []byte) error {
	item, err := txn.Get(key)
	if err != nil {
		return err
	}
	val, err := item.ValueCopy(nil)
	if err != nil {
		return err
	}
	return txn.Set(key, val)
}

// exists reports whether key is present.
func exists(txn *badger.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	default:
		return false, err
	}
}

// listPage decodes the values under prefix in key order, skipping the first
// skip entries without reading their values and stopping after limit. The
// result is never nil, so it encodes as an empty JSON array.
func listPage[T any](txn *badger.Txn, prefix []byte, skip, limit int) ([]T, error) {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false // skipped entries need no value
	it := txn.NewIterator(opts)
	defer it.Close()

	out := []T{}
	for it.Rewind(); it.Valid() && len(out) < limit; it.Next() {
		if skip > 0 {
			skip--
			continue
		}
		var v T
		if err := decodeItem(it.Item(), &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// callbackError marks an error returned by a caller's update function so
// that it can be handed back unchanged rather than wrapped with context.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

// asCallbackError returns the callbackError in err's chain, or nil.
func asCallbackError(err error) *callbackError {
	var ce *callbackError
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}
