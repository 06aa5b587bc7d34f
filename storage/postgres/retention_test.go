package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// settleAt commits a usage record of alice's, timestamped at, costing cost.
func settleAt(t *testing.T, s *Store, id string, at time.Time, cost storage.Money) {
	t.Helper()
	rec := usage(id, cost)
	rec.Timestamp = at
	settle(t, s, Settlement{Records: []*storage.UsageRecord{rec}})
}

func usageIDs(t *testing.T, s *Store) []string {
	t.Helper()
	recs, err := s.ListUsage(storage.UsageFilter{}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

// DeleteUsageBefore deletes old records in batches, oldest first, never
// one at or after the cutoff; the spend they charged and the summaries
// that counted them stay.
func TestDeleteUsageBeforeKeepsSpendAndSummaries(t *testing.T) {
	s := openTestStore(t)
	cutoff := t0.Add(time.Hour)
	for i := range 5 {
		settleAt(t, s, fmt.Sprint("old-", i), t0.Add(time.Duration(i)*time.Minute), 5)
	}
	settleAt(t, s, "at-cutoff", cutoff, 5)
	settleAt(t, s, "after", cutoff.Add(time.Minute), 5)
	if _, err := s.fold(true); err != nil { // retention keeps what is in the backlog
		t.Fatal(err)
	}

	for _, want := range []int{2, 2, 1, 0} {
		if n, err := s.DeleteUsageBefore(cutoff, 2); err != nil || n != want {
			t.Fatalf("DeleteUsageBefore = %d, %v; want %d", n, err, want)
		}
	}
	if got := usageIDs(t, s); len(got) != 2 || got[0] != "after" || got[1] != "at-cutoff" {
		t.Fatalf("records left: %v, want [after at-cutoff]", got)
	}
	for _, acct := range []Account{alice, akey} {
		if spend, err := s.GetSpend(acct.Owner, acct.ID, t0); err != nil || spend != 7*5 {
			t.Errorf("spend of %v = %v, %v; want %v", acct, spend, err, 7*5)
		}
	}
	var requests int64
	if err := s.pool.QueryRow(context.Background(), `SELECT sum(requests) FROM usage_summary_models`).Scan(&requests); err != nil || requests != 7 {
		t.Errorf("summarised requests = %d, %v; want 7", requests, err)
	}
}

// A retention set on the store deletes, in the background and in several
// batches, the records older than it; the newer one stays.
func TestUsageRetentionRunsInTheBackground(t *testing.T) {
	s := openTestStore(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	old := make([]*storage.UsageRecord, 0, 2*retentionBatch+10)
	for i := range cap(old) {
		rec := usage(fmt.Sprint("old-", i), 1)
		rec.Timestamp = now.Add(-48*time.Hour + time.Duration(i)*time.Millisecond)
		old = append(old, rec)
	}
	settle(t, s, Settlement{Records: old})
	settleAt(t, s, "fresh", now, 1)

	// The records are still in the summaries' backlog: the loop folds it
	// before it deletes.
	s.SetUsageRetention(24 * time.Hour)
	deadline := time.Now().Add(time.Minute)
	for {
		got := usageIDs(t, s)
		if len(got) == 1 {
			if got[0] != "fresh" {
				t.Fatalf("kept %s, want the fresh record", got[0])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records left after a minute, want 1", len(got))
		}
		time.Sleep(10 * time.Millisecond) // polling: the loop runs in its own time
	}
}
