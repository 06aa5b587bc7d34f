package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func payloads(t *testing.T, s *Spool) []string {
	t.Helper()
	entries, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, string(e.Payload))
	}
	return out
}

func TestPutSurvivesReopenInOrder(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Put(fmt.Appendf(nil, "record %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []string{"record 0", "record 1", "record 2", "record 3", "record 4"}
	if got := payloads(t, s); !slices.Equal(got, want) {
		t.Fatalf("after reopening: %q, want %q", got, want)
	}
}

// A second process on the same root gets a directory of its own; a
// restart gets the first one back, with what was spooled there.
func TestDirectoriesAreHeldByOneProcess(t *testing.T) {
	root := t.TempDir()
	a, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Dir() == b.Dir() {
		t.Fatalf("two spools share %s", a.Dir())
	}
	if err := a.Put([]byte("a's")); err != nil {
		t.Fatal(err)
	}
	a.Close()
	again, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Dir() != a.Dir() {
		t.Fatalf("reopened %s, want the free %s", again.Dir(), a.Dir())
	}
	if got := payloads(t, again); !slices.Equal(got, []string{"a's"}) {
		t.Fatalf("reopened spool holds %q", got)
	}
	if got := payloads(t, b); len(got) != 0 {
		t.Fatalf("the other spool holds %q", got)
	}
}

// What a crash leaves (a temporary file never renamed, an entry cut short
// or damaged) is never delivered, and the good entries still are.
func TestCrashLeftoversAreIgnored(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"good 1", "cut short", "flipped", "good 2"} {
		if err := s.Put([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	s.Close()
	cut := filepath.Join(dir, entries[1].Name)
	data, _ := os.ReadFile(cut)
	if err := os.WriteFile(cut, data[:len(data)-3], 0o600); err != nil {
		t.Fatal(err)
	}
	flipped := filepath.Join(dir, entries[2].Name)
	data, _ = os.ReadFile(flipped)
	data[len(data)-1] ^= 0xff
	if err := os.WriteFile(flipped, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tiny := filepath.Join(dir, "00000000000000000000-00000000"+entrySuffix)
	if err := os.WriteFile(tiny, []byte{1, 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	temp := filepath.Join(dir, "99999999999999999999-00000001"+entrySuffix+tempSuffix)
	if err := os.WriteFile(temp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}

	s, err = Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(temp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a temporary file survived reopening: %v", err)
	}
	got, err := s.List()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("List: %v, want ErrCorrupt", err)
	}
	var names []string
	for _, e := range got {
		names = append(names, string(e.Payload))
	}
	if !slices.Equal(names, []string{"good 1", "good 2"}) {
		t.Fatalf("entries %q, want the two good ones", names)
	}
	// Set aside once: the next listing is clean.
	if got := payloads(t, s); !slices.Equal(got, []string{"good 1", "good 2"}) {
		t.Fatalf("second listing %q", got)
	}
}

func TestConcurrentPuts(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := s.Put(fmt.Appendf(nil, "%d/%d", w, i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got := payloads(t, s)
	slices.Sort(got)
	if len(got) != writers*each || len(slices.Compact(got)) != writers*each {
		t.Fatalf("%d distinct entries of %d written", len(slices.Compact(got)), writers*each)
	}
}

// destination is a delivery target that can be down.
type destination struct {
	mu   sync.Mutex
	down bool
	got  map[string]int
	seen chan struct{} // signalled on every attempt
}

func newDestination() *destination {
	return &destination{got: make(map[string]int), seen: make(chan struct{}, 1000)}
}

func (d *destination) deliver(_ context.Context, p []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	defer func() { d.seen <- struct{}{} }()
	if d.down {
		return errors.New("destination down")
	}
	d.got[string(p)]++
	return nil
}

func (d *destination) setDown(down bool) {
	d.mu.Lock()
	d.down = down
	d.mu.Unlock()
}

func (d *destination) count() (total int, dup bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.got {
		total += n
		dup = dup || n > 1
	}
	return total, dup
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within 30s", what)
		}
		time.Sleep(time.Millisecond) // polling, not synchronisation
	}
}

// Entries are delivered once each: those spooled while the destination is
// down once it is back, those an earlier process spooled at start.
func TestRunDeliversOnceThroughAnOutageAndARestart(t *testing.T) {
	root := t.TempDir()
	earlier, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := earlier.Put([]byte("from before the restart")); err != nil {
		t.Fatal(err)
	}
	earlier.Close()

	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dest := newDestination()
	dest.setDown(true)
	var mu sync.Mutex
	failures := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, Delivery{
			Deliver:    dest.deliver,
			Failed:     func(error) { mu.Lock(); failures++; mu.Unlock() },
			MinBackoff: time.Millisecond,
			MaxBackoff: 20 * time.Millisecond,
		})
	}()
	for i := range 20 {
		if err := s.Put(fmt.Appendf(nil, "during the outage %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Several failing attempts, reported once.
	for range 3 {
		<-dest.seen
	}
	dest.setDown(false)
	waitUntil(t, "every entry delivered", func() bool { n, _ := dest.count(); return n >= 21 })
	waitUntil(t, "the spool emptied", func() bool { return len(payloads(t, s)) == 0 })
	if err := s.Put([]byte("after")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a later entry delivered", func() bool { n, _ := dest.count(); return n >= 22 })
	cancel()
	<-done
	if n, dup := dest.count(); n != 22 || dup {
		t.Fatalf("%d deliveries (duplicates: %v), want 22 distinct", n, dup)
	}
	if failures != 1 {
		t.Fatalf("the outage was reported %d times, want once", failures)
	}
}

// What a process spooled in a directory of its own is delivered by another
// process on the same root once the first one ended, whether it ended
// before the other started delivering or while it ran; a directory still
// held is left to its process.
func TestRunAdoptsWhatAnEndedProcessLeft(t *testing.T) {
	root := t.TempDir()
	first, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	held, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := first.Put(fmt.Appendf(nil, "first's %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := held.Put([]byte("held's")); err != nil {
		t.Fatal(err)
	}
	first.Close()

	dest := newDestination()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, Delivery{Deliver: dest.deliver, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
			AdoptEvery: time.Millisecond})
	}()
	waitUntil(t, "the ended process's entries delivered", func() bool { n, _ := dest.count(); return n >= 3 })

	// held ends while s runs: s adopts its entry without a Put of its own.
	held.Close()
	waitUntil(t, "the entry of a process that ended later delivered", func() bool { n, _ := dest.count(); return n >= 4 })
	cancel()
	<-done
	if n, dup := dest.count(); n != 4 || dup {
		t.Fatalf("%d deliveries (duplicates: %v), want 4 distinct", n, dup)
	}
	for _, dir := range []string{first.Dir(), held.Dir()} {
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 { // only LOCK is left
			t.Fatalf("%s after adoption: %v, %v", dir, entries, err)
		}
	}
}

// A directory held by a running process is never adopted, however often a
// pass runs.
func TestAdoptLeavesHeldDirectories(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	held, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := held.Put([]byte("held's")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if n, err := s.adopt(); n != 0 || err != nil {
			t.Fatalf("adopt from a held directory: %d, %v", n, err)
		}
	}
	if got := payloads(t, held); !slices.Equal(got, []string{"held's"}) {
		t.Fatalf("the held spool holds %q", got)
	}
}
