package storage

import (
	"errors"
	"time"

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
	userID     string
	keyID      string
	model      string // indexed when it is a valid id
	cost       Money
	userPeriod time.Time
	keyPeriod  time.Time
	suffix     []byte     // timestamp and id, shared by the record's three keys
	value      []byte     // JSON of the record
	done       chan error // buffered; receives the outcome exactly once

	summary summaryEntry // what the record adds to the usage summaries
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
	if err == nil {
		err = s.persistUsage(batch)
	}
	for _, req := range batch {
		req.done <- err
	}
}

// persistUsage makes a committed batch as durable as the store's
// durability asks:
// one synced append to the usage journal for the whole batch
// (DurabilityFsync), or a note for the background sync (DurabilityOS).
func (s *Store) persistUsage(batch []*usageRequest) error {
	if s.syncer == nil {
		return nil
	}
	// Every record (its JSON is longer than diskValueThreshold) is in the
	// value log, so each sync covers it.
	if Durability(s.durability.Load()) == DurabilityFsync {
		payloads := make([][]byte, len(batch))
		for i, req := range batch {
			payloads[i] = req.value
		}
		err := s.journal.append(payloads, s.syncStore)
		if errors.Is(err, errJournalFull) {
			return s.syncStore()
		}
		return err
	}
	s.syncer.wrote(true)
	return nil
}

// applyUsage writes the records of batch with their index entries and adds
// their costs to the spend counters of their users and keys for the periods
// the records name. Each counter is read once and written once, however
// many records add to it.
func applyUsage(txn *badger.Txn, batch []*usageRequest) error {
	counters := make(map[string]Money)
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
		if validID(req.model) {
			if err := txn.Set(concat(usageModelPrefix(req.model), req.suffix), []byte{}); err != nil {
				return err
			}
		}
		if req.cost == 0 {
			continue // nothing to add; keep the counters out of the read set
		}
		if req.userID != "" {
			if err := addSpend(txn, counters, spendKey(SpendOfUser, req.userID, req.userPeriod), req.cost); err != nil {
				return err
			}
		}
		if req.keyID != "" {
			if err := addSpend(txn, counters, spendKey(SpendOfKey, req.keyID, req.keyPeriod), req.cost); err != nil {
				return err
			}
		}
	}
	if err := addSummaries(txn, batch); err != nil {
		return err
	}
	for key, spend := range counters {
		if err := txn.Set([]byte(key), encodeSpend(spend)); err != nil {
			return err
		}
	}
	return nil
}

// addSpend adds cost to the counter under key, reading it on first use.
func addSpend(txn *badger.Txn, counters map[string]Money, key []byte, cost Money) error {
	spend, ok := counters[string(key)]
	if !ok {
		var err error
		if spend, err = readSpend(txn, key); err != nil {
			return err
		}
	}
	counters[string(key)] = spend + cost
	return nil
}
