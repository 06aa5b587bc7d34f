package storage

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParseDurability(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Durability
		wantErr bool
	}{
		{in: "", want: DurabilityOS},
		{in: "os", want: DurabilityOS},
		{in: "fsync", want: DurabilityFsync},
		{in: "FSYNC", wantErr: true},
		{in: "sync", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseDurability(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDurability(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && tt.in != "" && got.String() != tt.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tt.in)
		}
	}
}

// syncedFiles returns the names of the files the syncer holds open: the
// ones it synced and that still exist.
func syncedFiles(y *logSyncer) []string {
	var names []string
	for name := range y.files {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// TestLogSyncerSyncsFromTheNewestSyncedFileOn checks which log files a sync
// covers: every write-ahead log from the newest one synced before (a
// memtable may have filled and rotated since), value logs only when asked,
// and never a file older than the floor or another kind of file.
func TestLogSyncerSyncsFromTheNewestSyncedFileOn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	touch := func(names ...string) {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	touch("00001.mem", "00002.mem", "00001.vlog", "000001.sst", "MANIFEST", "x.mem")
	y := newLogSyncer(dir)
	defer y.close()

	if err := y.sync(false); err != nil {
		t.Fatal(err)
	}
	if got, want := syncedFiles(y), []string{"00001.mem", "00002.mem"}; !slices.Equal(got, want) {
		t.Fatalf("first sync covered %v, want %v", got, want)
	}

	// Forget the open files: the next sync opens exactly those it syncs.
	y.close()
	touch("00003.mem", "00002.vlog")
	if err := y.sync(true); err != nil {
		t.Fatal(err)
	}
	if got, want := syncedFiles(y), []string{"00001.vlog", "00002.mem", "00002.vlog", "00003.mem"}; !slices.Equal(got, want) {
		t.Fatalf("second sync covered %v, want %v", got, want)
	}

	// A file Badger deleted (flushed into a table) is let go.
	if err := os.Remove(filepath.Join(dir, "00002.mem")); err != nil {
		t.Fatal(err)
	}
	if err := y.sync(false); err != nil {
		t.Fatal(err)
	}
	if got, want := syncedFiles(y), []string{"00001.vlog", "00002.vlog", "00003.mem"}; !slices.Equal(got, want) {
		t.Fatalf("third sync holds %v, want %v", got, want)
	}
	y.close()
	if err := y.sync(true); err != nil {
		t.Fatal(err)
	}
	if got, want := syncedFiles(y), []string{"00002.vlog", "00003.mem"}; !slices.Equal(got, want) {
		t.Fatalf("fourth sync covered %v, want %v", got, want)
	}
}

// TestConcurrentSyncsShareOne checks the group sync: a caller whose
// ticket a finished sync covered does not sync again; one that needs the
// value log when the covering sync did not, does.
func TestConcurrentSyncsShareOne(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "00001.mem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00001.vlog"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := newLogSyncer(dir)
	defer y.close()
	// Two callers took tickets; the first one's sync covers both.
	y.tickets.Add(1)
	if err := y.sync(false); err != nil {
		t.Fatal(err)
	}
	y.close() // forget the files: a sync that runs opens them again
	y.synced, y.syncedVlog = 2, 0
	y.tickets.Store(1) // the second caller's ticket will be 2
	if err := y.sync(false); err != nil || len(y.files) != 0 {
		t.Fatalf("a covered caller synced again: %v, %v", err, syncedFiles(y))
	}
	y.tickets.Store(1)
	if err := y.sync(true); err != nil || !slices.Equal(syncedFiles(y), []string{"00001.mem", "00001.vlog"}) {
		t.Fatalf("a caller needing the value log: %v, synced %v", err, syncedFiles(y))
	}
}

// TestSyncDirtyOnlyAfterWrites checks that the background sync does
// nothing without a write, and syncs after one.
func TestSyncDirtyOnlyAfterWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "00001.mem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := newLogSyncer(dir)
	defer y.close()
	if err := y.syncDirty(); err != nil || len(y.files) != 0 {
		t.Fatalf("syncDirty without a write: %v, synced %v", err, syncedFiles(y))
	}
	y.wrote(false)
	if err := y.syncDirty(); err != nil || !slices.Equal(syncedFiles(y), []string{"00001.mem"}) {
		t.Fatalf("syncDirty after a write: %v, synced %v", err, syncedFiles(y))
	}
	if y.dirty.Load() {
		t.Fatal("still dirty after a sync")
	}
}

// TestRecordsSurviveReopenInBothModes records usage on disk in each
// durability mode, closes and reopens the store, and finds every record
// and its spend.
func TestRecordsSurviveReopenInBothModes(t *testing.T) {
	t.Parallel()
	for _, d := range []Durability{DurabilityOS, DurabilityFsync} {
		t.Run(d.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s, err := Open(Options{Dir: dir, Durability: d})
			if err != nil {
				t.Fatal(err)
			}
			const n = 50
			errs := make(chan error, n)
			for i := range n {
				go func() {
					errs <- s.RecordUsage(context.Background(), &UsageRecord{
						ID: newID(t), UserID: "u1", Timestamp: testTime.Add(time.Duration(i) * time.Second),
						Model: "m", Cost: 3, UserPeriod: testTime,
						// Every fifth record is a big one (a long error message).
						ErrorMessage: string(make([]byte, (i%5/4)*2*diskValueThreshold)),
					})
				}()
			}
			for range n {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = Open(Options{Dir: dir, Durability: d})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			recs, err := s.ListUsage(UsageFilter{UserID: "u1"}, 0, 2*n)
			if err != nil || len(recs) != n {
				t.Fatalf("ListUsage: %d records, %v; want %d", len(recs), err, n)
			}
			if spend, err := s.GetSpend(SpendOfUser, "u1", testTime); err != nil || spend != 3*n {
				t.Fatalf("spend %v, %v; want %v", spend, err, 3*n)
			}
		})
	}
}

// TestDeletionsSyncBeforeTheyReturn checks that the admin writes that
// commit in several transactions (DeleteBudget, DeleteUser) sync the logs
// before they return, as every other admin write does through update.
func TestDeletionsSyncBeforeTheyReturn(t *testing.T) {
	t.Parallel()
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.CreateBudget(&Budget{BudgetID: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(&User{UserID: "u", BudgetID: ptr("b"), CreatedAt: testTime, UpdatedAt: testTime}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		do   func() error
	}{
		{"DeleteBudget", func() error { return s.DeleteBudget("b", testTime) }},
		{"DeleteUser", func() error { return s.DeleteUser("u", testTime) }},
	} {
		before := s.syncer.tickets.Load()
		if err := c.do(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s.syncer.tickets.Load() == before {
			t.Errorf("%s returned without syncing the logs", c.name)
		}
	}
}
