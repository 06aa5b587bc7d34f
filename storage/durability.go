package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Durability says when a usage record counts as stored: when RecordUsage
// returns.
type Durability int

const (
	// DurabilityOS (the default) returns once the record is in the
	// operating system: written into the store's log files, which are
	// memory-mapped, so it survives a crash or kill -9 of the process. A
	// background sync makes it durable on disk within SyncInterval; a power
	// loss or kernel crash may lose the records of that last interval.
	DurabilityOS Durability = iota
	// DurabilityFsync returns once the record is durable on disk: it
	// survives a power loss too. The records committed together (every
	// record waiting when the writer takes its next batch) share one
	// append to the usage journal and one fdatasync of it (usageJournal).
	DurabilityFsync
)

// String names d as the Caddyfile does.
func (d Durability) String() string {
	switch d {
	case DurabilityOS:
		return "os"
	case DurabilityFsync:
		return "fsync"
	}
	return "Durability(" + strconv.Itoa(int(d)) + ")"
}

// ParseDurability reads "os" or "fsync"; "" is the default, DurabilityOS.
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "", "os":
		return DurabilityOS, nil
	case "fsync":
		return DurabilityFsync, nil
	}
	return 0, fmt.Errorf("durability %q: want os or fsync", s)
}

// defaultSyncInterval bounds how long a record written with DurabilityOS
// waits to reach the disk.
const defaultSyncInterval = 100 * time.Millisecond

// logSyncer makes the writes Badger has put into its memory-mapped log
// files durable, one fsync per file that may hold unsynced data.
//
// Badger (with SyncWrites off, as the store opens it) appends each commit
// to the write-ahead log of its current memtable (NNNNN.mem) and values of
// ValueThreshold bytes or more to the value log (NNNNN.vlog); both are
// memory-mapped, so a commit is in the page cache when it returns. When a
// memtable fills, Badger moves to a new .mem file without syncing the old
// one, and deletes the old one only after its contents are in a synced
// table file; the same holds for value log files. DB.Sync syncs only the
// current files, so a commit that raced with a rotation could stay
// unsynced. The syncer therefore remembers the newest file of each kind it
// synced and syncs every file from that one on: usually exactly one.
type logSyncer struct {
	dir string

	mu        sync.Mutex
	files     map[string]*os.File // open log files by name, for fsync
	memFloor  int                 // the newest .mem file synced; older ones hold nothing unsynced
	vlogFloor int                 // the same for .vlog files

	dirty     atomic.Bool // a write since the last sync
	vlogDirty atomic.Bool // a write since the last sync may have reached the value log

	// Group sync: each caller of sync takes a ticket after its commit; a
	// sync covers every ticket taken before it began, so callers waiting
	// for mu while another sync runs need not sync again once it is done.
	tickets    atomic.Uint64
	synced     uint64 // under mu: the last ticket a successful sync covered
	syncedVlog uint64 // the same for syncs that covered the value log
}

func newLogSyncer(dir string) *logSyncer {
	return &logSyncer{dir: dir, files: make(map[string]*os.File), memFloor: -1, vlogFloor: -1}
}

// wrote notes a commit that is not yet synced; vlog says it may have
// written to the value log.
func (y *logSyncer) wrote(vlog bool) {
	if vlog {
		y.vlogDirty.Store(true)
	}
	y.dirty.Store(true)
}

// syncDirty syncs if anything was written since the last sync.
func (y *logSyncer) syncDirty() error {
	if !y.dirty.Swap(false) {
		return nil
	}
	if err := y.sync(y.vlogDirty.Swap(false)); err != nil {
		y.wrote(true) // try again next time
		return err
	}
	return nil
}

// sync makes every commit that returned before it was called durable:
// the write-ahead logs and, with vlog, the value log files. Concurrent
// callers share syncs: one that finds a sync begun after its call has
// succeeded returns at once.
func (y *logSyncer) sync(vlog bool) error {
	ticket := y.tickets.Add(1)
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.synced >= ticket && (!vlog || y.syncedVlog >= ticket) {
		return nil
	}
	covers := y.tickets.Load()
	if err := y.syncLocked(vlog); err != nil {
		return err
	}
	y.synced = covers
	if vlog {
		y.syncedVlog = covers
	}
	return nil
}

// syncLocked is sync's work, under mu.
func (y *logSyncer) syncLocked(vlog bool) error {
	names, err := readDirNames(y.dir)
	if err != nil {
		return fmt.Errorf("syncing the store's logs: %w", err)
	}
	memMax, vlogMax := y.memFloor, y.vlogFloor
	listed := make(map[string]bool, len(names))
	var errs []error
	for _, name := range names {
		fid, ext, ok := logFileID(name)
		if !ok {
			continue
		}
		listed[name] = true
		switch {
		case ext == ".mem" && fid >= y.memFloor:
			memMax = max(memMax, fid)
		case ext == ".vlog" && vlog && fid >= y.vlogFloor:
			vlogMax = max(vlogMax, fid)
		default:
			continue
		}
		if err := y.syncFile(name); err != nil {
			errs = append(errs, err)
		}
	}
	for name, f := range y.files {
		if !listed[name] { // flushed into a table and deleted by Badger
			_ = f.Close()
			delete(y.files, name)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("syncing the store's logs: %w", err)
	}
	y.memFloor, y.vlogFloor = memMax, vlogMax
	return nil
}

// syncFile fsyncs the log file name, opening it on first use. A file
// Badger deleted meanwhile needs no sync: its data is in a synced table.
func (y *logSyncer) syncFile(name string) error {
	f := y.files[name]
	if f == nil {
		var err error
		f, err = os.Open(filepath.Join(y.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		y.files[name] = f
	}
	if err := datasync(f); err != nil {
		return fmt.Errorf("syncing %s: %w", name, err)
	}
	return nil
}

// close releases the open files.
func (y *logSyncer) close() {
	y.mu.Lock()
	defer y.mu.Unlock()
	for name, f := range y.files {
		_ = f.Close()
		delete(y.files, name)
	}
}

// logFileID parses Badger's log file names: NNNNN.mem and NNNNN.vlog.
func logFileID(name string) (int, string, bool) {
	ext := filepath.Ext(name)
	if ext != ".mem" && ext != ".vlog" {
		return 0, "", false
	}
	fid, err := strconv.Atoi(strings.TrimSuffix(name, ext))
	if err != nil || fid < 0 {
		return 0, "", false
	}
	return fid, ext, true
}

func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}
