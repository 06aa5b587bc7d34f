package storetest

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// usageFixture records a small traffic mix and returns it newest first.
func usageFixture(t *testing.T, s Store) []*storage.UsageRecord {
	t.Helper()
	type row struct {
		user, key, model, endUser string
		ts                        time.Time
	}
	rows := []row{
		{"u1", "k1", "m1", "", at(1 * time.Minute)},
		{"u1", "k1", "m2", "e1", at(2 * time.Minute)},
		{"u2", "k2", "m1", "e1", at(3 * time.Minute)},
		{"u2", "", "m2", "", at(3 * time.Minute)}, // same timestamp: newer id first
		{"u1", "", "m1", "e2", at(4 * time.Minute)},
		{"u2", "k2", "m2", "e1", at(5 * time.Minute)},
		{"", "", "m1", "", at(6 * time.Minute)}, // no user, no key
	}
	var recs []*storage.UsageRecord
	for i, r := range rows {
		rec := record(r.user, r.key, r.ts, storage.Dollars(0.001))
		rec.Model, rec.EndUser = r.model, r.endUser
		rec.Status = "success"
		if i%3 == 1 { // rows 1 and 4: an error each for u1, with and without key
			rec.Status, rec.StatusCode, rec.ErrorMessage = "error", 502, "LLM provider error"
		}
		mustRecord(t, s, rec)
		recs = append(recs, rec)
	}
	slices.SortFunc(recs, func(a, b *storage.UsageRecord) int {
		if c := b.Timestamp.Compare(a.Timestamp); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return recs
}

func testUsageFilters(t *testing.T, s Store) {
	recs := usageFixture(t, s)
	tests := []struct {
		name string
		f    storage.UsageFilter
		keep func(*storage.UsageRecord) bool
	}{
		{"none", storage.UsageFilter{}, func(*storage.UsageRecord) bool { return true }},
		{"user", storage.UsageFilter{UserID: "u1"}, func(r *storage.UsageRecord) bool { return r.UserID == "u1" }},
		{"key", storage.UsageFilter{APIKeyID: "k2"}, func(r *storage.UsageRecord) bool { return r.APIKeyID == "k2" }},
		{"model", storage.UsageFilter{Model: "m2"}, func(r *storage.UsageRecord) bool { return r.Model == "m2" }},
		{"end user", storage.UsageFilter{EndUser: "e1"}, func(r *storage.UsageRecord) bool { return r.EndUser == "e1" }},
		{"inclusive time range", storage.UsageFilter{Start: at(2 * time.Minute), End: at(4 * time.Minute)}, func(r *storage.UsageRecord) bool {
			return !r.Timestamp.Before(at(2*time.Minute)) && !r.Timestamp.After(at(4*time.Minute))
		}},
		{"start only", storage.UsageFilter{Start: at(5 * time.Minute)}, func(r *storage.UsageRecord) bool { return !r.Timestamp.Before(at(5 * time.Minute)) }},
		{"end only", storage.UsageFilter{End: at(time.Minute)}, func(r *storage.UsageRecord) bool { return !r.Timestamp.After(at(time.Minute)) }},
		{"user and model", storage.UsageFilter{UserID: "u1", Model: "m1"}, func(r *storage.UsageRecord) bool { return r.UserID == "u1" && r.Model == "m1" }},
		{"key and other user", storage.UsageFilter{APIKeyID: "k1", UserID: "u2"}, func(*storage.UsageRecord) bool { return false }},
		{"user, end user and time", storage.UsageFilter{UserID: "u2", EndUser: "e1", End: at(4 * time.Minute)}, func(r *storage.UsageRecord) bool {
			return r.UserID == "u2" && r.EndUser == "e1" && !r.Timestamp.After(at(4*time.Minute))
		}},
		{"unknown model", storage.UsageFilter{Model: "nope"}, func(*storage.UsageRecord) bool { return false }},
		{"status error", storage.UsageFilter{Status: "error"}, func(r *storage.UsageRecord) bool { return r.Status == "error" }},
		{"status success", storage.UsageFilter{Status: "success"}, func(r *storage.UsageRecord) bool { return r.Status == "success" }},
		{"key and status", storage.UsageFilter{APIKeyID: "k1", Status: "error"}, func(r *storage.UsageRecord) bool { return r.APIKeyID == "k1" && r.Status == "error" }},
		{"model and status", storage.UsageFilter{Model: "m1", Status: "success"}, func(r *storage.UsageRecord) bool { return r.Model == "m1" && r.Status == "success" }},
	}
	for _, tc := range tests {
		got, err := s.ListUsage(tc.f, 0, 100)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var want []string
		for _, r := range recs {
			if tc.keep(r) {
				want = append(want, r.ID)
			}
		}
		if g := ids(got, usageID); !slices.Equal(g, want) && !(len(g) == 0 && len(want) == 0) {
			t.Errorf("%s: ListUsage = %v, want %v", tc.name, g, want)
		}
		if got == nil {
			t.Errorf("%s: ListUsage = nil, want an empty list", tc.name)
		}
	}
}

func testUsagePagination(t *testing.T, s Store) {
	recs := usageFixture(t, s)
	all := make([]string, len(recs))
	for i, r := range recs {
		all[i] = r.ID
	}
	var u2 []string
	for _, r := range recs {
		if r.UserID == "u2" {
			u2 = append(u2, r.ID)
		}
	}
	var succeeded []string
	for _, r := range recs {
		if r.Status == "success" {
			succeeded = append(succeeded, r.ID)
		}
	}
	tests := []struct {
		f           storage.UsageFilter
		want        []string
		skip, limit int
	}{
		{storage.UsageFilter{}, all, 0, 3},
		{storage.UsageFilter{}, all, 3, 3},
		{storage.UsageFilter{}, all, 6, 3},
		{storage.UsageFilter{}, all, 7, 3},
		{storage.UsageFilter{}, all, 2, 0},
		{storage.UsageFilter{UserID: "u2"}, u2, 1, 1},
		{storage.UsageFilter{UserID: "u2"}, u2, 2, 5},
		{storage.UsageFilter{Status: "success"}, succeeded, 2, 2},
	}
	for _, tc := range tests {
		got, err := s.ListUsage(tc.f, tc.skip, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		want := tc.want[min(tc.skip, len(tc.want)):min(tc.skip+tc.limit, len(tc.want))]
		if g := ids(got, usageID); !slices.Equal(g, want) {
			t.Errorf("ListUsage(%+v, %d, %d) = %v, want %v", tc.f, tc.skip, tc.limit, g, want)
		}
	}
}

func testUsageRoundTrip(t *testing.T, s Store) {
	rec := &storage.UsageRecord{
		ID: newID("usage"), RequestID: "req-1", UserID: "u", APIKeyID: "k", EndUser: "end",
		Timestamp: at(time.Second + 123*time.Microsecond), Model: "claude", Provider: "anthropic", Endpoint: "/v1/messages",
		PromptTokens: 11, CompletionTokens: 22, TotalTokens: 33, Cost: 123456789, Status: "error",
		StatusCode: 502, LatencyMS: 1500, ErrorMessage: "upstream failed", UsageSource: "estimated",
		ExceededReservation: true, UserPeriod: T0, KeyPeriod: at(time.Hour),
	}
	mustRecord(t, s, rec)
	zero := &storage.UsageRecord{ID: newID("usage"), UserID: "u", Timestamp: at(time.Minute), Status: "success"}
	mustRecord(t, s, zero)
	got, err := s.ListUsage(storage.UsageFilter{UserID: "u"}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !reflect.DeepEqual(&got[1], rec) || !reflect.DeepEqual(&got[0], zero) {
		t.Fatalf("ListUsage = %+v\nwant %+v and %+v", got, zero, rec)
	}
}

func testRecordUsageRejects(t *testing.T, s Store) {
	tests := map[string]*storage.UsageRecord{
		"empty id":       {UserID: "u", Timestamp: T0},
		"zero timestamp": {ID: newID("usage"), UserID: "u"},
		"negative cost":  {ID: newID("usage"), UserID: "u", Timestamp: T0, Cost: -1},
		"NUL in user id": {ID: newID("usage"), UserID: "a\x00b", Timestamp: T0},
	}
	for name, rec := range tests {
		if err := s.RecordUsage(context.Background(), rec); err == nil {
			t.Errorf("%s: RecordUsage succeeded", name)
		}
	}
	if recs, _ := s.ListUsage(storage.UsageFilter{}, 0, 10); len(recs) != 0 {
		t.Fatalf("rejected records were stored: %v", recs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.RecordUsage(ctx, record("u", "", T0, 0)); err == nil {
		t.Fatal("RecordUsage with a done context succeeded")
	}
}

// A record delivered again (a spool after a lost answer) is listed once.
// Whether its cost is charged again differs: the PostgreSQL store is
// idempotent by id, the Badger store (which has no spool) adds it again.
func testRedeliveredUsage(t *testing.T, s Store) {
	rec := record("rita", "", T0, storage.Dollars(1))
	mustRecord(t, s, rec)
	again := *rec
	mustRecord(t, s, &again)
	recs, err := s.ListUsage(storage.UsageFilter{UserID: "rita"}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("a redelivered record is listed %d times", len(recs))
	}
}

func testSpendPerPeriod(t *testing.T, s Store) {
	p1, p2, p3 := T0, at(24*time.Hour), at(48*time.Hour)
	charges := []struct {
		user, key  string
		userPeriod time.Time
		keyPeriod  time.Time
		cost       storage.Money
	}{
		{"sam", "sk", p1, p1, storage.Dollars(0.1)},
		{"sam", "sk", p1, p2, storage.Dollars(0.2)},
		{"sam", "", p2, time.Time{}, storage.Dollars(0.3)},
		{"sam", "sk", p3, p2, 0}, // zero cost: stored, charges nothing
		{"tom", "tk", p1, p1, storage.Dollars(5)},
	}
	for i, c := range charges {
		rec := record(c.user, c.key, at(time.Duration(i)*time.Second), c.cost)
		rec.UserPeriod, rec.KeyPeriod = c.userPeriod, c.keyPeriod
		mustRecord(t, s, rec)
	}
	spends := []struct {
		owner  storage.SpendOwner
		id     string
		period time.Time
		want   storage.Money
	}{
		{storage.SpendOfUser, "sam", p1, storage.Dollars(0.3)},
		{storage.SpendOfUser, "sam", p2, storage.Dollars(0.3)},
		{storage.SpendOfUser, "sam", p3, 0},
		{storage.SpendOfKey, "sk", p1, storage.Dollars(0.1)},
		{storage.SpendOfKey, "sk", p2, storage.Dollars(0.2)},
		{storage.SpendOfUser, "tom", p1, storage.Dollars(5)},
		{storage.SpendOfKey, "sam", p1, 0}, // owners do not mix
		{storage.SpendOfUser, "nobody", p1, 0},
	}
	for _, sp := range spends {
		got, err := s.GetSpend(sp.owner, sp.id, sp.period)
		if err != nil {
			t.Fatal(err)
		}
		if got != sp.want {
			t.Errorf("GetSpend(%c, %s, %v) = %s, want %s", sp.owner, sp.id, sp.period, got, sp.want)
		}
	}
	periods, err := s.ListSpendPeriods(storage.SpendOfUser, "sam", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.SpendPeriod{{Start: p2, Spend: storage.Dollars(0.3)}, {Start: p1, Spend: storage.Dollars(0.3)}}
	if !spendPeriodsEqual(periods, want) {
		t.Fatalf("ListSpendPeriods = %v, want %v", periods, want)
	}
	if periods, _ := s.ListSpendPeriods(storage.SpendOfUser, "sam", 1); !spendPeriodsEqual(periods, want[:1]) {
		t.Fatalf("ListSpendPeriods limit 1 = %v", periods)
	}
	if periods, err := s.ListSpendPeriods(storage.SpendOfKey, "none", 10); err != nil || periods == nil || len(periods) != 0 {
		t.Fatalf("ListSpendPeriods of an account without spend = %#v, %v", periods, err)
	}
}

func spendPeriodsEqual(a, b []storage.SpendPeriod) bool {
	return slices.EqualFunc(a, b, func(x, y storage.SpendPeriod) bool { return x.Start.Equal(y.Start) && x.Spend == y.Spend })
}

// Concurrent records of the same accounts lose no cost: the group commit
// sums them exactly, to the nano-dollar.
func testConcurrentUsage(t *testing.T, s Store) {
	const writers, each = 8, 25
	cost := storage.Money(1_234_567) // not a round number of dollars
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rec := record("vic", "vk", at(time.Duration(w*each+i)*time.Millisecond), cost)
				rec.UserPeriod, rec.KeyPeriod = T0, T0
				if err := s.RecordUsage(context.Background(), rec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, owner := range []storage.SpendOwner{storage.SpendOfUser, storage.SpendOfKey} {
		id := map[storage.SpendOwner]string{storage.SpendOfUser: "vic", storage.SpendOfKey: "vk"}[owner]
		got, err := s.GetSpend(owner, id, T0)
		if err != nil {
			t.Fatal(err)
		}
		if want := cost * writers * each; got != want {
			t.Fatalf("spend of %c/%s = %s, want %s", owner, id, got, want)
		}
	}
	if recs, _ := s.ListUsage(storage.UsageFilter{UserID: "vic"}, 0, 1000); len(recs) != writers*each {
		t.Fatalf("%d records listed, want %d", len(recs), writers*each)
	}
}
