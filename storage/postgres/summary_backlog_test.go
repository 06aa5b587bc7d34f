package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/internal/usagesum"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// openFolding opens a store on schema whose folder runs every interval,
// whether or not it settled anything (the idle interval too).
func openFolding(t *testing.T, schema string, interval time.Duration) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{URL: testDatabaseURL(t), Schema: schema, MaxConns: 8,
		foldInterval: interval, foldIdleInterval: interval})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// backlog is the number of backlog rows and the records they name.
func backlog(t *testing.T, s *Store) (rows, records int64) {
	t.Helper()
	err := s.pool.QueryRow(context.Background(),
		`SELECT count(*), coalesce(sum(cardinality(record_ids)), 0) FROM usage_summary_backlog`).Scan(&rows, &records)
	if err != nil {
		t.Fatal(err)
	}
	return rows, records
}

// summaryTotals reads each summary table's request count and cost, as
// folded so far (without folding).
func summaryTotals(t *testing.T, s *Store) (totals [3][2]int64) {
	t.Helper()
	for i, table := range []string{"usage_summary_models", "usage_summary_hourly", "usage_summary_daily"} {
		err := s.pool.QueryRow(context.Background(),
			`SELECT coalesce(sum(requests), 0), coalesce(sum(cost), 0) FROM `+table).Scan(&totals[i][0], &totals[i][1])
		if err != nil {
			t.Fatal(err)
		}
	}
	return totals
}

// A settlement only notes its records in the backlog, one row for its
// batch; the summaries get them when the backlog is folded, and a summary
// query folds first, so it counts every record committed before it.
func TestSummaryQueryFoldsTheBacklogFirst(t *testing.T) {
	s := openFolding(t, newSchema(t), time.Hour) // no background fold during the test
	settle(t, s, Settlement{Records: []*storage.UsageRecord{usage("r1", 3), usage("r2", 4)}})
	settle(t, s, Settlement{Records: []*storage.UsageRecord{usage("r3", 5)}})
	if rows, recs := backlog(t, s); rows != 2 || recs != 3 {
		t.Fatalf("backlog = %d rows of %d records, want 2 of 3", rows, recs)
	}
	if got := summaryTotals(t, s); got != [3][2]int64{} {
		t.Fatalf("summaries before a fold = %v, want nothing", got)
	}

	buckets, err := s.SummarizeUsage(usagesum.Query{Start: t0.Add(-time.Hour), End: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(buckets) != 1 || buckets[0].Requests != 3 || buckets[0].Cost != 12 {
		t.Fatalf("summary = %+v, want one bucket of 3 requests costing 12", buckets)
	}
	if rows, _ := backlog(t, s); rows != 0 {
		t.Fatalf("backlog after the query = %d rows, want 0", rows)
	}
	want := [3][2]int64{{3, 12}, {3, 12}, {3, 12}}
	if got := summaryTotals(t, s); got != want {
		t.Fatalf("summaries after the fold = %v, want %v", got, want)
	}
	// A second fold finds nothing and counts nothing twice.
	if n, err := s.fold(true); err != nil || n != 0 {
		t.Fatalf("second fold = %d, %v; want 0", n, err)
	}
	if got := summaryTotals(t, s); got != want {
		t.Fatalf("summaries after a second fold = %v, want %v", got, want)
	}
}

// The folder empties the backlog by itself, in passes of foldLimit rows,
// so the summaries follow the records without a query.
func TestFolderEmptiesTheBacklog(t *testing.T) {
	s := openFolding(t, newSchema(t), 10*time.Millisecond)
	const n = foldLimit + 20 // more than one pass
	for i := range n {
		// One settlement each: a backlog row each.
		settle(t, s, Settlement{Records: []*storage.UsageRecord{usage(fmt.Sprint("r", i), 2)}})
	}
	want := [3][2]int64{{n, 2 * n}, {n, 2 * n}, {n, 2 * n}}
	deadline := time.Now().Add(time.Minute)
	for {
		rows, _ := backlog(t, s)
		got := summaryTotals(t, s)
		if rows == 0 && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: backlog %d rows, summaries %v; want 0 and %v", rows, got, want)
		}
		time.Sleep(10 * time.Millisecond) // polling: the folder runs in its own time
	}
}

// Three instances settle on one schema while their folders and their
// summary queries fold at the same time: every record is counted once.
func TestConcurrentFoldsCountEveryRecordOnce(t *testing.T) {
	schema := newSchema(t)
	stores := []*Store{
		openFolding(t, schema, time.Millisecond),
		openFolding(t, schema, 3*time.Millisecond),
		openFolding(t, schema, time.Hour),
	}
	const perStore, perBatch = 60, 3
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(stores))
	for si, s := range stores {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for b := range perStore / perBatch {
				recs := make([]*storage.UsageRecord, perBatch)
				for j := range recs {
					recs[j] = usage(fmt.Sprintf("s%d-b%d-%d", si, b, j), 1)
					recs[j].Model = fmt.Sprint("m", j)
				}
				if err := s.Settle(context.Background(), Settlement{Records: recs}); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := s.SummarizeUsage(usagesum.Query{Start: t0.Add(-time.Hour), End: t0.Add(time.Hour)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	buckets, err := stores[2].SummarizeUsage(usagesum.Query{Start: t0.Add(-time.Hour), End: t0.Add(time.Hour),
		GroupBy: usagesum.Model})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, b := range buckets {
		if b.Requests != int64(len(stores)*perStore/perBatch) {
			t.Errorf("model %v: %d requests, want %d", b.Group, b.Requests, len(stores)*perStore/perBatch)
		}
		total += b.Requests
	}
	if total != int64(len(stores)*perStore) || len(buckets) != perBatch {
		t.Fatalf("summaries count %d requests in %d models, want %d in %d", total, len(buckets), len(stores)*perStore, perBatch)
	}
	want := [3][2]int64{{total, total}, {total, total}, {total, total}}
	if got := summaryTotals(t, stores[0]); got != want {
		t.Fatalf("summary tables = %v, want %v", got, want)
	}
}

// Retention never deletes a record that is still in the backlog (an old
// record delivered late): the folder could not count it any more.
func TestRetentionKeepsBackloggedRecords(t *testing.T) {
	s := openFolding(t, newSchema(t), time.Hour)
	settleAt(t, s, "late", t0, 5)
	if n, err := s.DeleteUsageBefore(t0.Add(time.Hour), 10); err != nil || n != 0 {
		t.Fatalf("DeleteUsageBefore with the record in the backlog = %d, %v; want 0", n, err)
	}
	if _, err := s.fold(true); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteUsageBefore(t0.Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("DeleteUsageBefore after the fold = %d, %v; want 1", n, err)
	}
	if got := summaryTotals(t, s); got != [3][2]int64{{1, 5}, {1, 5}, {1, 5}} {
		t.Fatalf("summaries = %v, want the deleted record counted once", got)
	}
}
