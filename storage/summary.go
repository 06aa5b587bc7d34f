package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/llmgateway/caddy-llm-gateway/internal/usagesum"
)

// Usage summaries: totals kept as records are written, in the same
// transaction, so that GET /v1/usage/summary never scans records and is
// not changed by deleting old records. Two families of counters:
//
//	summary/m/<hour> <provider> <model>                         -> totals
//	summary/h/<hour> <provider> <model> <user> <key> <end user> -> totals
//	summary/d/<day> <provider> <model> <user> <key>             -> totals
//	summary-built                                               -> "1"
//
// <hour> and <day> are the bucket's start in Unix seconds, encoded as
// usage timestamps are (putTimestamp); each dimension is a uvarint length
// followed by its bytes, so any byte may appear in it. Totals are six
// uvarints: requests, errors, prompt, completion and total tokens, cost in
// nano-dollars. Model rows keep only the model, so an hour holds one row
// per model whatever the number of users, keys and end users: queries
// that need no other dimension read them. Daily rows leave out the end
// user, so a day holds one row per model, user and key; queries that
// filter or group by end user read the hourly rows (usagesum.PlanQuery).
//
// summary-built marks a store whose summaries cover its records: a store
// written before summaries existed gets them built once, at Open.
const (
	prefixSummary      = "summary/"
	prefixSummaryModel = "summary/m/"
	prefixSummaryHour  = "summary/h/"
	prefixSummaryDay   = "summary/d/"
)

var summaryBuiltKey = []byte("summary-built")

// summaryEntry is what one record adds to the summaries.
type summaryEntry struct {
	hour   time.Time
	dims   usagesum.Dims
	totals usagesum.Totals
}

// summaryOf is rec's entry.
func summaryOf(rec *UsageRecord) summaryEntry {
	t := usagesum.Totals{
		Requests:         1,
		PromptTokens:     rec.PromptTokens,
		CompletionTokens: rec.CompletionTokens,
		TotalTokens:      rec.TotalTokens,
		Cost:             int64(rec.Cost),
	}
	if rec.Status != "success" {
		t.Errors = 1
	}
	return summaryEntry{
		hour: rec.Timestamp.UTC().Truncate(time.Hour),
		dims: usagesum.Dims{
			Provider: rec.Provider, Model: rec.Model, UserID: rec.UserID,
			APIKeyID: rec.APIKeyID, EndUser: rec.EndUser,
		},
		totals: t,
	}
}

// summaryDeltas collects what a batch adds to each summary row.
type summaryDeltas map[string]*usagesum.Totals

func (d summaryDeltas) add(e summaryEntry) {
	d.addTo(summaryModelKey(e.hour, e.dims), e.totals)
	d.addTo(summaryHourKey(e.hour, e.dims), e.totals)
	d.addTo(summaryDayKey(usagesum.Day.Truncate(e.hour), e.dims), e.totals)
}

func (d summaryDeltas) addTo(key []byte, t usagesum.Totals) {
	if sum, ok := d[string(key)]; ok {
		sum.Add(t)
		return
	}
	d[string(key)] = &t
}

// write adds the deltas to the rows in txn, each row read once.
func (d summaryDeltas) write(txn *badger.Txn) error {
	for key, delta := range d {
		k := []byte(key)
		sum, err := readSummary(txn, k)
		if err != nil {
			return err
		}
		sum.Add(*delta)
		if err := txn.Set(k, encodeTotals(sum)); err != nil {
			return err
		}
	}
	return nil
}

// addSummaries adds the records of batch to the summaries in txn: the
// usage writer's hook, so summaries commit with the records.
func addSummaries(txn *badger.Txn, batch []*usageRequest) error {
	d := make(summaryDeltas, 2*len(batch))
	for _, req := range batch {
		d.add(req.summary)
	}
	return d.write(txn)
}

func readSummary(txn *badger.Txn, key []byte) (usagesum.Totals, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return usagesum.Totals{}, nil
	}
	if err != nil {
		return usagesum.Totals{}, err
	}
	var t usagesum.Totals
	err = item.Value(func(v []byte) (err error) {
		t, err = decodeTotals(v)
		return err
	})
	return t, err
}

func summaryModelKey(hour time.Time, d usagesum.Dims) []byte {
	b := timestampBound([]byte(prefixSummaryModel), hour.Unix())
	return appendDims(b, d.Provider, d.Model)
}

func summaryHourKey(hour time.Time, d usagesum.Dims) []byte {
	b := timestampBound([]byte(prefixSummaryHour), hour.Unix())
	return appendDims(b, d.Provider, d.Model, d.UserID, d.APIKeyID, d.EndUser)
}

func summaryDayKey(day time.Time, d usagesum.Dims) []byte {
	b := timestampBound([]byte(prefixSummaryDay), day.Unix())
	return appendDims(b, d.Provider, d.Model, d.UserID, d.APIKeyID)
}

func appendDims(b []byte, dims ...string) []byte {
	for _, s := range dims {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decodeDims reads n dimensions from b (after the bucket's timestamp).
func decodeDims(b []byte, n int) (usagesum.Dims, error) {
	var vals [5]string
	for i := range n {
		l, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < l {
			return usagesum.Dims{}, errors.New("malformed summary key")
		}
		vals[i] = string(b[w : w+int(l)])
		b = b[w+int(l):]
	}
	if len(b) != 0 {
		return usagesum.Dims{}, errors.New("malformed summary key")
	}
	return usagesum.Dims{Provider: vals[0], Model: vals[1], UserID: vals[2], APIKeyID: vals[3], EndUser: vals[4]}, nil
}

func encodeTotals(t usagesum.Totals) []byte {
	b := make([]byte, 0, 6*binary.MaxVarintLen64)
	for _, v := range []int64{t.Requests, t.Errors, t.PromptTokens, t.CompletionTokens, t.TotalTokens, t.Cost} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	return b
}

func decodeTotals(b []byte) (usagesum.Totals, error) {
	var vals [6]int64
	for i := range vals {
		v, w := binary.Uvarint(b)
		if w <= 0 {
			return usagesum.Totals{}, errors.New("malformed summary totals")
		}
		vals[i] = int64(v)
		b = b[w:]
	}
	if len(b) != 0 {
		return usagesum.Totals{}, errors.New("malformed summary totals")
	}
	return usagesum.Totals{Requests: vals[0], Errors: vals[1], PromptTokens: vals[2],
		CompletionTokens: vals[3], TotalTokens: vals[4], Cost: vals[5]}, nil
}

// SummarizeUsage answers a usage summary from the summary rows; it reads
// no usage record. Its cost is the number of rows in the planned ranges
// (see usagesum.PlanQuery): one per model and hour for a query by model,
// provider or nothing; else for day and month buckets one per model, user
// and key active each day, and for hour buckets or an end-user query one
// per model, user, key and end user active each hour.
func (s *Store) SummarizeUsage(q usagesum.Query) ([]usagesum.Bucket, error) {
	plan := usagesum.PlanQuery(q)
	r := usagesum.NewRollup(q)
	err := s.view(func(txn *badger.Txn) error {
		if !plan.Models.Empty() {
			if err := scanSummary(txn, prefixSummaryModel, 2, plan.Models, r); err != nil {
				return err
			}
		}
		if !plan.Days.Empty() {
			if err := scanSummary(txn, prefixSummaryDay, 4, plan.Days, r); err != nil {
				return err
			}
		}
		for _, hr := range plan.Hours {
			if err := scanSummary(txn, prefixSummaryHour, 5, hr, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("summarizing usage: %w", err)
	}
	return r.Buckets(), nil
}

// scanSummary adds the rows of one family starting in hr to r.
func scanSummary(txn *badger.Txn, prefix string, ndims int, hr usagesum.HourRange, r *usagesum.Rollup) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(prefix)
	opts.PrefetchValues = false // values are small and live in the tree
	it := txn.NewIterator(opts)
	defer it.Close()
	end := timestampBound([]byte(prefix), hr.To.Unix())
	for it.Seek(timestampBound([]byte(prefix), hr.From.Unix())); it.ValidForPrefix(opts.Prefix); it.Next() {
		item := it.Item()
		key := item.Key()
		if len(key) < len(end) {
			return fmt.Errorf("malformed summary key %q", key)
		}
		if bytes.Compare(key[:len(end)], end) >= 0 {
			break
		}
		rest := key[len(prefix):]
		dims, err := decodeDims(rest[timestampKeySize:], ndims)
		if err != nil {
			return fmt.Errorf("%w %q", err, key)
		}
		var t usagesum.Totals
		if err := item.Value(func(v []byte) (err error) { t, err = decodeTotals(v); return err }); err != nil {
			return fmt.Errorf("summary %q: %w", key, err)
		}
		r.Add(time.Unix(timestampAt(rest), 0).UTC(), dims, t)
	}
	return nil
}

// buildSummaries makes sure the summaries cover the records: a store
// without the summary-built mark (written before summaries existed) gets
// them rebuilt from its records, once, before the usage writer starts. A
// build interrupted by a crash is started over at the next Open.
func buildSummaries(db *badger.DB) error {
	err := db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(summaryBuiltKey)
		return err
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, badger.ErrKeyNotFound) {
		return fmt.Errorf("reading the summary mark: %w", err)
	}
	for _, p := range []string{prefixSummaryModel, prefixSummaryHour, prefixSummaryDay} {
		if err := db.DropPrefix([]byte(p)); err != nil {
			return fmt.Errorf("dropping partial summaries: %w", err)
		}
	}
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	// Records are in time order, so the rows of a day are complete once a
	// record of a later day is seen: memory holds one day's rows at most.
	var day time.Time
	deltas := make(summaryDeltas)
	flush := func() error {
		for key, t := range deltas {
			if err := wb.Set([]byte(key), encodeTotals(*t)); err != nil {
				return err
			}
		}
		clear(deltas)
		return nil
	}
	err = db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(prefixUsageTime)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var rec UsageRecord
			if err := decodeItem(it.Item(), &rec); err != nil {
				return err
			}
			e := summaryOf(&rec)
			if d := usagesum.Day.Truncate(e.hour); !d.Equal(day) {
				if err := flush(); err != nil {
					return err
				}
				day = d
			}
			deltas.add(e)
		}
		return flush()
	})
	if err == nil {
		err = wb.Set(summaryBuiltKey, []byte("1"))
	}
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return fmt.Errorf("building usage summaries: %w", err)
	}
	return nil
}

// SummaryFamily names a set of summary rows (see the key layout above).
type SummaryFamily byte

// Summary families.
const (
	SummaryModels SummaryFamily = 'm' // per hour, provider and model
	SummaryHours  SummaryFamily = 'h' // per hour, provider, model, user, key and end user
	SummaryDays   SummaryFamily = 'd' // per day, provider, model, user and key
)

// SummaryRow is one summary row, as Export hands it out: the totals of
// the records of its bucket (starting at Start) with its dimensions (those
// its family keeps; the others empty).
type SummaryRow struct {
	Family SummaryFamily
	Start  time.Time
	Dims   usagesum.Dims
	Totals usagesum.Totals
}

// summaryFamilies are the families' key prefixes and dimension counts.
var summaryFamilies = map[SummaryFamily]struct {
	prefix string
	ndims  int
}{
	SummaryModels: {prefixSummaryModel, 2},
	SummaryHours:  {prefixSummaryHour, 5},
	SummaryDays:   {prefixSummaryDay, 4},
}

// exportSummary decodes each summary row for fn (nil: nil).
func exportSummary(fn func(*SummaryRow) error) func(*badger.Item) error {
	if fn == nil {
		return nil
	}
	return func(item *badger.Item) error {
		key := item.Key()
		rest, ok := bytes.CutPrefix(key, []byte(prefixSummary))
		if !ok || len(rest) < 2+timestampKeySize {
			return fmt.Errorf("malformed summary key %q", key)
		}
		fam, ok := summaryFamilies[SummaryFamily(rest[0])]
		if !ok {
			return fmt.Errorf("malformed summary key %q", key)
		}
		rest = rest[2:]
		dims, err := decodeDims(rest[timestampKeySize:], fam.ndims)
		if err != nil {
			return fmt.Errorf("%w %q", err, key)
		}
		row := SummaryRow{Family: SummaryFamily(key[len(prefixSummary)]), Start: time.Unix(timestampAt(rest), 0).UTC(), Dims: dims}
		if err := item.Value(func(v []byte) (err error) { row.Totals, err = decodeTotals(v); return err }); err != nil {
			return fmt.Errorf("summary %q: %w", key, err)
		}
		if err := fn(&row); err != nil {
			return &callbackError{err: err}
		}
		return nil
	}
}
