package routing

import (
	"sync"
	"time"
)

// HealthPolicy says when a target is skipped.
type HealthPolicy struct {
	// UnhealthyAfter is how many failures in a row take a target out of
	// service; 0 never does (a 429's Retry-After still does, for as long
	// as it asks).
	UnhealthyAfter int
	// CoolDown is how long a target out of service is skipped before one
	// request probes it.
	CoolDown time.Duration
}

// Health is the passive health of a route's targets, learnt from the
// outcomes of real requests (no request is sent to check). A target is
// healthy until UnhealthyAfter failures in a row; it is then skipped for
// CoolDown; after that, the first request to reach it is its probe while
// the others keep skipping it: the probe's success makes the target
// healthy, its failure starts another cool-down. A 429 with Retry-After
// takes the target out for that long whatever the count. Safe for
// concurrent use.
type Health struct {
	policy HealthPolicy
	mu     sync.Mutex
	state  []targetHealth
}

type targetHealth struct {
	failures   int       // in a row
	downUntil  time.Time // zero: in service
	probing    bool      // a probe is out
	probeSince time.Time
}

// NewHealth returns the health of n targets, all in service.
func NewHealth(n int, p HealthPolicy) *Health {
	return &Health{policy: p, state: make([]targetHealth, n)}
}

// Acquire reports whether target i may be tried now, and whether that try
// is the probe that ends its cool-down (whose outcome must be reported).
func (h *Health) Acquire(i int, now time.Time) (ok, probe bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := &h.state[i]
	switch {
	case t.downUntil.IsZero():
		return true, false
	case now.Before(t.downUntil):
		return false, false
	case t.probing && now.Sub(t.probeSince) < h.policy.CoolDown:
		// One probe at a time; a probe that never reports (a very long
		// stream) does not keep the target out for ever.
		return false, false
	}
	t.probing, t.probeSince = true, now
	return true, true
}

// Report records the outcome of an attempt on target i (probe as Acquire
// said) with the Retry-After a 429 asked for. It reports whether the
// target is in service afterwards and whether that changed.
func (h *Health) Report(i int, probe bool, o Outcome, retryAfter time.Duration, now time.Time) (healthy, changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := &h.state[i]
	was := t.downUntil.IsZero()
	if probe {
		t.probing = false
	}
	switch {
	case o == Served || o == Refused:
		// The provider answered for itself: it is alive.
		t.failures, t.downUntil = 0, time.Time{}
	case o.Failed():
		t.failures++
		if probe || h.policy.UnhealthyAfter > 0 && t.failures >= h.policy.UnhealthyAfter {
			t.downUntil = laterOf(t.downUntil, now.Add(h.policy.CoolDown))
		}
		if o == RateLimited && retryAfter > 0 {
			t.downUntil = laterOf(t.downUntil, now.Add(retryAfter))
		}
	}
	healthy = t.downUntil.IsZero()
	return healthy, healthy != was
}

// Healthy reports whether target i is in service (not cooling down nor
// waiting for its probe's outcome).
func (h *Health) Healthy(i int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state[i].downUntil.IsZero()
}

// soonest returns, of the targets in order, the one whose cool-down ends
// first.
func (h *Health) soonest(order []int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	best := order[0]
	for _, i := range order[1:] {
		if h.state[i].downUntil.Before(h.state[best].downUntil) {
			best = i
		}
	}
	return best
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
