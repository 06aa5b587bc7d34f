// Package spool keeps payloads on local disk, durably, until they are
// delivered: the gateway's usage records written while its database is
// unreachable. Each payload is one file, written atomically (a temporary
// file, fsynced, renamed into place, the directory fsynced), so a crash
// leaves either the whole entry or none of it; a checksum catches a file
// damaged anyway. A directory belongs to one process at a time (a lock
// file), so two processes never deliver one entry at once.
package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	entrySuffix   = ".rec"
	tempSuffix    = ".tmp"
	corruptSuffix = ".corrupt"
	lockName      = "LOCK"
	// headerSize is an entry's length and checksum, before its payload.
	headerSize = 8
	// maxSlots is how many processes sharing one root may each own a
	// spool directory of it.
	maxSlots = 64
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt marks an entry that is not what Put wrote: cut short or
// damaged. Such an entry is set aside (renamed *.corrupt), never delivered.
var ErrCorrupt = errors.New("spool entry corrupt")

// Spool is one locked spool directory.
type Spool struct {
	dir  string
	lock *os.File

	mu     sync.Mutex
	seq    uint64
	closed bool
	wake   chan struct{} // buffered(1): a Put happened
}

// Open takes the first spool directory under root (root/0, root/1, …)
// that no other process holds, creating it if needed, and removes what a
// crash left half-written there. A restarted process takes the directory
// its predecessor held, so it delivers what that one spooled.
func Open(root string) (*Spool, error) {
	var firstErr error
	for slot := range maxSlots {
		dir := filepath.Join(root, fmt.Sprint(slot))
		s, err := openDir(dir)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errLocked) {
			return nil, err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("opening a spool under %s: all %d directories are held: %w", root, maxSlots, firstErr)
}

func openDir(dir string) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating spool directory: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("locking spool directory %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("reading spool directory: %w", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), tempSuffix) {
			// Never renamed into place: its Put did not return.
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return &Spool{dir: dir, lock: lock, wake: make(chan struct{}, 1)}, nil
}

// Dir is the directory the spool holds.
func (s *Spool) Dir() string { return s.dir }

// Put stores payload durably: when it returns nil, the entry survives a
// crash of the process or of the machine.
func (s *Spool) Put(payload []byte) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("spool closed")
	}
	s.seq++
	name := fmt.Sprintf("%020d-%08d%s", time.Now().UnixNano(), s.seq, entrySuffix)
	s.mu.Unlock()

	buf := make([]byte, headerSize, headerSize+len(payload))
	binary.BigEndian.PutUint32(buf[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[4:8], crc32.Checksum(payload, crcTable))
	buf = append(buf, payload...)

	final := filepath.Join(s.dir, name)
	temp := final + tempSuffix
	if err := writeSynced(temp, buf); err != nil {
		_ = os.Remove(temp)
		return fmt.Errorf("writing spool entry: %w", err)
	}
	if err := os.Rename(temp, final); err != nil {
		_ = os.Remove(temp)
		return fmt.Errorf("writing spool entry: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("writing spool entry: %w", err)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Entry is one spooled payload.
type Entry struct {
	Name    string
	Payload []byte
}

// List returns the spooled entries, oldest first. An entry that is corrupt
// is set aside and reported in the returned error (wrapping ErrCorrupt),
// along with the good entries.
func (s *Spool) List() ([]Entry, error) {
	files, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("reading spool directory: %w", err)
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		if strings.HasSuffix(f.Name(), entrySuffix) {
			names = append(names, f.Name())
		}
	}
	slices.Sort(names)
	var out []Entry
	var errs []error
	for _, name := range names {
		payload, err := readEntry(filepath.Join(s.dir, name))
		switch {
		case errors.Is(err, ErrCorrupt):
			_ = os.Rename(filepath.Join(s.dir, name), filepath.Join(s.dir, name+corruptSuffix))
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		case errors.Is(err, os.ErrNotExist):
			// Removed since the directory was read.
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		default:
			out = append(out, Entry{Name: name, Payload: payload})
		}
	}
	return out, errors.Join(errs...)
}

func readEntry(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < headerSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than its header", ErrCorrupt, len(data))
	}
	n := binary.BigEndian.Uint32(data[0:4])
	payload := data[headerSize:]
	if uint64(len(payload)) != uint64(n) {
		return nil, fmt.Errorf("%w: %d payload bytes, header says %d", ErrCorrupt, len(payload), n)
	}
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(data[4:8]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return bytes.Clone(payload), nil
}

// Remove deletes a delivered entry, durably.
func (s *Spool) Remove(name string) error {
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing spool entry: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("removing spool entry: %w", err)
	}
	return nil
}

// Close releases the directory to the next process. Entries stay.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lock.Close()
}

// Delivery is what Run calls.
type Delivery struct {
	// Deliver hands one payload on; nil means it is delivered (and will
	// be removed). It must be idempotent: a crash between a delivery and
	// the removal delivers the payload again.
	Deliver func(ctx context.Context, payload []byte) error
	// Delivered reports a pass that delivered n entries, left still spooled.
	Delivered func(n, left int)
	// Failed reports an error of a pass (a failed delivery, a corrupt
	// entry), at most once per streak of failing passes.
	Failed func(err error)
	// MinBackoff and MaxBackoff bound the wait after a failing pass; it
	// doubles with each failing pass in a row.
	MinBackoff, MaxBackoff time.Duration
	// AdoptEvery is how often a pass runs anyway, to adopt what a process
	// that ended left in a directory of the same root. Default 30 s.
	AdoptEvery time.Duration
}

// Run delivers the spooled entries, oldest first, at start, after each
// Put, every AdoptEvery, and after a failing pass again with backoff
// (Puts meanwhile wait for it), until ctx ends. Each pass first adopts
// the entries of the root's directories that no process holds.
func (s *Spool) Run(ctx context.Context, d Delivery) {
	backoff := d.MinBackoff
	failing := false
	every := d.AdoptEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	adoptTick := time.NewTicker(every)
	defer adoptTick.Stop()
	for {
		delivered, left, err := s.pass(ctx, d.Deliver)
		if delivered > 0 && d.Delivered != nil {
			d.Delivered(delivered, left)
		}
		var retry *time.Timer
		if err != nil {
			if !failing && d.Failed != nil && ctx.Err() == nil {
				d.Failed(err)
			}
			failing = true
			if left > 0 {
				retry = time.NewTimer(backoff)
				backoff = min(2*backoff, d.MaxBackoff)
			}
		} else {
			failing, backoff = false, d.MinBackoff
		}
		// While deliveries fail, only the backoff starts the next pass: a
		// Put then finds the destination down all the same.
		var retried <-chan time.Time
		wake := s.wake
		if retry != nil {
			retried, wake = retry.C, nil
		}
		select {
		case <-ctx.Done():
			if retry != nil {
				retry.Stop()
			}
			return
		case <-wake:
		case <-retried:
		case <-adoptTick.C:
		}
		if retry != nil {
			retry.Stop()
		}
	}
}

// adopt moves into s's directory the entries of every other directory
// under the same root that no process holds: what a process spooled
// before it ended while another one held the directory a restart would
// have taken (two processes on one storage_path, the new one started
// before the old one stopped). Each entry keeps its name, marked with the
// directory it came from, and is moved by a rename, so it is in exactly
// one directory at any moment. It reports how many entries it moved.
func (s *Spool) adopt() (int, error) {
	root := filepath.Dir(s.dir)
	dirs, err := os.ReadDir(root)
	if err != nil {
		return 0, fmt.Errorf("reading spool root: %w", err)
	}
	moved := 0
	var errs []error
	for _, d := range dirs {
		dir := filepath.Join(root, d.Name())
		if !d.IsDir() || dir == s.dir {
			continue
		}
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue // not a spool directory
		}
		lock, err := lockDir(filepath.Join(dir, lockName))
		if err != nil {
			continue // held by a running process, which delivers it
		}
		n, err := moveEntries(dir, s.dir, "-from-"+d.Name())
		moved += n
		if err != nil {
			errs = append(errs, err)
		}
		lock.Close()
	}
	return moved, errors.Join(errs...)
}

// moveEntries renames the entries of from into to, inserting mark before
// their suffix, and syncs both directories when it moved any.
func moveEntries(from, to, mark string) (int, error) {
	files, err := os.ReadDir(from)
	if err != nil {
		return 0, fmt.Errorf("reading spool directory %s: %w", from, err)
	}
	moved := 0
	for _, f := range files {
		name, ok := strings.CutSuffix(f.Name(), entrySuffix)
		if !ok {
			continue
		}
		if err := os.Rename(filepath.Join(from, f.Name()), filepath.Join(to, name+mark+entrySuffix)); err != nil {
			return moved, fmt.Errorf("adopting spool entry %s: %w", f.Name(), err)
		}
		moved++
	}
	if moved == 0 {
		return 0, nil
	}
	if err := syncDir(to); err != nil {
		return moved, fmt.Errorf("adopting spool entries: %w", err)
	}
	if err := syncDir(from); err != nil {
		return moved, fmt.Errorf("adopting spool entries: %w", err)
	}
	return moved, nil
}

// pass adopts the entries of directories no process holds, then delivers
// every entry once, returning how many it delivered, how many are left,
// and the errors met.
func (s *Spool) pass(ctx context.Context, deliver func(context.Context, []byte) error) (delivered, left int, err error) {
	var errs []error
	if _, err := s.adopt(); err != nil {
		errs = append(errs, err)
	}
	entries, err := s.List()
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			left++
			continue
		}
		if derr := deliver(ctx, e.Payload); derr != nil {
			errs = append(errs, fmt.Errorf("delivering spool entry %s: %w", e.Name, derr))
			left++
			continue
		}
		if rerr := s.Remove(e.Name); rerr != nil {
			errs = append(errs, rerr)
			left++
			continue
		}
		delivered++
	}
	return delivered, left, errors.Join(errs...)
}
