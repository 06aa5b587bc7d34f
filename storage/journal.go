package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// The usage journal makes DurabilityFsync cost one fdatasync of a plain
// file per batch of usage records.
//
// Badger writes its logs through shared memory mappings; syncing one
// write-protects every dirty page again and the next commit faults it
// writable, which on this kind of machine costs several times a plain
// fdatasync (BENCHMARKS.md, "Where the fsync mode's time goes"). So with
// DurabilityFsync the usage writer commits a batch to Badger unsynced, as
// with DurabilityOS, then appends the batch's records to the journal with
// pwrite and fdatasyncs it. Open replays the journal: a record it holds
// that Badger lost (a power loss before Badger's own sync) is applied
// again, with its spend; one Badger has is skipped, so nothing counts
// twice.
//
// The file has a fixed size and is zero-filled when created, so a sync
// flushes data and never the file's block map. Its first block is the
// header: a magic string and the generation. Entries follow from
// journalHeaderSize: the payload's length, a CRC-32C of the generation
// and the payload, the generation, and the payload (a record's JSON). A
// scan stops at the first entry that is not whole and of the header's
// generation. Restarting the journal means making Badger durable (every
// journaled record was committed there before it was journaled) and
// writing a header with the next generation, which disowns every entry in
// the file at once; the writer restarts a full journal, and the background
// sync restarts one that went idle, so its entries are never old.
type usageJournal struct {
	mu  sync.Mutex
	f   *os.File
	gen uint64
	off int64  // where the next entry goes; journalHeaderSize when empty
	buf []byte // the batch being encoded, reused
}

const (
	journalName       = "usage.journal"
	journalMagic      = "LLMGWJ01"
	journalSize       = 8 << 20
	journalHeaderSize = 4096
	// journalEntryHeader is the length, CRC and generation before each
	// payload.
	journalEntryHeader = 16
)

var journalCRC = crc32.MakeTable(crc32.Castagnoli)

// errJournalFull says a batch does not fit even in an empty journal; the
// caller makes it durable another way.
var errJournalFull = errors.New("batch larger than the usage journal")

// openJournal opens the journal in dir, creating it when missing, and
// returns the payloads of its current generation in the order they were
// written. A journal that is damaged beyond its entries (no header, the
// wrong size) is replaced after its readable entries are returned.
func openJournal(dir string) (*usageJournal, [][]byte, error) {
	path := filepath.Join(dir, journalName)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data = nil
	case err != nil:
		return nil, nil, fmt.Errorf("reading the usage journal: %w", err)
	}
	gen, ok := parseJournalHeader(data)
	var payloads [][]byte
	if ok {
		payloads = scanJournal(data, gen)
	}
	if !ok || len(data) != journalSize {
		if err := createJournal(dir, gen); err != nil {
			return nil, nil, err
		}
		gen++
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the usage journal: %w", err)
	}
	j := &usageJournal{f: f, gen: gen, off: journalHeaderSize}
	// A journal with entries stays as it is until restart, so that
	// replaying them again after a crash in between still finds them.
	if len(payloads) > 0 {
		j.off = -1 // restart before the next append
	}
	return j, payloads, nil
}

// parseJournalHeader returns the generation in data's header.
func parseJournalHeader(data []byte) (uint64, bool) {
	if len(data) < journalHeaderSize || string(data[:len(journalMagic)]) != journalMagic {
		return 0, false
	}
	h := data[len(journalMagic):]
	gen := binary.LittleEndian.Uint64(h)
	if crc32.Checksum(data[:len(journalMagic)+8], journalCRC) != binary.LittleEndian.Uint32(h[8:]) {
		return 0, false
	}
	return gen, true
}

// appendJournalHeader appends the header of generation gen (without the
// padding to journalHeaderSize).
func appendJournalHeader(b []byte, gen uint64) []byte {
	b = append(b, journalMagic...)
	b = binary.LittleEndian.AppendUint64(b, gen)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[len(b)-len(journalMagic)-8:], journalCRC))
}

// scanJournal returns the payloads of the entries of generation gen, up to
// the first one that is not whole.
func scanJournal(data []byte, gen uint64) [][]byte {
	var payloads [][]byte
	for off := journalHeaderSize; off+journalEntryHeader <= len(data); {
		h := data[off:]
		n := int(binary.LittleEndian.Uint32(h))
		if n == 0 || n > len(data)-off-journalEntryHeader || binary.LittleEndian.Uint64(h[8:]) != gen {
			break
		}
		body := h[8 : journalEntryHeader+n] // generation and payload
		if crc32.Checksum(body, journalCRC) != binary.LittleEndian.Uint32(h[4:]) {
			break
		}
		payloads = append(payloads, bytes.Clone(body[8:]))
		off += journalEntryHeader + n
	}
	return payloads
}

// createJournal writes an empty journal of generation gen+1: into
// a temporary file, zero-filled to journalSize and synced, then renamed
// over the journal, and the directory synced.
func createJournal(dir string, gen uint64) error {
	tmp := filepath.Join(dir, journalName+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating the usage journal: %w", err)
	}
	block := make([]byte, 1<<20)
	copy(block, appendJournalHeader(nil, gen+1))
	for off := 0; off < journalSize && err == nil; off += len(block) {
		_, err = f.Write(block[:min(len(block), journalSize-off)])
		clear(block[:journalHeaderSize])
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, journalName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("creating the usage journal: %w", err)
	}
	return nil
}

// syncDir makes the entries of directory dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// append writes payloads as entries and syncs them: durable when it
// returns nil. A journal too full for them is restarted first, after
// syncStore has made every record committed so far durable.
func (j *usageJournal) append(payloads [][]byte, syncStore func() error) error {
	n := int64(0)
	for _, p := range payloads {
		n += journalEntryHeader + int64(len(p))
	}
	if journalHeaderSize+n > journalSize {
		return errJournalFull
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.off < 0 || j.off+n > journalSize {
		if err := syncStore(); err != nil {
			return err
		}
		if err := j.restartLocked(); err != nil {
			return err
		}
	}
	b := j.buf[:0]
	for _, p := range payloads {
		start := len(b)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, 0, 0, 0, 0) // the CRC, below
		b = binary.LittleEndian.AppendUint64(b, j.gen)
		b = append(b, p...)
		binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+8:], journalCRC))
	}
	j.buf = b
	if _, err := j.f.WriteAt(b, j.off); err != nil {
		return fmt.Errorf("writing the usage journal: %w", err)
	}
	if err := datasync(j.f); err != nil {
		return fmt.Errorf("syncing the usage journal: %w", err)
	}
	j.off += n
	return nil
}

// trim restarts a journal holding entries once syncStore has made them
// durable in the store; the writer appending meanwhile leaves it for the
// next call. The writer is not held up by syncStore.
func (j *usageJournal) trim(syncStore func() error) error {
	j.mu.Lock()
	gen, off := j.gen, j.off
	j.mu.Unlock()
	if off == journalHeaderSize {
		return nil // empty
	}
	if err := syncStore(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.gen != gen || j.off != off {
		return nil
	}
	return j.restartLocked()
}

// restartLocked moves the journal to the next generation, which disowns
// every entry in it. Every record journaled so far must be durable in the
// store.
func (j *usageJournal) restartLocked() error {
	header := appendJournalHeader(make([]byte, 0, 32), j.gen+1)
	if _, err := j.f.WriteAt(header, 0); err != nil {
		return fmt.Errorf("restarting the usage journal: %w", err)
	}
	if err := datasync(j.f); err != nil {
		return fmt.Errorf("restarting the usage journal: %w", err)
	}
	j.gen++
	j.off = journalHeaderSize
	return nil
}

// close restarts the journal when clean says the store is durable (it was
// closed cleanly) and closes the file.
func (j *usageJournal) close(clean bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var err error
	if clean && j.off != journalHeaderSize {
		err = j.restartLocked()
	}
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// replayJournal applies the journaled records that db does not hold, with
// their spend and summaries, and returns how many it applied. A payload
// that does not decode is an error: the journal is only written with
// records the store encoded.
func replayJournal(db *badger.DB, payloads [][]byte) (int, error) {
	reqs := make([]*usageRequest, 0, len(payloads))
	for _, p := range payloads {
		var rec UsageRecord
		if err := json.Unmarshal(p, &rec); err != nil {
			return 0, fmt.Errorf("replaying the usage journal: %w", err)
		}
		req, err := newUsageRequest(&rec)
		if err != nil {
			return 0, fmt.Errorf("replaying the usage journal: record %s: %w", rec.ID, err)
		}
		reqs = append(reqs, req)
	}
	applied := 0
	for len(reqs) > 0 {
		batch := reqs[:min(len(reqs), maxUsageBatch)]
		reqs = reqs[len(batch):]
		n := 0
		err := db.Update(func(txn *badger.Txn) error {
			missing := make([]*usageRequest, 0, len(batch))
			for _, req := range batch {
				ok, err := exists(txn, usageTimeKey(req.suffix))
				if err != nil {
					return err
				}
				if !ok {
					missing = append(missing, req)
				}
			}
			n = len(missing)
			return applyUsage(txn, missing)
		})
		if err != nil {
			return applied, fmt.Errorf("replaying the usage journal: %w", err)
		}
		applied += n
	}
	return applied, nil
}
