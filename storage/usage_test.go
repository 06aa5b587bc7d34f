package storage

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// TestRecordUsageConcurrent records usage of one user and key from 50
// goroutines. Costs are binary fractions, so sums are exact.
func TestRecordUsageConcurrent(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	key := mustCreateKey(t, s, "olga")

	const goroutines, perGoroutine = 50, 10
	costs := []Money{Dollars(0.25), Dollars(0.5), 0, Dollars(1.125), Dollars(2)}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		want Money
		ids  = map[string]bool{}
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				rec := &UsageRecord{
					ID:        newID(t),
					UserID:    "olga",
					APIKeyID:  key.ID,
					Timestamp: testTime.Add(time.Duration(g*perGoroutine+i) * time.Millisecond),
					Model:     "gpt-4o",
					Cost:      costs[(g+i)%len(costs)],
				}
				if err := s.RecordUsage(context.Background(), rec); err != nil {
					t.Errorf("RecordUsage: %v", err)
					return
				}
				mu.Lock()
				want += rec.Cost
				ids[rec.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	userSpend, err := s.GetSpend(SpendOfUser, "olga", time.Time{})
	if err != nil {
		t.Fatalf("GetSpend(user): %v", err)
	}
	keySpend, err := s.GetSpend(SpendOfKey, key.ID, time.Time{})
	if err != nil {
		t.Fatalf("GetSpend(key): %v", err)
	}
	if userSpend != want || keySpend != want {
		t.Errorf("user spend %v, key spend %v; want %v", userSpend, keySpend, want)
	}

	for _, f := range []UsageFilter{{}, {UserID: "olga"}, {APIKeyID: key.ID}} {
		recs, err := s.ListUsage(f, 0, goroutines*perGoroutine+1)
		if err != nil {
			t.Fatalf("ListUsage(%+v): %v", f, err)
		}
		if len(recs) != len(ids) {
			t.Errorf("ListUsage(%+v) returned %d records, want %d", f, len(recs), len(ids))
		}
		for _, r := range recs {
			if !ids[r.ID] {
				t.Errorf("ListUsage(%+v) returned unknown record %s", f, r.ID)
			}
		}
	}
}

func TestRecordUsageWithoutUserOrKey(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	rec := &UsageRecord{ID: "r1", UserID: "unknown", APIKeyID: "unknown-key", Timestamp: testTime, Cost: Dollars(1)}
	if err := s.RecordUsage(context.Background(), rec); err != nil {
		t.Fatalf("RecordUsage: %v", err)
	}
	if _, err := s.GetUser("unknown"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecordUsage created the user: %v", err)
	}
	if _, err := s.GetKey("unknown-key"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecordUsage created the key: %v", err)
	}
	recs, err := s.ListUsage(UsageFilter{UserID: "unknown"}, 0, 10)
	if err != nil {
		t.Fatalf("ListUsage: %v", err)
	}
	if len(recs) != 1 || !reflect.DeepEqual(recs[0], *rec) {
		t.Errorf("ListUsage = %+v, want [%+v]", recs, *rec)
	}
}

func TestRecordUsageRejects(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name string
		ctx  context.Context
		rec  UsageRecord
		want error
	}{
		{"no id", context.Background(), UsageRecord{Timestamp: testTime}, nil},
		{"no timestamp", context.Background(), UsageRecord{ID: "r"}, nil},
		{"negative cost", context.Background(), UsageRecord{ID: "r", Timestamp: testTime, Cost: -1}, nil},
		{"NUL in user id", context.Background(), UsageRecord{ID: "r", Timestamp: testTime, UserID: "a\x00"}, nil},
		{"canceled context", canceled, UsageRecord{ID: "r", Timestamp: testTime}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.RecordUsage(tt.ctx, &tt.rec)
			if err == nil {
				t.Fatal("RecordUsage succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	if recs, err := s.ListUsage(UsageFilter{}, 0, 10); err != nil || len(recs) != 0 {
		t.Errorf("ListUsage = %v, %v; want nothing stored", recs, err)
	}
}

func TestListUsageFilters(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	at := func(minutes int) time.Time { return testTime.Add(time.Duration(minutes) * time.Minute) }
	records := []UsageRecord{
		{ID: "r0", UserID: "ab", APIKeyID: "k10", Timestamp: at(0), Model: "gpt-4o"},
		{ID: "r1", UserID: "a", APIKeyID: "k1", Timestamp: at(1), Model: "gpt-4o"},
		{ID: "r2", UserID: "b", APIKeyID: "k2", Timestamp: at(2), Model: "gpt-4o"},
		{ID: "r3", UserID: "a", APIKeyID: "k1", Timestamp: at(3), Model: "claude"},
		{ID: "r4", UserID: "a", Timestamp: at(4), Model: "gpt-4o"}, // master key
		{ID: "r5", UserID: "b", APIKeyID: "k2", Timestamp: at(5), Model: "claude"},
		{ID: "r6", UserID: "a", APIKeyID: "k3", Timestamp: at(6), Model: "gpt-4o"},
		{ID: "r7", UserID: "a", APIKeyID: "k1", Timestamp: at(6), Model: "gpt-4o"}, // same time as r6
	}
	for i := range records {
		records[i].Provider = "openai"
		records[i].Status = "success"
		records[i].Cost = Dollars(0.5)
		if err := s.RecordUsage(context.Background(), &records[i]); err != nil {
			t.Fatalf("RecordUsage: %v", err)
		}
	}

	tests := []struct {
		name        string
		filter      UsageFilter
		skip, limit int
		want        []string
	}{
		{"all", UsageFilter{}, 0, 100, []string{"r7", "r6", "r5", "r4", "r3", "r2", "r1", "r0"}},
		{"user", UsageFilter{UserID: "a"}, 0, 100, []string{"r7", "r6", "r4", "r3", "r1"}},
		{"user with longer namesake", UsageFilter{UserID: "ab"}, 0, 100, []string{"r0"}},
		{"key", UsageFilter{APIKeyID: "k1"}, 0, 100, []string{"r7", "r3", "r1"}},
		{"model", UsageFilter{Model: "claude"}, 0, 100, []string{"r5", "r3"}},
		{"user and model", UsageFilter{UserID: "a", Model: "gpt-4o"}, 0, 100, []string{"r7", "r6", "r4", "r1"}},
		{"key and user", UsageFilter{APIKeyID: "k2", UserID: "b"}, 0, 100, []string{"r5", "r2"}},
		{"key and other user", UsageFilter{APIKeyID: "k1", UserID: "b"}, 0, 100, []string{}},
		{"start", UsageFilter{Start: at(3)}, 0, 100, []string{"r7", "r6", "r5", "r4", "r3"}},
		{"end", UsageFilter{End: at(2)}, 0, 100, []string{"r2", "r1", "r0"}},
		{"end is inclusive", UsageFilter{End: at(6)}, 0, 2, []string{"r7", "r6"}},
		{"range and user", UsageFilter{UserID: "a", Start: at(2), End: at(5)}, 0, 100, []string{"r4", "r3"}},
		{"range and key", UsageFilter{APIKeyID: "k1", Start: at(1), End: at(3)}, 0, 100, []string{"r3", "r1"}},
		{"page", UsageFilter{}, 1, 2, []string{"r6", "r5"}},
		{"user page", UsageFilter{UserID: "a"}, 2, 2, []string{"r4", "r3"}},
		{"model page", UsageFilter{Model: "gpt-4o"}, 1, 2, []string{"r6", "r4"}},
		{"skip past end", UsageFilter{UserID: "a"}, 5, 2, []string{}},
		{"unknown user", UsageFilter{UserID: "zed"}, 0, 100, []string{}},
		{"empty range", UsageFilter{Start: at(10)}, 0, 100, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			recs, err := s.ListUsage(tt.filter, tt.skip, tt.limit)
			if err != nil {
				t.Fatalf("ListUsage: %v", err)
			}
			got := []string{}
			for _, r := range recs {
				got = append(got, r.ID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListUsage(%+v, %d, %d) = %v, want %v", tt.filter, tt.skip, tt.limit, got, tt.want)
			}
		})
	}

	t.Run("round trip", func(t *testing.T) {
		t.Parallel()
		recs, err := s.ListUsage(UsageFilter{APIKeyID: "k3"}, 0, 1)
		if err != nil {
			t.Fatalf("ListUsage: %v", err)
		}
		if len(recs) != 1 || !reflect.DeepEqual(recs[0], records[6]) {
			t.Errorf("ListUsage = %+v, want [%+v]", recs, records[6])
		}
	})
}

// TestListUsageByUserStaysInIndex stores 100,000 records of one user and a few
// of another, and checks that listing the second user visits only that
// user's index entries.
func TestListUsageByUserStaysInIndex(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	const busy, quiet = 100_000, 10
	var batch []*usageRequest
	flush := func() {
		t.Helper()
		s.commitUsage(batch)
		for _, req := range batch {
			if err := <-req.done; err != nil {
				t.Fatalf("committing usage: %v", err)
			}
		}
		batch = batch[:0]
	}
	for i := range busy + quiet {
		rec := &UsageRecord{
			ID:        fmt.Sprintf("r%06d", i),
			UserID:    "busy",
			APIKeyID:  "busy-key",
			Timestamp: testTime.Add(time.Duration(i) * time.Second),
			Cost:      Dollars(0.25),
		}
		if i%(busy/quiet) == 0 && i/(busy/quiet) < quiet {
			rec.UserID, rec.APIKeyID = "quiet", "quiet-key"
		}
		req, err := newUsageRequest(rec)
		if err != nil {
			t.Fatalf("newUsageRequest: %v", err)
		}
		batch = append(batch, req)
		if len(batch) == maxUsageBatch {
			flush()
		}
	}
	flush()

	tests := []struct {
		name        string
		filter      UsageFilter
		limit       int
		wantRecs    int
		wantVisited int
	}{
		{"quiet user", UsageFilter{UserID: "quiet"}, 100, quiet, quiet},
		{"quiet key", UsageFilter{APIKeyID: "quiet-key"}, 100, quiet, quiet},
		{"quiet user, first page", UsageFilter{UserID: "quiet"}, 3, 3, 3},
		{"busy user in a range", UsageFilter{
			UserID: "busy",
			Start:  testTime.Add(100 * time.Second),
			End:    testTime.Add(149 * time.Second),
		}, 100, 50, 51}, // 50 seconds, plus the entry below Start that ends the scan
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			recs, visited, err := s.listUsage(tt.filter, 0, tt.limit)
			if err != nil {
				t.Fatalf("listUsage: %v", err)
			}
			if len(recs) != tt.wantRecs {
				t.Errorf("got %d records, want %d", len(recs), tt.wantRecs)
			}
			if visited > tt.wantVisited {
				t.Errorf("visited %d index entries, want at most %d", visited, tt.wantVisited)
			}
			for i, r := range recs {
				if want := tt.filter.UserID; want != "" && r.UserID != want {
					t.Errorf("record %s belongs to %s", r.ID, r.UserID)
				}
				if i > 0 && !r.Timestamp.Before(recs[i-1].Timestamp) {
					t.Errorf("records not newest first at %d", i)
				}
			}
		})
	}
}

// TestSpendIsKeptPerPeriod charges records to different budget periods:
// each period has its own counter, the history lists them newest first,
// and deleting a key removes its counters.
func TestSpendIsKeptPerPeriod(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	mustCreateUser(t, s, "pia")
	key := mustCreateKey(t, s, "pia")
	p1 := testTime
	p2 := testTime.Add(24 * time.Hour)
	for i, c := range []struct {
		period time.Time
		cost   float64
	}{{p1, 0.5}, {p1, 0.25}, {p2, 2}} {
		rec := &UsageRecord{
			ID: newID(t), UserID: "pia", APIKeyID: key.ID, Timestamp: testTime.Add(time.Duration(i) * time.Minute),
			Cost: Dollars(c.cost), UserPeriod: c.period, KeyPeriod: c.period,
		}
		if err := s.RecordUsage(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		owner SpendOwner
		id    string
		start time.Time
		want  float64
	}{
		{SpendOfUser, "pia", p1, 0.75},
		{SpendOfUser, "pia", p2, 2},
		{SpendOfUser, "pia", p2.Add(time.Hour), 0},
		{SpendOfKey, key.ID, p1, 0.75},
		{SpendOfKey, key.ID, p2, 2},
		{SpendOfUser, "nobody", p1, 0},
	} {
		got, err := s.GetSpend(tt.owner, tt.id, tt.start)
		if err != nil || got != Dollars(tt.want) {
			t.Errorf("GetSpend(%c, %s, %v) = %v, %v; want %v", tt.owner, tt.id, tt.start, got, err, tt.want)
		}
	}
	periods, err := s.ListSpendPeriods(SpendOfUser, "pia", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(periods) != 2 || !periods[0].Start.Equal(p2) || periods[0].Spend != Dollars(2) || !periods[1].Start.Equal(p1) || periods[1].Spend != Dollars(0.75) {
		t.Fatalf("periods = %+v", periods)
	}
	if err := s.DeleteKey(key.ID); err != nil {
		t.Fatal(err)
	}
	if periods, err := s.ListSpendPeriods(SpendOfKey, key.ID, 10); err != nil || len(periods) != 0 {
		t.Fatalf("key counters after delete: %+v, %v", periods, err)
	}
}
