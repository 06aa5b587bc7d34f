package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// RecordUsage durably stores rec and, in the same transaction, adds
// rec.Cost to the spend of rec.UserID in period rec.UserPeriod and to that
// of rec.APIKeyID in period rec.KeyPeriod, each if the id is set. A record
// with zero cost is stored all the same.
//
// Records are committed in batches by a single writer goroutine; RecordUsage
// returns once the batch holding rec is committed (in the operating system)
// and, with DurabilityFsync, synced to disk; with DurabilityOS the sync
// follows within Options.SyncInterval. It returns early with an
// error when ctx is done or the store is closed; when ctx ends after rec was
// queued, rec may still be committed. rec.ID and rec.Timestamp must be set;
// a record stored again under the same ID and Timestamp replaces the
// earlier one but its cost is added again.
func (s *Store) RecordUsage(ctx context.Context, rec *UsageRecord) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("recording usage %s: %w", rec.ID, err)
	}
	req, err := newUsageRequest(rec)
	if err != nil {
		return fmt.Errorf("recording usage %s: %w", rec.ID, err)
	}
	if err := s.enqueueUsage(ctx, req); err != nil {
		return fmt.Errorf("recording usage %s: %w", rec.ID, err)
	}
	select {
	case err := <-req.done:
		if err != nil {
			return fmt.Errorf("recording usage %s: %w", rec.ID, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("recording usage %s: %w", rec.ID, ctx.Err())
	}
}

// newUsageRequest validates rec and encodes it for the writer.
func newUsageRequest(rec *UsageRecord) (*usageRequest, error) {
	switch {
	case rec.ID == "":
		return nil, errors.New("empty record id")
	case rec.Timestamp.IsZero():
		return nil, errors.New("zero timestamp")
	case rec.Cost < 0:
		return nil, fmt.Errorf("negative cost %s", rec.Cost)
	case strings.Contains(rec.UserID, indexSeparator):
		return nil, fmt.Errorf("invalid user id %q", rec.UserID)
	case strings.Contains(rec.APIKeyID, indexSeparator):
		return nil, fmt.Errorf("invalid key id %q", rec.APIKeyID)
	}
	value, err := appendUsageRecord(make([]byte, 0, 512), rec)
	if err != nil {
		return nil, fmt.Errorf("encoding record: %w", err)
	}
	return &usageRequest{
		userID:     rec.UserID,
		keyID:      rec.APIKeyID,
		model:      rec.Model,
		cost:       rec.Cost,
		userPeriod: rec.UserPeriod,
		keyPeriod:  rec.KeyPeriod,
		suffix:     usageSuffix(rec.Timestamp, rec.ID),
		value:      value,
		summary:    summaryOf(rec),
		done:       make(chan error, 1),
	}, nil
}

// enqueueUsage hands req to the usage writer.
func (s *Store) enqueueUsage(ctx context.Context, req *usageRequest) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.usage <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ListUsage returns the records matching f, newest first, skipping the
// first skip matches and returning at most limit.
//
// A filter on APIKeyID or UserID is served from that key's or user's usage
// index, a Model filter alone from the model's index, so its cost does not
// depend on other traffic; Start and End bound every scan. Only an EndUser
// filter alone walks all records in the time range.
func (s *Store) ListUsage(f UsageFilter, skip, limit int) ([]UsageRecord, error) {
	recs, _, err := s.listUsage(f, skip, limit)
	if err != nil {
		return nil, fmt.Errorf("listing usage: %w", err)
	}
	return recs, nil
}

// listUsage implements ListUsage and also reports how many index entries it
// visited.
func (s *Store) listUsage(f UsageFilter, skip, limit int) ([]UsageRecord, int, error) {
	// prefix selects the ordering to walk. The time ordering holds the
	// records; the user and key orderings hold only keys, whose suffix
	// (timestamp and id) locates the record in the time ordering.
	var prefix []byte
	byModel := false
	switch {
	case f.APIKeyID != "":
		prefix = usageKeyPrefix(f.APIKeyID)
	case f.UserID != "":
		prefix = usageUserPrefix(f.UserID)
	case validID(f.Model):
		prefix, byModel = usageModelPrefix(f.Model), true
	default:
		prefix = []byte(prefixUsageTime)
	}
	indexed := f.APIKeyID != "" || f.UserID != "" || byModel
	// A key's index may list another user's records only when the key
	// changed owner; the user filter is checked on the record then.
	checkUser := f.APIKeyID != "" && f.UserID != ""
	// Without filters on the record, skipped entries need not be read.
	checkModel := f.Model != "" && !byModel
	readSkipped := checkModel || f.EndUser != "" || checkUser || f.Status != ""

	recs := []UsageRecord{}
	visited := 0
	err := s.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		opts.Reverse = true
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()

		for it.Seek(reverseSeekKey(prefix, f.End)); it.ValidForPrefix(prefix) && len(recs) < limit; it.Next() {
			visited++
			item := it.Item()
			suffix := item.Key()[len(prefix):]
			if len(suffix) <= timestampKeySize {
				return fmt.Errorf("malformed usage key %q", item.Key())
			}
			if !f.Start.IsZero() && timestampAt(suffix) < f.Start.UnixNano() {
				break
			}
			if skip > 0 && !readSkipped {
				skip--
				continue
			}

			var rec UsageRecord
			var err error
			if indexed {
				err = getJSON(txn, usageTimeKey(suffix), &rec)
			} else {
				err = decodeItem(item, &rec)
			}
			if err != nil {
				return fmt.Errorf("loading usage record %q: %w", suffix[timestampKeySize:], err)
			}
			if (checkModel && rec.Model != f.Model) || (f.EndUser != "" && rec.EndUser != f.EndUser) || (checkUser && rec.UserID != f.UserID) ||
				(f.Status != "" && rec.Status != f.Status) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			recs = append(recs, rec)
		}
		return nil
	})
	if err != nil {
		return nil, visited, err
	}
	return recs, visited, nil
}
