package routing

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestOutcomeOfStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		want   Outcome
	}{
		{200, Served}, {201, Served}, {400, Refused}, {404, Refused}, {422, Refused},
		{401, Unauthorized}, {403, Forbidden}, {429, RateLimited},
		{500, ServerError}, {503, ServerError}, {302, ServerError}, {101, ServerError},
	} {
		if got := OutcomeOfStatus(tc.status); got != tc.want {
			t.Errorf("OutcomeOfStatus(%d) = %v, want %v", tc.status, got, tc.want)
		}
	}
}

func TestFailoverSets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		names   []string
		has     []Outcome
		hasNot  []Outcome
		wantErr bool
	}{
		{names: nil, hasNot: []Outcome{Connection, Timeout, ServerError}},
		{names: []string{"none"}, hasNot: []Outcome{Connection, RateLimited}},
		{names: []string{"connection", "timeout"}, has: []Outcome{Connection, Timeout}, hasNot: []Outcome{ServerError, RateLimited, Refused}},
		{names: []string{"5xx", "429", "401", "403"}, has: []Outcome{ServerError, RateLimited, Unauthorized, Forbidden}, hasNot: []Outcome{Connection}},
		{names: []string{"4xx"}, wantErr: true},
		{names: []string{"timeout", "none"}, wantErr: true},
	} {
		f, err := ParseFailover(tc.names)
		if (err != nil) != tc.wantErr {
			t.Fatalf("ParseFailover(%v) error = %v", tc.names, err)
		}
		for _, o := range tc.has {
			if !f.Has(o) {
				t.Errorf("%v: want %v", tc.names, o)
			}
		}
		for _, o := range tc.hasNot {
			if f.Has(o) {
				t.Errorf("%v: do not want %v", tc.names, o)
			}
		}
	}
	for _, o := range []Outcome{Connection, Timeout, ServerError, RateLimited, Unauthorized, Forbidden} {
		if !DefaultFailover.Has(o) {
			t.Errorf("the default fails over on %v", o)
		}
	}
	for _, o := range []Outcome{Served, Refused, Interrupted, Abandoned} {
		if DefaultFailover.Has(o) {
			t.Errorf("the default never fails over on %v", o)
		}
	}
}

func newRoute(targets []Target, p HealthPolicy) *Route {
	return &Route{Name: "r", Targets: targets, Failover: DefaultFailover, Health: NewHealth(len(targets), p),
		RetryBackoff: time.Second, MaxRetryWait: 30 * time.Second}
}

func allEligible(n int) []bool {
	e := make([]bool, n)
	for i := range e {
		e[i] = true
	}
	return e
}

// TestOrderWeights: the first target follows the weights (a 6-sigma bound
// over 20000 draws of a seeded source), every order holds each eligible
// target once, to targets before fallbacks in written order.
func TestOrderWeights(t *testing.T) {
	t.Parallel()
	r := newRoute([]Target{
		{Provider: "a", Model: "m", Weight: 3},
		{Provider: "b", Model: "m", Weight: 1},
		{Provider: "c", Model: "m", Weight: 0}, // counts as 1
		{Provider: "f1", Model: "m", Fallback: true},
		{Provider: "f2", Model: "m", Fallback: true},
	}, HealthPolicy{})
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	first := map[int]int{}
	for range n {
		order := r.Order(allEligible(5), rng.Float64)
		if len(order) != 5 || !slices.Equal(order[3:], []int{3, 4}) {
			t.Fatalf("order %v", order)
		}
		sorted := slices.Clone(order[:3])
		slices.Sort(sorted)
		if !slices.Equal(sorted, []int{0, 1, 2}) {
			t.Fatalf("order %v", order)
		}
		first[order[0]]++
	}
	for i, p := range []float64{0.6, 0.2, 0.2} {
		mean, sd := n*p, math.Sqrt(n*p*(1-p))
		if got := float64(first[i]); math.Abs(got-mean) > 6*sd {
			t.Errorf("target %d first %v times, want %v ± %v", i, got, mean, 6*sd)
		}
	}
	eligible := []bool{false, true, true, false, true}
	if order := r.Order(eligible, rng.Float64); len(order) != 3 || order[2] != 4 || slices.Contains(order, 0) || slices.Contains(order, 3) {
		t.Fatalf("order with ineligible targets: %v", order)
	}
	if order := r.Order(make([]bool, 5), rng.Float64); len(order) != 0 {
		t.Fatalf("no eligible target: %v", order)
	}
}

// TestHealthStateMachine walks one target through failures, cool-down,
// probe, recovery and Retry-After on a clock the test moves.
func TestHealthStateMachine(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		at        time.Duration
		op        string // acquire, report
		outcome   Outcome
		retry     time.Duration
		wantOK    bool
		wantProbe bool
		healthy   bool
	}
	for _, tc := range []struct {
		name   string
		policy HealthPolicy
		steps  []step
	}{
		{"threshold, cool-down, failed probe, good probe", HealthPolicy{UnhealthyAfter: 2, CoolDown: 10 * time.Second}, []step{
			{at: 0, op: "acquire", wantOK: true},
			{at: 0, op: "report", outcome: ServerError, healthy: true},
			{at: 1, op: "acquire", wantOK: true},
			{at: 1, op: "report", outcome: Timeout, healthy: false},
			{at: 5 * time.Second, op: "acquire", wantOK: false},
			{at: 11 * time.Second, op: "acquire", wantOK: true, wantProbe: true},
			{at: 11 * time.Second, op: "acquire", wantOK: false}, // one probe at a time
			{at: 12 * time.Second, op: "report", outcome: Connection, healthy: false},
			{at: 13 * time.Second, op: "acquire", wantOK: false},
			{at: 22 * time.Second, op: "acquire", wantOK: true, wantProbe: true},
			{at: 22 * time.Second, op: "report", outcome: Served, healthy: true},
			{at: 22 * time.Second, op: "acquire", wantOK: true},
		}},
		{"a success resets the count", HealthPolicy{UnhealthyAfter: 2, CoolDown: time.Minute}, []step{
			{op: "report", outcome: ServerError, healthy: true},
			{op: "report", outcome: Served, healthy: true},
			{op: "report", outcome: ServerError, healthy: true},
			{op: "report", outcome: Refused, healthy: true}, // a 400 is the provider answering
			{op: "report", outcome: ServerError, healthy: true},
			{op: "acquire", wantOK: true},
		}},
		{"abandoned attempts count for nothing", HealthPolicy{UnhealthyAfter: 1, CoolDown: time.Minute}, []step{
			{op: "report", outcome: Abandoned, healthy: true},
			{op: "acquire", wantOK: true},
		}},
		{"interrupted streams count as failures", HealthPolicy{UnhealthyAfter: 1, CoolDown: time.Minute}, []step{
			{op: "report", outcome: Interrupted, healthy: false},
			{op: "acquire", wantOK: false},
		}},
		{"no threshold: never out of service for failures", HealthPolicy{UnhealthyAfter: 0, CoolDown: time.Minute}, []step{
			{op: "report", outcome: ServerError, healthy: true},
			{op: "report", outcome: ServerError, healthy: true},
			{op: "report", outcome: ServerError, healthy: true},
			{op: "acquire", wantOK: true},
		}},
		{"Retry-After takes the target out for as long as it asks", HealthPolicy{UnhealthyAfter: 0, CoolDown: time.Second}, []step{
			{at: 0, op: "report", outcome: RateLimited, retry: 20 * time.Second, healthy: false},
			{at: 19 * time.Second, op: "acquire", wantOK: false},
			{at: 20 * time.Second, op: "acquire", wantOK: true, wantProbe: true},
		}},
		{"a stuck probe is replaced after a cool-down", HealthPolicy{UnhealthyAfter: 1, CoolDown: 10 * time.Second}, []step{
			{at: 0, op: "report", outcome: ServerError, healthy: false},
			{at: 10 * time.Second, op: "acquire", wantOK: true, wantProbe: true},
			{at: 15 * time.Second, op: "acquire", wantOK: false},
			{at: 20 * time.Second, op: "acquire", wantOK: true, wantProbe: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := NewHealth(1, tc.policy)
			probe := false
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				switch s.op {
				case "acquire":
					ok, p := h.Acquire(0, now)
					if ok != s.wantOK || p != s.wantProbe {
						t.Fatalf("step %d: Acquire = %v, %v; want %v, %v", i, ok, p, s.wantOK, s.wantProbe)
					}
					if p {
						probe = true
					}
				case "report":
					healthy, _ := h.Report(0, probe, s.outcome, s.retry, now)
					probe = false
					if healthy != s.healthy || h.Healthy(0) != s.healthy {
						t.Fatalf("step %d: healthy = %v, want %v", i, healthy, s.healthy)
					}
				}
			}
		})
	}
}

// TestSequence: skipped targets are passed over and reported, all-skipped
// tries the one due back first, retries wait the backoff or Retry-After.
func TestSequence(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	targets := []Target{{Provider: "a", Model: "m"}, {Provider: "b", Model: "m"}, {Provider: "f", Model: "m", Fallback: true}}

	t.Run("walks the order, skipping targets out of service", func(t *testing.T) {
		t.Parallel()
		r := newRoute(targets, HealthPolicy{UnhealthyAfter: 1, CoolDown: time.Minute})
		r.Health.Report(0, false, Connection, 0, t0)
		s := r.Start([]int{0, 1, 2})
		step, ok := s.Next(t0)
		if !ok || step.Target != 1 || !slices.Equal(step.Skipped, []int{0}) {
			t.Fatalf("step %+v %v", step, ok)
		}
		s.Report(step, ServerError, 0, t0)
		step, ok = s.Next(t0)
		if !ok || step.Target != 2 || len(step.Skipped) != 0 {
			t.Fatalf("step %+v %v", step, ok)
		}
		s.Report(step, ServerError, 0, t0)
		if _, ok := s.Next(t0); ok {
			t.Fatal("no target left, no retries: want the end")
		}
	})
	t.Run("every target out of service: the one due back first", func(t *testing.T) {
		t.Parallel()
		r := newRoute(targets, HealthPolicy{UnhealthyAfter: 1, CoolDown: time.Minute})
		r.Health.Report(0, false, Connection, 0, t0)
		r.Health.Report(1, false, Connection, 0, t0.Add(-30*time.Second))
		r.Health.Report(2, false, Connection, 0, t0)
		s := r.Start([]int{0, 1, 2})
		step, ok := s.Next(t0)
		if !ok || step.Target != 1 || !slices.Equal(step.Skipped, []int{0, 2}) {
			t.Fatalf("step %+v %v", step, ok)
		}
		s.Report(step, Connection, 0, t0)
		if _, ok := s.Next(t0); ok {
			t.Fatal("want the end")
		}
	})
	t.Run("retry rounds back off, Retry-After when every failure named one", func(t *testing.T) {
		t.Parallel()
		r := newRoute(targets[:2], HealthPolicy{})
		r.Retries, r.RetryBackoff, r.MaxRetryWait = 2, time.Second, 10*time.Second
		s := r.Start([]int{0, 1})
		type try struct {
			outcome    Outcome
			retryAfter time.Duration
		}
		// What each target answers, in turn.
		answers := map[int][]try{
			0: {{ServerError, 0}, {RateLimited, 3 * time.Second}, {ServerError, 0}},
			1: {{RateLimited, 5 * time.Second}},
		}
		now := t0
		var waits []time.Duration
		var tried []int
		for {
			step, ok := s.Next(now)
			if !ok {
				break
			}
			if step.Target == -1 {
				waits = append(waits, step.Wait)
				now = now.Add(step.Wait)
				continue
			}
			tried = append(tried, step.Target)
			a := answers[step.Target][0]
			answers[step.Target] = answers[step.Target][1:]
			s.Report(step, a.outcome, a.retryAfter, now)
		}
		// Round 1 waits the backoff (a 5xx named no delay) and skips b,
		// whose Retry-After (5s) has not passed; round 2 waits a's
		// Retry-After (3s, over twice the backoff) and still skips b.
		if !slices.Equal(waits, []time.Duration{time.Second, 3 * time.Second}) || !slices.Equal(tried, []int{0, 1, 0, 0}) {
			t.Fatalf("waits %v, tried %v", waits, tried)
		}
	})
	t.Run("a wait over the maximum ends the retries", func(t *testing.T) {
		t.Parallel()
		r := newRoute(targets[:1], HealthPolicy{})
		r.Retries, r.RetryBackoff, r.MaxRetryWait = 3, time.Second, 10*time.Second
		s := r.Start([]int{0})
		step, _ := s.Next(t0)
		s.Report(step, RateLimited, time.Minute, t0)
		if step, ok := s.Next(t0); ok {
			t.Fatalf("want the end, got %+v", step)
		}
	})
	t.Run("empty order", func(t *testing.T) {
		t.Parallel()
		r := newRoute(targets, HealthPolicy{})
		if _, ok := r.Start(nil).Next(t0); ok {
			t.Fatal("want the end")
		}
	})
}

// BenchmarkRouteHealthyFirstTarget is what a route adds to a request whose
// first target answers: the order, one step, one report.
func BenchmarkRouteHealthyFirstTarget(b *testing.B) {
	r := newRoute([]Target{
		{Provider: "a", Model: "m", Weight: 3},
		{Provider: "b", Model: "m", Weight: 1},
		{Provider: "f", Model: "m", Fallback: true},
	}, HealthPolicy{UnhealthyAfter: 3, CoolDown: time.Minute})
	eligible := allEligible(3)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s := r.Start(r.Order(eligible, rand.Float64))
		step, ok := s.Next(now)
		if !ok {
			b.Fatal("no step")
		}
		s.Report(step, Served, 0, now)
	}
}
