package storage

import (
	"context"
	"testing"
	"time"
)

// TestDeleteUsageBeforeKeepsSpend deletes old records in small batches:
// oldest first, never a record at or after the cutoff, every index entry
// with its record, and the spend the records charged stays.
func TestDeleteUsageBeforeKeepsSpend(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	key := newID(t)
	record := func(at time.Time) string {
		id := newID(t)
		err := s.RecordUsage(context.Background(), &UsageRecord{
			ID: id, UserID: "u1", APIKeyID: key, Model: "m1", Timestamp: at, Cost: 5,
			UserPeriod: testTime, KeyPeriod: testTime,
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	cutoff := testTime.Add(time.Hour)
	var old, kept []string
	for i := range 5 {
		old = append(old, record(testTime.Add(time.Duration(i)*time.Minute)))
	}
	kept = append(kept, record(cutoff), record(cutoff.Add(time.Minute)))

	ids := func(f UsageFilter) []string {
		recs, err := s.ListUsage(f, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, want := range []int{2, 2, 1, 0} {
		n, err := s.DeleteUsageBefore(cutoff, 2)
		if err != nil || n != want {
			t.Fatalf("DeleteUsageBefore = %d, %v; want %d", n, err, want)
		}
	}
	for _, f := range []UsageFilter{{}, {UserID: "u1"}, {APIKeyID: key}, {Model: "m1"}} {
		got := ids(f)
		if len(got) != len(kept) || got[0] != kept[1] || got[1] != kept[0] {
			t.Errorf("ListUsage(%+v) = %v, want %v newest first", f, got, kept)
		}
	}
	for _, owner := range []SpendOwner{SpendOfUser, SpendOfKey} {
		id := map[SpendOwner]string{SpendOfUser: "u1", SpendOfKey: key}[owner]
		if spend, err := s.GetSpend(owner, id, testTime); err != nil || spend != 5*7 {
			t.Errorf("spend of %c = %v, %v; want %v", owner, spend, err, 5*7)
		}
	}
}

// TestUsageRetentionRunsInTheBackground sets a retention and waits until
// the records older than it are gone; the newer one stays.
func TestUsageRetentionRunsInTheBackground(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	now := time.Now().UTC()
	for i := range 3 * retentionBatch {
		err := s.RecordUsage(context.Background(), &UsageRecord{
			ID: newID(t), UserID: "u1", Timestamp: now.Add(-48*time.Hour + time.Duration(i)*time.Millisecond),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fresh := newID(t)
	if err := s.RecordUsage(context.Background(), &UsageRecord{ID: fresh, UserID: "u1", Timestamp: now}); err != nil {
		t.Fatal(err)
	}
	s.SetUsageRetention(24 * time.Hour)
	deadline := time.Now().Add(time.Minute)
	for {
		recs, err := s.ListUsage(UsageFilter{UserID: "u1"}, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 1 {
			if recs[0].ID != fresh {
				t.Fatalf("kept %s, want the fresh record %s", recs[0].ID, fresh)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records left after a minute, want 1", len(recs))
		}
		time.Sleep(10 * time.Millisecond) // polling: the loop runs in its own time
	}
}
