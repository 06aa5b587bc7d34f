package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/usagesum"
)

func payloadsOf(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func noStoreSync() error { return nil }

// TestJournalKeepsWhatWasAppended appends entries, reopens the journal and
// finds them, in order; restarting disowns them.
func TestJournalKeepsWhatWasAppended(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, got, err := openJournal(dir)
	if err != nil || len(got) != 0 {
		t.Fatalf("new journal: %q, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, journalName)); err != nil || fi.Size() != journalSize {
		t.Fatalf("journal file: %v, %v; want %d bytes", fi, err, journalSize)
	}
	for _, batch := range [][][]byte{payloadsOf("a", "bb"), payloadsOf("ccc")} {
		if err := j.append(batch, noStoreSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.close(false); err != nil {
		t.Fatal(err)
	}

	j, got, err = openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := payloadsOf("a", "bb", "ccc"); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("reopened: %q, want %q", got, want)
	}
	// Reopened with entries, the journal restarts (after a store sync)
	// before it takes more.
	synced := 0
	if err := j.append(payloadsOf("d"), func() error { synced++; return nil }); err != nil {
		t.Fatal(err)
	}
	if synced != 1 {
		t.Fatalf("store synced %d times before the restart, want 1", synced)
	}
	if err := j.close(true); err != nil { // clean: restarts
		t.Fatal(err)
	}
	if _, got, err = openJournal(dir); err != nil || len(got) != 0 {
		t.Fatalf("after a clean close: %q, %v; want nothing", got, err)
	}
}

// TestJournalScanStopsAtADamagedEntry checks that a torn or foreign entry
// ends the scan: what follows it is not returned.
func TestJournalScanStopsAtADamagedEntry(t *testing.T) {
	t.Parallel()
	entry := func(gen uint64, p string) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(p)))
		b = append(b, 0, 0, 0, 0)
		b = binary.LittleEndian.AppendUint64(b, gen)
		b = append(b, p...)
		binary.LittleEndian.PutUint32(b[4:], crcOf(b[8:]))
		return b
	}
	file := func(gen uint64, entries ...[]byte) []byte {
		b := make([]byte, journalHeaderSize, 1<<14)
		copy(b, appendJournalHeader(nil, gen))
		for _, e := range entries {
			b = append(b, e...)
		}
		return append(b, make([]byte, 64)...)
	}
	torn := entry(7, "second")
	torn[len(torn)-1] ^= 1
	long := entry(7, "second")
	binary.LittleEndian.PutUint32(long, 1<<30)
	tests := []struct {
		name string
		data []byte
		want []string
	}{
		{"whole", file(7, entry(7, "first"), entry(7, "second")), []string{"first", "second"}},
		{"bad checksum", file(7, entry(7, "first"), torn, entry(7, "third")), []string{"first"}},
		{"older generation", file(7, entry(7, "first"), entry(6, "stale")), []string{"first"}},
		{"length past the end", file(7, entry(7, "first"), long), []string{"first"}},
		{"empty", file(7), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen, ok := parseJournalHeader(tt.data)
			if !ok || gen != 7 {
				t.Fatalf("header: %d, %v", gen, ok)
			}
			got := scanJournal(tt.data, gen)
			if !slices.EqualFunc(got, payloadsOf(tt.want...), slices.Equal) {
				t.Fatalf("scan: %q, want %q", got, tt.want)
			}
		})
	}
	bad := file(7)
	bad[9] ^= 1
	if _, ok := parseJournalHeader(bad); ok {
		t.Fatal("a damaged header parsed")
	}
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, journalCRC) }

// TestJournalRestartsWhenFull fills the journal: the append that does not
// fit syncs the store first and starts a new generation; a batch larger
// than the journal is refused with errJournalFull.
func TestJournalRestartsWhenFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, _, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close(false)
	big := make([]byte, journalSize/4)
	synced := 0
	syncStore := func() error { synced++; return nil }
	for range 3 {
		if err := j.append([][]byte{big}, syncStore); err != nil {
			t.Fatal(err)
		}
	}
	if synced != 0 {
		t.Fatalf("store synced %d times with room left", synced)
	}
	gen := j.gen
	if err := j.append([][]byte{big, big}, syncStore); err != nil {
		t.Fatal(err)
	}
	if synced != 1 || j.gen != gen+1 {
		t.Fatalf("after the full append: %d syncs, generation %d; want 1, %d", synced, j.gen, gen+1)
	}
	if err := j.append([][]byte{make([]byte, journalSize)}, syncStore); !errors.Is(err, errJournalFull) {
		t.Fatalf("oversized batch: %v, want errJournalFull", err)
	}
	// A store that cannot sync keeps the journal as it is.
	failed := errors.New("disk gone")
	if err := j.append([][]byte{big}, noStoreSync); err != nil {
		t.Fatal(err)
	}
	off := j.off
	if err := j.append([][]byte{big, big}, func() error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("append with a failing store sync: %v", err)
	}
	if j.off != off || j.gen != gen+1 {
		t.Fatal("the journal restarted although the store was not synced")
	}
}

// TestJournalTrimWaitsForTheStoreSync checks that trim restarts only a
// journal with entries, after the store sync, and not when the writer
// appended during that sync.
func TestJournalTrimWaitsForTheStoreSync(t *testing.T) {
	t.Parallel()
	j, _, err := openJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer j.close(false)
	synced := 0
	if err := j.trim(func() error { synced++; return nil }); err != nil || synced != 0 {
		t.Fatalf("trim of an empty journal: %v, %d store syncs", err, synced)
	}
	if err := j.append(payloadsOf("a"), noStoreSync); err != nil {
		t.Fatal(err)
	}
	gen := j.gen
	// An append racing the store sync: the trim leaves the journal.
	if err := j.trim(func() error { return j.append(payloadsOf("b"), noStoreSync) }); err != nil {
		t.Fatal(err)
	}
	if j.gen != gen {
		t.Fatal("trim restarted a journal appended to during its store sync")
	}
	if err := j.trim(noStoreSync); err != nil || j.gen != gen+1 || j.off != journalHeaderSize {
		t.Fatalf("trim: %v, generation %d, offset %d", err, j.gen, j.off)
	}
}

// journalOfRecords records recs in a store in fsync mode and returns its
// journal as it stood when the last RecordUsage returned: what a power
// loss leaves beside a database that lost them. The trim never runs: the
// sync interval is an hour.
func journalOfRecords(t *testing.T, recs []*UsageRecord) []byte {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Durability: DurabilityFsync, SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := s.RecordUsage(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, journalName))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestJournalRestoresWhatTheDatabaseLost simulates a power loss in fsync
// mode: the database loses records that RecordUsage had confirmed, the
// journal keeps them. Reopening restores each missing record with its
// spend and summaries, exactly once: a record the database kept is not
// counted again, and neither is one restored already.
func TestJournalRestoresWhatTheDatabaseLost(t *testing.T) {
	t.Parallel()
	recs := make([]*UsageRecord, 5)
	for i := range recs {
		recs[i] = &UsageRecord{
			ID: fmt.Sprintf("rec-%d", i), UserID: "u1", APIKeyID: "k1", Timestamp: testTime.Add(time.Duration(i) * time.Minute),
			Model: "gpt-test", Cost: Money(10 + i), UserPeriod: testTime, KeyPeriod: testTime,
			PromptTokens: 100, CompletionTokens: 20, TotalTokens: 120, Status: "success", StatusCode: 200,
		}
	}
	journal := journalOfRecords(t, recs)
	ref, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := ref.RecordUsage(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	summaryQuery := usagesum.Query{Interval: usagesum.Hour, GroupBy: usagesum.Model}
	wantSummary, err := ref.SummarizeUsage(summaryQuery)
	if err != nil || len(wantSummary) == 0 {
		t.Fatalf("reference summary: %v, %v", wantSummary, err)
	}
	_ = ref.Close()
	var total Money
	for _, r := range recs {
		total += r.Cost
	}

	// The database kept the first two records: it only lost the rest.
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs[:2] {
		if err := s.RecordUsage(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, journalName), journal, 0o600); err != nil {
		t.Fatal(err)
	}

	for round := range 2 { // the second open finds nothing to restore
		s, err := Open(Options{Dir: dir, Durability: DurabilityFsync})
		if err != nil {
			t.Fatalf("open %d: %v", round, err)
		}
		got, err := s.ListUsage(UsageFilter{APIKeyID: "k1"}, 0, 100)
		if err != nil || len(got) != len(recs) {
			t.Fatalf("open %d: %d records, %v; want %d", round, len(got), err, len(recs))
		}
		for _, owner := range []SpendOwner{SpendOfUser, SpendOfKey} {
			id := map[SpendOwner]string{SpendOfUser: "u1", SpendOfKey: "k1"}[owner]
			if spend, err := s.GetSpend(owner, id, testTime); err != nil || spend != total {
				t.Fatalf("open %d: spend of %s %v, %v; want %v", round, id, spend, err, total)
			}
		}
		if got, err := s.SummarizeUsage(summaryQuery); err != nil || !reflect.DeepEqual(got, wantSummary) {
			t.Fatalf("open %d: summary %+v, %v; want %+v", round, got, err, wantSummary)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
