package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// GetSpend returns what owner id spent in the budget period starting at
// start: the sum of the costs of the records charged to that period. A
// period nothing was charged to has spent 0.
func (s *Store) GetSpend(owner SpendOwner, id string, start time.Time) (Money, error) {
	var spend Money
	err := s.view(func(txn *badger.Txn) (err error) {
		spend, err = readSpend(txn, spendKey(owner, id, start))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("loading spend of %c/%s: %w", owner, id, err)
	}
	return spend, nil
}

// ListSpendPeriods returns the periods owner id was charged in, newest
// first, at most limit of them.
func (s *Store) ListSpendPeriods(owner SpendOwner, id string, limit int) ([]SpendPeriod, error) {
	periods := []SpendPeriod{}
	prefix := spendPrefix(owner, id)
	err := s.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		opts.Reverse = true
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(prefixEnd(prefix)); it.ValidForPrefix(prefix) && len(periods) < limit; it.Next() {
			item := it.Item()
			suffix := item.Key()[len(prefix):]
			if len(suffix) != timestampKeySize {
				return fmt.Errorf("malformed spend key %q", item.Key())
			}
			spend, err := itemSpend(item)
			if err != nil {
				return err
			}
			periods = append(periods, SpendPeriod{Start: time.Unix(0, timestampAt(suffix)).UTC(), Spend: spend})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing spend periods of %c/%s: %w", owner, id, err)
	}
	return periods, nil
}

// readSpend reads the counter under key; a missing counter is 0.
func readSpend(txn *badger.Txn, key []byte) (Money, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return itemSpend(item)
}

// itemSpend decodes the spend counter held by item.
func itemSpend(item *badger.Item) (Money, error) {
	var spend Money
	err := item.Value(func(v []byte) (err error) {
		spend, err = decodeSpend(v)
		return err
	})
	return spend, err
}

// encodeSpend encodes a spend counter: nano-dollars as 8 big-endian bytes
// (format version 2; version 1 stored float64 dollars, see migrate.go).
func encodeSpend(spend Money) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(spend))
	return b
}

func decodeSpend(v []byte) (Money, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("malformed spend counter of %d bytes", len(v))
	}
	return Money(binary.BigEndian.Uint64(v)), nil
}

// deletePrefix deletes every key under prefix in txn.
func deletePrefix(txn *badger.Txn, prefix []byte) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
