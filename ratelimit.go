package llmgateway

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// rateWindow is the length of the sliding rate-limit window.
const rateWindow = time.Minute

// rateLimiter enforces requests and tokens per minute over a sliding
// window, in memory, per user and per key.
type rateLimiter struct {
	mu      sync.Mutex
	windows map[account]*window
	admits  int // since the last sweep
}

// sweepEvery is how many admissions pass between sweeps of idle windows.
const sweepEvery = 4096

func newRateLimiter() *rateLimiter {
	return &rateLimiter{windows: make(map[account]*window)}
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

// rateRule is one limit on one account; zero fields do not limit.
type rateRule struct {
	acct account
	rpm  int64
	tpm  int64
}

// rateTicket is what admit returns: the events to settle, and the values
// of the X-RateLimit-* headers.
type rateTicket struct {
	events    []*rateEvent
	limit     int64
	remaining int64
	reset     time.Time
}

func (w *window) prune(now time.Time) {
	cut := 0
	for cut < len(w.events) && !w.events[cut].at.After(now.Add(-rateWindow)) {
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

// admit records a request of estimated tokens under every rule, or refuses
// it with a 429 carrying Retry-After when any rule is full.
func (rl *rateLimiter) admit(now time.Time, rules []rateRule, tokens int64) (*rateTicket, error) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.admits++; rl.admits >= sweepEvery {
		rl.admits = 0
		rl.sweep(now)
	}
	for _, r := range rules {
		w := rl.windows[r.acct]
		if w == nil {
			continue
		}
		w.prune(now)
		full := (r.rpm > 0 && int64(len(w.events)) >= r.rpm) || (r.tpm > 0 && len(w.events) > 0 && w.tokens()+tokens > r.tpm)
		if full {
			return nil, rateLimited(w.events[0].at.Add(rateWindow).Sub(now))
		}
	}
	t := &rateTicket{remaining: math.MaxInt64}
	for _, r := range rules {
		w := rl.windows[r.acct]
		if w == nil {
			w = &window{}
			rl.windows[r.acct] = w
		}
		e := &rateEvent{at: now, tokens: tokens}
		w.events = append(w.events, e)
		t.events = append(t.events, e)
		if r.rpm > 0 && r.rpm-int64(len(w.events)) < t.remaining {
			t.limit, t.remaining, t.reset = r.rpm, r.rpm-int64(len(w.events)), w.events[0].at.Add(rateWindow)
		}
	}
	return t, nil
}

// settle replaces the token estimates of an admitted request by the count.
func (rl *rateLimiter) settle(t *rateTicket, tokens int64) {
	if t == nil {
		return
	}
	rl.mu.Lock()
	for _, e := range t.events {
		e.tokens = tokens
	}
	rl.mu.Unlock()
}

// sweep drops windows with no request in the last minute; rl.mu is held.
func (rl *rateLimiter) sweep(now time.Time) {
	for acct, w := range rl.windows {
		w.prune(now)
		if len(w.events) == 0 {
			delete(rl.windows, acct)
		}
	}
}

// setHeaders adds X-RateLimit-* for the most constraining requests-per-
// minute rule.
func (t *rateTicket) setHeaders(h http.Header) {
	if t == nil || t.limit == 0 {
		return
	}
	h.Set("X-RateLimit-Limit", strconv.FormatInt(t.limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(max(t.remaining, 0), 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(t.reset.Unix(), 10))
}

func rateLimited(wait time.Duration) *apiError {
	secs := int64(math.Ceil(wait.Seconds()))
	secs = min(max(secs, 1), int64(rateWindow/time.Second))
	e := newError(http.StatusTooManyRequests, "rate_limit_exceeded", "Rate limit exceeded")
	e.Header = http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
	return e
}
