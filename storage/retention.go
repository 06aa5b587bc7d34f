package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
)

const (
	// retentionBatch is the most records one deletion transaction removes:
	// small, so that it never holds Badger's write path for long.
	retentionBatch = 256
	// retentionPause is the wait between two full batches, which leaves
	// the write path to the requests.
	retentionPause = 20 * time.Millisecond
	// retentionInterval is how often the store looks for expired records
	// once it has caught up.
	retentionInterval = time.Minute
)

// usageIndexFields are the fields of a stored record that name its index
// entries.
type usageIndexFields struct {
	UserID   string `json:"user_id"`
	APIKeyID string `json:"api_key_id"`
	Model    string `json:"model"`
}

// DeleteUsageBefore deletes at most limit usage records timestamped before
// cutoff, oldest first, with their index entries, in one transaction, and
// returns how many it deleted. Spend counters (and every other total kept
// beside the records) are not touched: what a record charged stays
// charged.
func (s *Store) DeleteUsageBefore(cutoff time.Time, limit int) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.deleteUsageBefore(cutoff, limit)
}

// deleteUsageBefore is DeleteUsageBefore for callers that keep the database
// open: the background loop, which Close waits for.
func (s *Store) deleteUsageBefore(cutoff time.Time, limit int) (int, error) {
	n := 0
	err := s.updateOpen(func(txn *badger.Txn) error {
		doomed, count, err := expiredUsage(txn, cutoff, limit)
		if err != nil {
			return err
		}
		n = count
		for _, k := range doomed {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("deleting usage records before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	if s.syncer != nil && n > 0 {
		s.syncer.wrote(false)
	}
	return n, nil
}

// expiredUsage returns the keys of at most limit records timestamped
// before cutoff, oldest first, and of their index entries, and how many
// records they are.
func expiredUsage(txn *badger.Txn, cutoff time.Time, limit int) ([][]byte, int, error) {
	prefix := []byte(prefixUsageTime)
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	defer it.Close()
	end := timestampBound(prefix, cutoff.UnixNano())
	var doomed [][]byte
	n := 0
	for it.Rewind(); it.Valid() && n < limit; it.Next() {
		item := it.Item()
		if bytes.Compare(item.Key(), end) >= 0 {
			break
		}
		key := item.KeyCopy(nil)
		suffix := key[len(prefix):]
		if len(suffix) <= timestampKeySize {
			return nil, 0, fmt.Errorf("malformed usage key %q", key)
		}
		var f usageIndexFields
		if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &f) }); err != nil {
			return nil, 0, fmt.Errorf("decoding usage record %q: %w", suffix[timestampKeySize:], err)
		}
		doomed = append(doomed, key)
		if f.UserID != "" {
			doomed = append(doomed, concat(usageUserPrefix(f.UserID), suffix))
		}
		if f.APIKeyID != "" {
			doomed = append(doomed, concat(usageKeyPrefix(f.APIKeyID), suffix))
		}
		if validID(f.Model) {
			doomed = append(doomed, concat(usageModelPrefix(f.Model), suffix))
		}
		n++
	}
	return doomed, n, nil
}

// SetUsageRetention makes the store delete, in the background, the usage
// records older than retention; zero (the default) keeps them all.
func (s *Store) SetUsageRetention(retention time.Duration) {
	s.retention.Store(int64(max(retention, 0)))
	select {
	case s.retentionWake <- struct{}{}:
	default:
	}
}

// expireUsage is the background loop of SetUsageRetention: it deletes
// expired records in small batches with a pause between them, so that the
// request path never waits long behind it, then sleeps until the next
// check, until Close.
func (s *Store) expireUsage(now func() time.Time) {
	timer := time.NewTimer(retentionInterval)
	defer timer.Stop()
	for {
		wait := retentionInterval
		if retention := time.Duration(s.retention.Load()); retention > 0 {
			n, err := s.deleteUsageBefore(now().Add(-retention), retentionBatch)
			switch {
			case err != nil:
				s.logger.Warn("deleting expired usage records failed", zap.Error(err))
			case n == retentionBatch:
				wait = retentionPause // more to delete
			}
		}
		timer.Reset(wait)
		select {
		case <-s.stopBackground:
			return
		case <-s.retentionWake:
		case <-timer.C:
		}
	}
}
