package metering

import (
	"math"
	"sync"
	"time"
)

// RateWindow is the length of the sliding rate-limit window.
const RateWindow = time.Minute

// limiter enforces requests and tokens per minute over a sliding window,
// in memory, per account.
type limiter struct {
	mu      sync.Mutex
	windows map[Account]*window
	admits  int // since the last sweep
}

// sweepEvery is how many admissions pass between sweeps of idle windows.
const sweepEvery = 4096

func newLimiter() *limiter {
	return &limiter{windows: make(map[Account]*window)}
}

// window holds an account's requests of the last minute, oldest first.
type window struct {
	events []*rateEvent
}

// rateEvent is one admitted request; tokens start as its estimate and are
// replaced by the real count when it settles.
type rateEvent struct {
	at     time.Time
	tokens int64
}

func (w *window) prune(now time.Time) {
	cut := 0
	for cut < len(w.events) && !w.events[cut].at.After(now.Add(-RateWindow)) {
		cut++
	}
	if cut > 0 {
		n := copy(w.events, w.events[cut:])
		clear(w.events[n:])
		w.events = w.events[:n]
	}
}

func (w *window) tokens() int64 {
	var n int64
	for _, e := range w.events {
		n += e.tokens
	}
	return n
}

// admit records a request of estimated tokens under every rate in h, or
// refuses it with a *RateRefusal when any rate is full.
func (rl *limiter) admit(now time.Time, rates []Rate, tokens int64, h *Hold) error {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.admits++; rl.admits >= sweepEvery {
		rl.admits = 0
		rl.sweep(now)
	}
	for _, r := range rates {
		w := rl.windows[r.Account]
		if w == nil {
			continue
		}
		w.prune(now)
		full := (r.RPM > 0 && int64(len(w.events)) >= r.RPM) || (r.TPM > 0 && len(w.events) > 0 && w.tokens()+tokens > r.TPM)
		if full {
			return &RateRefusal{RetryAfter: w.events[0].at.Add(RateWindow).Sub(now)}
		}
	}
	// One allocation for the hold's entries: the windows point into it.
	h.events = make([]rateEvent, len(rates))
	status := RateStatus{Remaining: math.MaxInt64}
	for i, r := range rates {
		w := rl.windows[r.Account]
		if w == nil {
			w = &window{}
			rl.windows[r.Account] = w
		}
		e := &h.events[i]
		*e = rateEvent{at: now, tokens: tokens}
		w.events = append(w.events, e)
		if r.RPM > 0 && r.RPM-int64(len(w.events)) < status.Remaining {
			status = RateStatus{Limit: r.RPM, Remaining: r.RPM - int64(len(w.events)), Reset: w.events[0].at.Add(RateWindow)}
		}
	}
	if status.Limit > 0 {
		h.RateStatus = status
	}
	return nil
}

// settle replaces the token estimates of h's entries by the count.
func (rl *limiter) settle(h *Hold, tokens int64) {
	if len(h.events) == 0 {
		return
	}
	rl.mu.Lock()
	for i := range h.events {
		h.events[i].tokens = tokens
	}
	rl.mu.Unlock()
}

// sweep drops windows with no request in the last minute; rl.mu is held.
func (rl *limiter) sweep(now time.Time) {
	for acct, w := range rl.windows {
		w.prune(now)
		if len(w.events) == 0 {
			delete(rl.windows, acct)
		}
	}
}
