package llmgateway

import (
	"testing"
	"time"
)

func TestLastUsedIsWrittenAtMostOncePerMinute(t *testing.T) {
	t.Parallel()
	q := newTouchQueue()
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	uses := []time.Duration{0, time.Second, 30 * time.Second, 59 * time.Second, time.Minute, 61 * time.Second, 2*time.Minute + time.Second}
	for _, d := range uses {
		q.note("k1", start.Add(d))
	}
	q.note("k2", start)
	var writes []keyTouch
	for len(q.ch) > 0 {
		writes = append(writes, <-q.ch)
	}
	want := []keyTouch{
		{"k1", start},
		{"k1", start.Add(time.Minute)},
		{"k1", start.Add(2*time.Minute + time.Second)},
		{"k2", start},
	}
	if len(writes) != len(want) {
		t.Fatalf("writes = %+v, want %+v", writes, want)
	}
	for i := range want {
		if writes[i].id != want[i].id || !writes[i].at.Equal(want[i].at) {
			t.Fatalf("write %d = %+v, want %+v", i, writes[i], want[i])
		}
	}
	// The newest use is visible at once, before the write lands.
	if last, ok := q.lastUsed("k1"); !ok || !last.Equal(start.Add(2*time.Minute+time.Second)) {
		t.Fatalf("lastUsed = %v, %v", last, ok)
	}
}

func TestCacheGenerationKeepsStaleValuesOut(t *testing.T) {
	t.Parallel()
	c := newCache[string, *int](10)
	one := 1
	_, ok, gen := c.get("a") // a lookup starts
	if ok {
		t.Fatal("empty cache hit")
	}
	c.invalidate()        // an admin write lands meanwhile
	c.put("a", &one, gen) // the lookup's (now stale) result
	if _, ok, _ := c.get("a"); ok {
		t.Fatal("a value loaded before an invalidation was cached after it")
	}
	_, _, gen = c.get("a")
	c.put("a", &one, gen)
	if v, ok, _ := c.get("a"); !ok || *v != 1 {
		t.Fatal("a fresh value was not cached")
	}
}
