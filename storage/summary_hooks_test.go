package storage

import "github.com/dgraph-io/badger/v4"

// DropUsageRecords deletes every usage record and index entry, as
// retention does to old ones, for the tests of package storage_test.
func DropUsageRecords(s *Store) error {
	return s.update(func(txn *badger.Txn) error {
		for _, p := range []string{prefixUsageTime, prefixUsageUser, prefixUsageKey, prefixUsageModel} {
			if err := deletePrefix(txn, []byte(p)); err != nil {
				return err
			}
		}
		return nil
	})
}
