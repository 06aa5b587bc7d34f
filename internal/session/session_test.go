package session

import (
	"errors"
	"testing"
	"time"
)

// clock is a settable time for the store.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestStore(c *clock) *Store {
	st := NewStore()
	st.Now = c.now
	st.SetLimits(10*time.Hour, time.Hour, 0)
	return st
}

// every returns the offsets step, 2×step, … up to last.
func every(step, last time.Duration) []time.Duration {
	var out []time.Duration
	for d := step; d <= last; d += step {
		out = append(out, d)
	}
	return out
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		steps []time.Duration // uses after sign-in, each an offset from start
		check time.Duration   // then a Get at this offset
		alive bool
	}{
		{"fresh", nil, 59 * time.Minute, true},
		{"idle too long", nil, time.Hour, false},
		{"kept alive by use", []time.Duration{50 * time.Minute, 100 * time.Minute}, 150 * time.Minute, true},
		{"idle after the last use", []time.Duration{50 * time.Minute}, 110 * time.Minute, false},
		{"lifetime ends it however used", every(50*time.Minute, 9*time.Hour+40*time.Minute), 10 * time.Hour, false},
		{"just under the lifetime", every(50*time.Minute, 9*time.Hour+10*time.Minute), 10*time.Hour - time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &clock{t: start}
			st := newTestStore(c)
			s, err := st.Create("master")
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range tt.steps {
				c.t = start.Add(d)
				if _, ok := st.Get(s.ID); !ok {
					t.Fatalf("session dead at +%v", d)
				}
			}
			c.t = start.Add(tt.check)
			got, ok := st.Get(s.ID)
			if ok != tt.alive {
				t.Fatalf("alive at +%v = %v, want %v", tt.check, ok, tt.alive)
			}
			if ok && got.Credential != "master" {
				t.Fatalf("credential = %q", got.Credential)
			}
			if !ok && st.Len() != 0 {
				t.Fatalf("an expired session is still held (%d)", st.Len())
			}
		})
	}
}

func TestSessionDeleteEndsIt(t *testing.T) {
	t.Parallel()
	st := newTestStore(&clock{t: time.Now()})
	s, err := st.Create("master")
	if err != nil {
		t.Fatal(err)
	}
	other, err := st.Create("master")
	if err != nil {
		t.Fatal(err)
	}
	st.Delete(s.ID)
	if _, ok := st.Get(s.ID); ok {
		t.Fatal("a deleted session is still served")
	}
	if _, ok := st.Get(other.ID); !ok {
		t.Fatal("deleting one session ended another")
	}
}

func TestSessionTokensAreUniqueAndUnguessable(t *testing.T) {
	t.Parallel()
	st := newTestStore(&clock{t: time.Now()})
	seen := map[string]bool{}
	for range 100 {
		s, err := st.Create("k")
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{s.ID, s.CSRF} {
			if len(tok) != 43 { // 32 bytes, unpadded base64
				t.Fatalf("token %q has length %d", tok, len(tok))
			}
			if seen[tok] {
				t.Fatalf("token %q issued twice", tok)
			}
			seen[tok] = true
		}
	}
	for _, id := range []string{"", "x", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if _, ok := st.Get(id); ok {
			t.Fatalf("Get(%q) found a session", id)
		}
	}
}

func TestCheckCSRF(t *testing.T) {
	t.Parallel()
	st := newTestStore(&clock{t: time.Now()})
	s, err := st.Create("k")
	if err != nil {
		t.Fatal(err)
	}
	other, err := st.Create("k")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"its own token", s.CSRF, true},
		{"empty", "", false},
		{"another session's", other.CSRF, false},
		{"a prefix", s.CSRF[:20], false},
		{"the session id", s.ID, false},
	}
	for _, tt := range tests {
		if got := s.CheckCSRF(tt.token); got != tt.ok {
			t.Errorf("%s: CheckCSRF = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

func TestStoreBoundedDropsExpiredFirst(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Now()}
	st := newTestStore(c)
	st.SetLimits(0, 0, 2)
	first, err := st.Create("k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create("k"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create("k"); !errors.Is(err, ErrFull) {
		t.Fatalf("third session: err = %v, want ErrFull", err)
	}
	c.t = c.t.Add(30 * time.Minute)
	st.Get(first.ID) // keeps the first alive
	c.t = c.t.Add(45 * time.Minute)
	if _, err := st.Create("k"); err != nil {
		t.Fatalf("with one session expired: %v", err)
	}
	if _, ok := st.Get(first.ID); !ok {
		t.Fatal("the live session was dropped to make room")
	}
}

func TestFlashesAreShownOnce(t *testing.T) {
	t.Parallel()
	st := newTestStore(&clock{t: time.Now()})
	s, err := st.Create("k")
	if err != nil {
		t.Fatal(err)
	}
	s.AddFlash(Flash{Kind: "secret", Text: "new key", Value: "gw-secret"})
	s.AddFlash(Flash{Kind: "notice", Text: "done"})
	got := s.TakeFlashes()
	if len(got) != 2 || got[0].Value != "gw-secret" || got[1].Text != "done" {
		t.Fatalf("flashes = %+v", got)
	}
	if again := s.TakeFlashes(); len(again) != 0 {
		t.Fatalf("flashes shown twice: %+v", again)
	}
}
