// Package routing decides, for a request that names a route, which
// upstream targets are tried and in what order: a weighted choice among the
// route's `to` targets, then the others, then its fallbacks; which outcomes
// of an attempt move on to the next target; and the passive health of each
// target (skipped for a cool-down after repeated failures, then probed by
// one request). It does no I/O and knows neither Caddy nor the store.
package routing

import (
	"fmt"
	"strings"
)

// Outcome is how one upstream attempt ended.
type Outcome uint8

const (
	// Served: the provider answered 2xx.
	Served Outcome = iota
	// Refused: the provider answered a 4xx other than 401, 403 and 429 (a
	// bad request): answered as it is, never retried.
	Refused
	// Connection: no connection could be made, or it broke before an
	// answer was read.
	Connection
	// Timeout: the attempt ran out of time before an answer.
	Timeout
	// ServerError: the provider answered 5xx (or an answer the gateway
	// cannot use, such as a redirect).
	ServerError
	// RateLimited: the provider answered 429.
	RateLimited
	// Unauthorized: the provider answered 401 (the gateway's provider key).
	Unauthorized
	// Forbidden: the provider answered 403.
	Forbidden
	// Interrupted: the answer had started reaching the client when the
	// provider failed: too late to fail over.
	Interrupted
	// Abandoned: the client left, or the gateway stopped; says nothing of
	// the provider's health.
	Abandoned
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	Served:       "served",
	Refused:      "refused",
	Connection:   "connection_error",
	Timeout:      "timeout",
	ServerError:  "server_error",
	RateLimited:  "rate_limited",
	Unauthorized: "unauthorized",
	Forbidden:    "forbidden",
	Interrupted:  "interrupted",
	Abandoned:    "abandoned",
}

// String is the outcome's name in metrics and traces.
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// OutcomeOfStatus classifies a provider's HTTP status.
func OutcomeOfStatus(status int) Outcome {
	switch {
	case status >= 200 && status < 300:
		return Served
	case status == 429:
		return RateLimited
	case status == 401:
		return Unauthorized
	case status == 403:
		return Forbidden
	case status >= 400 && status < 500:
		return Refused
	}
	return ServerError // 5xx, and the 1xx and 3xx the gateway cannot use
}

// Failed reports whether the outcome counts against the target's health:
// the provider failed, rather than the request or the client.
func (o Outcome) Failed() bool {
	switch o {
	case Connection, Timeout, ServerError, RateLimited, Unauthorized, Forbidden, Interrupted:
		return true
	}
	return false
}

// Failover is the set of outcomes on which a route moves on to its next
// target.
type Failover uint16

// failoverNames are the Caddyfile's names of the outcomes a route can fail
// over on (failover_on).
var failoverNames = []struct {
	name    string
	outcome Outcome
}{
	{"connection", Connection},
	{"timeout", Timeout},
	{"5xx", ServerError},
	{"429", RateLimited},
	{"401", Unauthorized},
	{"403", Forbidden},
}

// DefaultFailover fails over on every failure of the provider that happens
// before the answer started: a connection error, a timeout, a 5xx, 429,
// 401 or 403.
const DefaultFailover = Failover(1<<Connection | 1<<Timeout | 1<<ServerError | 1<<RateLimited | 1<<Unauthorized | 1<<Forbidden)

// Has reports whether the set fails over on o.
func (f Failover) Has(o Outcome) bool { return o < numOutcomes && f&(1<<o) != 0 }

// ParseFailover reads failover_on's names (connection, timeout, 5xx, 429,
// 401, 403); "none" is the empty set.
func ParseFailover(names []string) (Failover, error) {
	var f Failover
	for _, n := range names {
		if n == "none" && len(names) == 1 {
			return 0, nil
		}
		found := false
		for _, fn := range failoverNames {
			if fn.name == n {
				f |= 1 << fn.outcome
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown failover outcome %q: expected %s, or none", n, FailoverNames())
		}
	}
	return f, nil
}

// FailoverNames lists the names ParseFailover accepts.
func FailoverNames() string {
	names := make([]string, len(failoverNames))
	for i, fn := range failoverNames {
		names[i] = fn.name
	}
	return strings.Join(names, ", ")
}
