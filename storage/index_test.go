package storage

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// GET /v1/users with a large skip reads only the page: skipped users cost
// an index key each, not a decoded record (issue #10.11).
func TestListUsersDecodesOnlyThePage(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	const users = 1200
	for i := range users {
		mustCreateUser(t, s, fmt.Sprintf("user-%05d", i))
	}
	for i := 0; i < users; i += 3 { // deleted users are neither listed nor read
		if err := s.DeleteUser(fmt.Sprintf("user-%05d", i), testTime); err != nil {
			t.Fatal(err)
		}
	}
	active := users - users/3
	for _, tt := range []struct{ skip, limit, want int }{
		{0, 100, 100},
		{700, 100, 100},
		{active - 10, 100, 10},
		{active, 100, 0},
	} {
		got, decoded, err := s.listUsers(tt.skip, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tt.want || decoded != tt.want {
			t.Errorf("skip %d limit %d: %d users, %d decoded; want %d of each", tt.skip, tt.limit, len(got), decoded, tt.want)
		}
		for i, u := range got {
			// Active users in id order: every id not divisible by 3.
			n := tt.skip + i
			wantID := fmt.Sprintf("user-%05d", n/2*3+n%2+1)
			if u.UserID != wantID || u.Deleted() {
				t.Fatalf("skip %d: user %d is %s (deleted %v), want %s", tt.skip, i, u.UserID, u.Deleted(), wantID)
			}
		}
	}
	// A re-created user is listed again.
	mustCreateUser(t, s, "user-00000")
	if got, _, _ := s.listUsers(0, 1); len(got) != 1 || got[0].UserID != "user-00000" {
		t.Errorf("re-created user not listed: %+v", got)
	}
}

// GET /v1/usage?model=… walks the model's index: it visits that model's
// records only, however many records other models have (issue #10.11).
func TestUsageFilteredByModelVisitsOnlyThatModel(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range 600 {
		model := "busy-model"
		if i%100 == 0 {
			model = "rare-model"
		}
		rec := &UsageRecord{ID: fmt.Sprintf("r%04d", i), UserID: "u", Timestamp: base.Add(time.Duration(i) * time.Second), Model: model}
		if err := s.RecordUsage(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	recs, visited, err := s.listUsage(UsageFilter{Model: "rare-model"}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || visited != 6 {
		t.Fatalf("%d records, %d visited; want 6 and 6", len(recs), visited)
	}
	for i, r := range recs { // newest first
		if want := fmt.Sprintf("r%04d", 500-100*i); r.ID != want || r.Model != "rare-model" {
			t.Fatalf("record %d = %s (%s), want %s", i, r.ID, r.Model, want)
		}
	}
	// Skip and a time range on the model's index.
	recs, visited, err = s.listUsage(UsageFilter{Model: "rare-model", End: base.Add(350 * time.Second)}, 1, 100)
	if err != nil || len(recs) != 3 || recs[0].ID != "r0200" || visited != 4 {
		t.Fatalf("skip 1 before r0350: %d records (%v), %d visited, %v", len(recs), recs, visited, err)
	}
}
