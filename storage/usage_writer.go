package storage

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
)

const (
	// usageQueueSize is how many records may wait for the writer before
	// RecordUsage blocks.
	usageQueueSize = 1024
	// maxUsageBatch is the most records committed in one transaction.
	maxUsageBatch = 256
)

// usageRequest is one RecordUsage call waiting for the writer.
type usageRequest struct {
	userID string
	keyID  string
	cost   float64
	suffix []byte     // timestamp and id, shared by the record's three keys
	value  []byte     // JSON of the record
	done   chan error // buffered; receives the outcome exactly once
}

// writeUsage is the usage writer. It takes every request already queued,
// up to maxUsageBatch, commits them in one transaction and answers their
// callers, until Close closes the queue; the requests still queued then are
// committed before it returns.
func (s *Store) writeUsage() {
	defer close(s.writerDone)
	batch := make([]*usageRequest, 0, maxUsageBatch)
	for req := range s.usage {
		batch = append(batch[:0], req)
	fill:
		for len(batch) < maxUsageBatch {
			select {
			case req, ok := <-s.usage:
				if !ok {
					break fill
				}
				batch = append(batch, req)
			default:
				break fill
			}
		}
		s.commitUsage(batch)
		clear(batch) // drop references to answered requests
	}
}

// commitUsage commits batch, retrying on conflicts with admin writes, and
// answers every request in it. A batch that fails as a whole is split in
// halves that are committed separately, so neither a transaction that grew
// too big nor one bad record fails the other records.
func (s *Store) commitUsage(batch []*usageRequest) {
	err := s.updateOpen(func(txn *badger.Txn) error {
		return applyUsage(txn, batch)
	})
	if err != nil && len(batch) > 1 && !errors.Is(err, ErrClosed) {
		half := len(batch) / 2
		s.commitUsage(batch[:half])
		s.commitUsage(batch[half:])
		return
	}
	for _, req := range batch {
		req.done <- err
	}
}

// applyUsage writes the records of batch with their index entries and adds
// their costs to the spend of their users and keys. Each user and key is
// read once and written once, however many records name it, and the costs
// are added in batch order.
func applyUsage(txn *badger.Txn, batch []*usageRequest) error {
	users := make(map[string]*User)
	keys := make(map[string]*APIKey)
	for _, req := range batch {
		if err := txn.Set(usageTimeKey(req.suffix), req.value); err != nil {
			return err
		}
		if req.userID != "" {
			if err := txn.Set(concat(usageUserPrefix(req.userID), req.suffix), []byte{}); err != nil {
				return err
			}
		}
		if req.keyID != "" {
			if err := txn.Set(concat(usageKeyPrefix(req.keyID), req.suffix), []byte{}); err != nil {
				return err
			}
		}
		if req.cost == 0 {
			continue // nothing to add; keep the user and key out of the read set
		}

		if req.userID != "" {
			u, err := loadOnce(txn, users, userKey(req.userID), req.userID)
			if err != nil {
				return err
			}
			if u != nil {
				u.Spend += req.cost
			}
		}
		if req.keyID != "" {
			k, err := loadOnce(txn, keys, apiKeyKey(req.keyID), req.keyID)
			if err != nil {
				return err
			}
			if k != nil {
				k.Spend += req.cost
			}
		}
	}

	for id, u := range users {
		if u != nil {
			if err := putJSON(txn, userKey(id), u); err != nil {
				return err
			}
		}
	}
	for id, k := range keys {
		if k != nil {
			if err := putJSON(txn, apiKeyKey(id), k); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadOnce returns cache[id], loading it from key on first use. A missing
// object is cached, and returned, as nil.
func loadOnce[T any](txn *badger.Txn, cache map[string]*T, key []byte, id string) (*T, error) {
	if v, ok := cache[id]; ok {
		return v, nil
	}
	v := new(T)
	err := getJSON(txn, key, v)
	if errors.Is(err, ErrNotFound) {
		v = nil
	} else if err != nil {
		return nil, err
	}
	cache[id] = v
	return v, nil
}
