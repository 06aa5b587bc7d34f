package routing

import "time"

// Target is one provider:model a route can send a request to.
type Target struct {
	Provider string
	Model    string
	// Weight is the target's share of the route's requests among the `to`
	// targets (at least 1); fallbacks have none.
	Weight int
	// Fallback targets are tried, in order, after every `to` target.
	Fallback bool
}

// String is the target as clients and records name it: provider:model.
func (t Target) String() string { return t.Provider + ":" + t.Model }

// Route is a named set of targets and how requests move between them.
type Route struct {
	Name string
	// Targets are the `to` targets, then the fallbacks in order.
	Targets  []Target
	Failover Failover
	// Retries is how many more times the whole list is gone through once
	// every target failed; each round waits RetryBackoff, doubled each
	// round, or the Retry-After the providers asked for when every failure
	// was a 429 that named one and it is longer. A wait longer than
	// MaxRetryWait ends the retries.
	Retries      int
	RetryBackoff time.Duration
	MaxRetryWait time.Duration
	Health       *Health
}

// Order returns the order in which a request tries the route's targets:
// the `to` targets by weighted sampling without replacement (so the first
// is chosen by weight and a failed one's share spreads by weight over the
// others), then the fallbacks in the order written. Targets whose
// eligible entry is false are left out. rnd returns numbers in [0, 1).
func (r *Route) Order(eligible []bool, rnd func() float64) []int {
	order := make([]int, 0, len(r.Targets))
	var pool [8]int
	to := pool[:0]
	total := 0
	for i, t := range r.Targets {
		if !eligible[i] || t.Fallback {
			continue
		}
		to = append(to, i)
		total += max(t.Weight, 1)
	}
	for len(to) > 0 {
		x := int(rnd() * float64(total))
		k := 0
		for ; k < len(to)-1; k++ {
			w := max(r.Targets[to[k]].Weight, 1)
			if x < w {
				break
			}
			x -= w
		}
		order = append(order, to[k])
		total -= max(r.Targets[to[k]].Weight, 1)
		to = append(to[:k], to[k+1:]...)
	}
	for i, t := range r.Targets {
		if eligible[i] && t.Fallback {
			order = append(order, i)
		}
	}
	return order
}

// Step is what a request does next.
type Step struct {
	// Target is the index of the target to try, or -1 to wait Wait and
	// ask again (a retry round).
	Target int
	// Probe: this try ends the target's cool-down; its outcome decides
	// whether the target is back in service.
	Probe bool
	Wait  time.Duration
	// Skipped are the targets passed over since the last step because
	// they are cooling down.
	Skipped []int
}

// Sequence is one request's walk through a route's order.
type Sequence struct {
	r     *Route
	order []int
	pos   int
	round int
	// Of the current round:
	attempted     bool
	failures      int
	retryAfters   int // failures that were a 429 naming a Retry-After
	minRetryAfter time.Duration
	skipped       []int
}

// Start begins a request's walk through order (from Order).
func (r *Route) Start(order []int) *Sequence {
	return &Sequence{r: r, order: order}
}

// Next returns the next step, or false when no target is left to try.
func (s *Sequence) Next(now time.Time) (Step, bool) {
	if len(s.order) == 0 {
		return Step{}, false
	}
	for s.pos < len(s.order) {
		i := s.order[s.pos]
		s.pos++
		if ok, probe := s.r.Health.Acquire(i, now); ok {
			s.attempted = true
			step := Step{Target: i, Probe: probe, Skipped: s.skipped}
			s.skipped = nil
			return step, true
		}
		s.skipped = append(s.skipped, i)
	}
	if !s.attempted {
		// Every target is cooling down: try the one due back first rather
		// than refuse, so that an outage of all of them ends with the
		// first to recover.
		s.attempted = true
		i := s.r.Health.soonest(s.order)
		skipped := s.skipped[:0]
		for _, j := range s.skipped {
			if j != i {
				skipped = append(skipped, j)
			}
		}
		s.skipped = nil
		return Step{Target: i, Skipped: skipped}, true
	}
	if s.round >= s.r.Retries || s.failures == 0 {
		return Step{}, false
	}
	wait := s.r.RetryBackoff << s.round
	if s.retryAfters == s.failures && s.minRetryAfter > wait {
		wait = s.minRetryAfter
	}
	if wait > s.r.MaxRetryWait {
		return Step{}, false
	}
	s.round++
	s.pos, s.attempted, s.failures, s.retryAfters, s.minRetryAfter = 0, false, 0, 0, 0
	return Step{Target: -1, Wait: wait, Skipped: s.skipped}, true
}

// Report records the outcome of step's try, for the target's health and
// the retry rounds; it returns the target's health as Health.Report does.
func (s *Sequence) Report(step Step, o Outcome, retryAfter time.Duration, now time.Time) (healthy, changed bool) {
	if o.Failed() {
		s.failures++
		if o == RateLimited && retryAfter > 0 {
			if s.retryAfters == 0 || retryAfter < s.minRetryAfter {
				s.minRetryAfter = retryAfter
			}
			s.retryAfters++
		}
	}
	return s.r.Health.Report(step.Target, step.Probe, o, retryAfter, now)
}
