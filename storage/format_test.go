package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// writeRaw opens dir with Badger directly and lets fn write whatever a
// store of another format would hold.
func writeRaw(t *testing.T, dir string, fn func(txn *badger.Txn) error) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatalf("badger.Open: %v", err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatalf("writing: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func floatCounter(usd float64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, math.Float64bits(usd))
	return b
}

func TestNewStoreRecordsItsFormatVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(formatKey)
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		got = string(v)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got != fmt.Sprint(FormatVersion) {
		t.Fatalf("recorded format %q, want %d", got, FormatVersion)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir}) // its own version opens again
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	_ = s.Close()
}

func TestOpenRefusesAnUnknownFormat(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		version string
		want    []string
	}{
		{fmt.Sprint(FormatVersion + 1), []string{fmt.Sprintf("format version %d", FormatVersion+1), fmt.Sprintf("versions up to %d", FormatVersion)}},
		{"999", []string{"format version 999"}},
		{"x1", []string{`"x1" is not a version number`}},
	} {
		t.Run(tt.version, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeRaw(t, dir, func(txn *badger.Txn) error {
				if err := txn.Set(formatKey, []byte(tt.version)); err != nil {
					return err
				}
				return txn.Set(spendKey(SpendOfUser, "u", time.Time{}), []byte("not-what-we-write"))
			})
			s, err := Open(Options{Dir: dir})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open accepted an unknown format")
			}
			if !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("err = %v, want ErrUnknownFormat", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not say %q", err, w)
				}
			}
			// Refusing changed nothing: the version is still there.
			writeRaw(t, dir, func(txn *badger.Txn) error {
				item, err := txn.Get(formatKey)
				if err != nil {
					return err
				}
				return item.Value(func(v []byte) error {
					if string(v) != tt.version {
						return fmt.Errorf("version rewritten to %q", v)
					}
					return nil
				})
			})
		})
	}
}

// A store written before format versions (version 1) kept spend as float64
// dollars and money in JSON as float numbers; it opens with every amount
// exact to the nano-dollar.
func TestOpenMigratesFormat1(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const counters = 2*migrationBatch + 7 // several migration batches
	period := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	writeRaw(t, dir, func(txn *badger.Txn) error {
		for i := range counters {
			key := spendKey(SpendOfUser, fmt.Sprintf("u%05d", i), period)
			if err := txn.Set(key, floatCounter(0.1+0.2)); err != nil { // 0.30000000000000004
				return err
			}
		}
		if err := txn.Set(spendKey(SpendOfKey, "k1", period), floatCounter(0.096)); err != nil {
			return err
		}
		if err := txn.Set(apiKeyKey("k1"), []byte(`{"id":"k1","key_hash":"h","key_prefix":"sk-x","user_id":"u00000","is_active":true,"max_budget":0.1,"created_at":"2026-11-01T00:00:00Z"}`)); err != nil {
			return err
		}
		rec := `{"id":"r1","user_id":"u00000","timestamp":"2026-11-02T00:00:00Z","model":"m","cost":6.000000000000001e-08,"status":"success"}`
		return txn.Set(usageTimeKey(usageSuffix(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), "r1")), []byte(rec))
	})

	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	for _, i := range []int{0, migrationBatch - 1, migrationBatch, counters - 1} {
		got, err := s.GetSpend(SpendOfUser, fmt.Sprintf("u%05d", i), period)
		if err != nil || got != 300_000_000 {
			t.Errorf("spend of u%05d = %d, %v; want 0.3 dollars exactly", i, got, err)
		}
	}
	if got, err := s.GetSpend(SpendOfKey, "k1", period); err != nil || got.String() != "0.096" {
		t.Errorf("key spend = %s, %v; want 0.096", got, err)
	}
	k, err := s.GetKey("k1")
	if err != nil || k.MaxBudget == nil || k.MaxBudget.String() != "0.1" {
		t.Errorf("key max_budget = %v, %v; want 0.1", k, err)
	}
	recs, err := s.ListUsage(UsageFilter{}, 0, 10)
	if err != nil || len(recs) != 1 || recs[0].Cost.String() != "0.00000006" {
		t.Errorf("usage = %+v, %v; want one record costing 0.00000006", recs, err)
	}
	if v, err := readFormat(s.db); err != nil || v != FormatVersion {
		t.Errorf("format after migration = %d, %v", v, err)
	}
}

// A migration cut short resumes after the last counter it converted and
// converts no counter twice.
func TestFormatMigrationResumes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	converted := spendKey(SpendOfUser, "a", time.Time{})
	pending := spendKey(SpendOfUser, "b", time.Time{})
	writeRaw(t, dir, func(txn *badger.Txn) error {
		if err := txn.Set(converted, encodeSpend(Dollars(1.25))); err != nil {
			return err
		}
		if err := txn.Set(pending, floatCounter(2.5)); err != nil {
			return err
		}
		return txn.Set(migrationKey, converted)
	})
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	for _, tt := range []struct {
		id   string
		want Money
	}{{"a", Dollars(1.25)}, {"b", Dollars(2.5)}} {
		if got, err := s.GetSpend(SpendOfUser, tt.id, time.Time{}); err != nil || got != tt.want {
			t.Errorf("spend of %s = %s, %v; want %s", tt.id, got, err, tt.want)
		}
	}
	if found, _ := keyExists(s, migrationKey); found {
		t.Error("migration progress left behind")
	}
}

func keyExists(s *Store, key []byte) (found bool, err error) {
	err = s.view(func(txn *badger.Txn) error {
		found, err = exists(txn, key)
		return err
	})
	return found, err
}

// A format 2 store gets its indexes of active users and of usage by model.
func TestOpenMigratesFormat2(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	at := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	writeRaw(t, dir, func(txn *badger.Txn) error {
		if err := txn.Set(formatKey, []byte("2")); err != nil {
			return err
		}
		for i := range migrationBatch + 3 {
			u := fmt.Sprintf(`{"user_id":"u%05d","created_at":"2026-11-01T00:00:00Z","updated_at":"2026-11-01T00:00:00Z"}`, i)
			if i%2 == 1 {
				u = fmt.Sprintf(`{"user_id":"u%05d","deleted_at":"2026-11-01T00:00:00Z","created_at":"2026-11-01T00:00:00Z","updated_at":"2026-11-01T00:00:00Z"}`, i)
			}
			if err := txn.Set(userKey(fmt.Sprintf("u%05d", i)), []byte(u)); err != nil {
				return err
			}
		}
		for i, model := range []string{"gpt-4o", "claude", "gpt-4o"} {
			id := fmt.Sprintf("r%d", i)
			rec := fmt.Sprintf(`{"id":%q,"user_id":"u00000","timestamp":"2026-11-02T00:00:00Z","model":%q,"cost":0.5,"status":"success"}`, id, model)
			if err := txn.Set(usageTimeKey(usageSuffix(at, id)), []byte(rec)); err != nil {
				return err
			}
		}
		return nil
	})
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	users, err := s.ListUsers(0, 2*migrationBatch)
	if err != nil || len(users) != (migrationBatch+3+1)/2 {
		t.Fatalf("ListUsers = %d users, %v; want the %d active ones", len(users), err, (migrationBatch+3+1)/2)
	}
	for _, u := range users {
		if u.Deleted() {
			t.Fatalf("deleted user %s listed", u.UserID)
		}
	}
	recs, err := s.ListUsage(UsageFilter{Model: "gpt-4o"}, 0, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("usage of gpt-4o = %d records, %v; want 2", len(recs), err)
	}
	if v, err := readFormat(s.db); err != nil || v != FormatVersion {
		t.Errorf("format after migration = %d, %v", v, err)
	}
}
