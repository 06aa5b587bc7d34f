// Package storage persists users, keys, budgets, prices and usage records in
// Badger, an embedded transactional key-value store.
//
// A Store is safe for concurrent use. Reads run in Badger read-only
// transactions; every read-modify-write runs in one read-write transaction
// that is retried when Badger reports a conflict, so concurrent updates of
// the same record never lose writes. Usage records are written by a single
// goroutine that commits many records per transaction (group commit) while
// each caller still waits until its own record is stored as Durability
// says: in the operating system (and on disk within SyncInterval), or on
// disk. Every other write is on disk before it returns.
//
// The key layout is described in keys.go.
package storage

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/zap"
)

const (
	// defaultGCInterval is the value-log GC period when Options leaves it 0.
	defaultGCInterval = 10 * time.Minute
	// gcDiscardRatio is the share of stale data that makes a value-log file
	// worth rewriting.
	gcDiscardRatio = 0.5
	// maxConflictRetries bounds the attempts of one read-modify-write.
	maxConflictRetries = 64
)

// Options configures Open.
type Options struct {
	// Dir is the database directory. It is created (mode 0700) when
	// missing. Ignored when InMemory is set.
	Dir string
	// InMemory keeps everything in memory; meant for tests.
	InMemory bool
	// Logger receives Badger's own logs: INFO at Debug, WARNING at Warn and
	// ERROR at Error level. Nil discards them.
	Logger *zap.Logger
	// GCInterval is the period of value-log garbage collection. Zero means
	// 10 minutes. GC does not run in memory mode.
	GCInterval time.Duration
	// Durability says when RecordUsage returns: once the record is in the
	// operating system (DurabilityOS, the default) or on disk
	// (DurabilityFsync). Every other write is on disk before it returns.
	Durability Durability
	// SyncInterval bounds, with DurabilityOS, how long a record stays
	// unsynced. Zero means 100 ms.
	SyncInterval time.Duration
	// UsageRetention, when positive, is the age from which usage records
	// are deleted in the background (SetUsageRetention).
	UsageRetention time.Duration
}

// Store is the gateway's database. Create it with Open and release it with
// Close.
type Store struct {
	db     *badger.DB
	logger *zap.Logger

	// mu guards closed. Every operation holds it for reading while it uses
	// db, and Close takes it for writing, so the database is never closed
	// under a running transaction (Badger iterators panic on a closed DB).
	mu     sync.RWMutex
	closed bool

	// usage carries records to the usage writer. Senders hold mu for
	// reading, so Close can close the channel once it holds mu.
	usage      chan *usageRequest
	writerDone chan struct{}

	// syncer makes the logs durable (nil in memory); durability is
	// Options.Durability.
	syncer     *logSyncer
	durability atomic.Int32
	// journal holds the records of DurabilityFsync batches until the
	// logs are synced (nil in memory); see usageJournal.
	journal *usageJournal

	// retention is SetUsageRetention's duration; retentionWake tells the
	// loop deleting expired records that it changed.
	retention     atomic.Int64
	retentionWake chan struct{}

	stopBackground chan struct{}
	background     sync.WaitGroup // value-log GC, the log sync, record expiry

	// retryMu turns conflicts into turns: a read-modify-write makes its
	// first attempt holding it for reading and, after a conflict, its
	// retries holding it for writing, when no other transaction of this
	// store can commit in between. Without it one writer among many on the
	// same object can lose every attempt.
	retryMu sync.RWMutex
}

// Open opens (creating if needed) the database described by opts and starts
// its background goroutines. A new database records FormatVersion; an
// older one is migrated; a newer one is refused with ErrUnknownFormat.
// The background goroutines are the usage writer and, on disk, the value-log
// garbage collector and the periodic log sync, and the deletion of expired
// usage records. Close stops them.
func Open(opts Options) (*Store, error) {
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	if !opts.InMemory {
		if opts.Dir == "" {
			return nil, errors.New("opening database: no directory given")
		}
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating database directory: %w", err)
		}
	}
	db, err := badger.Open(badgerOptions(opts, logger))
	if err != nil {
		return nil, fmt.Errorf("opening database %q: %w", opts.Dir, err)
	}
	if err := checkFormat(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening database %q: %w", opts.Dir, err)
	}
	if err := buildSummaries(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening database %q: %w", opts.Dir, err)
	}

	s := &Store{
		db:             db,
		logger:         logger,
		usage:          make(chan *usageRequest, usageQueueSize),
		writerDone:     make(chan struct{}),
		retentionWake:  make(chan struct{}, 1),
		stopBackground: make(chan struct{}),
	}
	if !opts.InMemory {
		s.syncer = newLogSyncer(opts.Dir)
		if err := s.openJournal(opts.Dir); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("opening database %q: %w", opts.Dir, err)
		}
	}
	s.retention.Store(int64(max(opts.UsageRetention, 0)))
	s.background.Go(func() { s.expireUsage(time.Now) })
	s.durability.Store(int32(opts.Durability))
	go s.writeUsage()
	if !opts.InMemory {
		gcInterval := cmp.Or(opts.GCInterval, defaultGCInterval)
		s.background.Go(func() { s.collectGarbage(gcInterval) })
		syncInterval := cmp.Or(opts.SyncInterval, defaultSyncInterval)
		s.background.Go(func() { s.syncLogs(syncInterval) })
	}
	return s, nil
}

// badgerOptions tunes Badger for a small service: modest caches and
// memtables, uncompressed tables (no compression buffers).
//
// A table builder holds twice its table's size in memory, a compaction
// runs up to 8 builders beside its subcompactions, and Badger pools the
// builders, so table sizes bound the heap under compaction. Every table
// is baseTableSize (TableSizeMultiplier 1; Badger's default doubles the
// size at each level below the base, so a big store's deepest tables and
// their builders grew with it), and level-0 tables are the memtable's
// size. On a store of 1M records that took the anonymous memory under
// load from 136–144 MB to 78–93 MB (BENCHMARKS.md); it costs more table
// files: 400–600 per million records, each an open file and a mapping.
//
// Badger's own SyncWrites is off: a commit is then in the operating system
// when it returns (the logs are memory-mapped). The store syncs the logs
// itself (logSyncer): before an admin write returns, and in the
// background. DurabilityFsync makes usage records durable in the usage
// journal (usageJournal). Values from valueThreshold on go to the value
// log, written once, so flushes and compactions of the LSM tree copy keys
// and small counters, not usage records.
func badgerOptions(opts Options, logger *zap.Logger) badger.Options {
	dir := opts.Dir
	if opts.InMemory {
		dir = ""
	}
	o := badger.DefaultOptions(dir).
		WithInMemory(opts.InMemory).
		WithLogger(newBadgerLogger(logger)).
		WithSyncWrites(false).
		WithMemTableSize(memTableSize(opts.InMemory)).
		WithBaseTableSize(baseTableSize).
		WithNumMemtables(2).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(6).
		WithNumCompactors(2).
		WithValueThreshold(valueThreshold(opts.InMemory)).
		WithCompression(options.None)
	o.TableSizeMultiplier = 1
	return o
}

// valueThreshold is the size from which values go to the value log; in
// memory there is no value log, so every value stays in the tree. On disk
// usage records (about 500 bytes of JSON) and users, keys, budgets and
// prices go to the value log; spend counters (8 bytes), summary totals
// (varints) and index entries (empty) stay in the tree. With usage records
// in the tree (a threshold of 1 KiB) every memtable flush and compaction
// rewrote them: at 64 concurrent requests caddy spent 147 µs of CPU and
// 224 MB of anonymous memory against 125–139 µs and 113–120 MB
// (BENCHMARKS.md).
func valueThreshold(inMemory bool) int64 {
	if inMemory {
		return 1 << 20
	}
	return diskValueThreshold
}

// memTableSize is Badger's memtable size. In memory every value stays in
// the tree, so a transaction may hold values up to valueThreshold, and
// Badger wants its batches (15 % of a memtable) larger than that.
func memTableSize(inMemory bool) int64 {
	if inMemory {
		return 8 << 20
	}
	return 3 << 20
}

// baseTableSize is the size of every table below level 0.
const baseTableSize = 1 << 20

// diskValueThreshold is valueThreshold on disk.
const diskValueThreshold = 1 << 6

// Close waits for queued usage records to be committed, stops the
// background goroutines and closes the database. Further calls return nil;
// every other method returns an error wrapping ErrClosed afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true

	close(s.usage) // no sender is active: senders hold mu for reading
	<-s.writerDone // the writer drains the queue and answers every caller
	close(s.stopBackground)
	s.background.Wait()

	// Closing flushes the memtables into synced tables.
	err := s.db.Close()
	if s.syncer != nil {
		s.syncer.close()
	}
	if s.journal != nil {
		if jerr := s.journal.close(err == nil); err == nil {
			err = jerr
		}
	}
	if err != nil {
		return fmt.Errorf("closing database: %w", err)
	}
	return nil
}

// Ping checks that the database answers a read transaction.
func (s *Store) Ping() error {
	err := s.view(func(txn *badger.Txn) error {
		_, err := txn.Get(pingKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("pinging database: %w", err)
	}
	return nil
}

// view runs fn in a read-only transaction.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return mapClosed(s.db.View(fn))
}

// update runs fn in a read-write transaction and commits it, running fn
// again in a fresh transaction when the commit conflicts with another one.
// fn must therefore have no side effects outside txn. The commit is on disk
// when update returns.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	return s.write(fn, true)
}

// updateLazy is update for writes that may reach the disk later (within
// the next sync), such as a key's last use.
func (s *Store) updateLazy(fn func(txn *badger.Txn) error) error {
	return s.write(fn, false)
}

// write is update (sync true) and updateLazy.
func (s *Store) write(fn func(txn *badger.Txn) error, sync bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.updateOpen(fn); err != nil {
		return err
	}
	switch {
	case sync:
		return s.syncStore()
	case s.syncer != nil:
		s.syncer.wrote(true)
	}
	return nil
}

// syncStore makes every commit so far durable: the logs of the LSM tree
// and the value log. In memory there is nothing to sync.
func (s *Store) syncStore() error {
	if s.syncer == nil {
		return nil
	}
	return s.syncer.sync(true)
}

// openJournal opens the usage journal in dir, applies the records it
// holds that the database lost, syncs the database and restarts the
// journal.
func (s *Store) openJournal(dir string) error {
	j, payloads, err := openJournal(dir)
	if err != nil {
		return err
	}
	n, err := replayJournal(s.db, payloads)
	if err == nil {
		// Make what was replayed durable and start the journal over now,
		// not at the first append or log sync.
		err = j.trim(s.syncStore)
	}
	if err != nil {
		_ = j.close(false)
		return err
	}
	if n > 0 {
		s.logger.Warn("usage records lost by the database were restored from the usage journal", zap.Int("records", n))
	}
	s.journal = j
	return nil
}

// SetDurability changes when RecordUsage returns (see Options.Durability),
// from the next batch of records on: a config reload applies its setting to
// the store it shares with the config before it.
func (s *Store) SetDurability(d Durability) { s.durability.Store(int32(d)) }

// syncLogs syncs the logs every interval when something was written
// without a sync, until Close: the background half of DurabilityOS, and
// what makes lazy writes (TouchKey) durable.
func (s *Store) syncLogs(interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stopBackground:
			return
		case <-ticker.C:
			if err := s.syncer.syncDirty(); err != nil {
				s.logger.Error("syncing usage records to disk failed; retrying", zap.Error(err))
			}
			if err := s.journal.trim(s.syncStore); err != nil {
				s.logger.Error("restarting the usage journal failed; retrying", zap.Error(err))
			}
		}
	}
}

// updateOpen is update for callers that already keep the database open:
// holders of mu and the usage writer, which Close waits for. A transaction
// that conflicts runs again alone (see retryMu), so it cannot conflict again
// with this store's own writers; maxConflictRetries only guards against a
// writer outside it.
func (s *Store) updateOpen(fn func(txn *badger.Txn) error) error {
	s.retryMu.RLock()
	err := s.db.Update(fn)
	s.retryMu.RUnlock()
	if !errors.Is(err, badger.ErrConflict) {
		return mapClosed(err)
	}
	s.retryMu.Lock()
	defer s.retryMu.Unlock()
	for range maxConflictRetries {
		err = s.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return mapClosed(err)
		}
	}
	return fmt.Errorf("giving up after %d attempts: %w", maxConflictRetries, err)
}

// mapClosed translates Badger's closed-database error into ErrClosed.
func mapClosed(err error) error {
	if errors.Is(err, badger.ErrDBClosed) {
		return ErrClosed
	}
	return err
}

// collectGarbage runs value-log GC every interval until Close.
func (s *Store) collectGarbage(interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stopBackground:
			return
		case <-ticker.C:
			s.collectValueLog()
		}
	}
}

// collectValueLog rewrites value-log files while each pass reclaims space.
func (s *Store) collectValueLog() {
	for {
		select {
		case <-s.stopBackground:
			return
		default:
		}
		err := s.db.RunValueLogGC(gcDiscardRatio)
		switch {
		case err == nil:
			continue // a file was rewritten; another may qualify
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			// Nothing worth rewriting, or a GC is already running.
		default:
			s.logger.Warn("value log garbage collection failed", zap.Error(err))
		}
		return
	}
}

// probeKey is written and deleted by Probe.
var probeKey = []byte("probe")

// Probe checks that the database takes a durable write: it writes and
// deletes one key in a transaction.
func (s *Store) Probe() error {
	err := s.update(func(txn *badger.Txn) error {
		if err := txn.Set(probeKey, []byte{1}); err != nil {
			return err
		}
		return txn.Delete(probeKey)
	})
	if err != nil {
		return fmt.Errorf("probing database: %w", err)
	}
	return nil
}
