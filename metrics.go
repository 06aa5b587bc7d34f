package llmgateway

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// gatewayMetrics are created once per process and registered on every
// config's registry, so a reload neither resets them nor fails on a
// duplicate registration. Labels never carry user ids, keys or raw paths:
// endpoints are route templates, and models outside the configured and
// priced ones are reported as "other".
var gatewayMetrics struct {
	once            sync.Once
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	active          prometheus.Gauge
	tokens          *prometheus.CounterVec
	cost            *prometheus.HistogramVec
	budgetExceeded  prometheus.Counter
	rateLimitHits   prometheus.Counter
	authFailures    *prometheus.CounterVec
	upstreamLatency *prometheus.HistogramVec
	firstToken      *prometheus.HistogramVec
	spooled         prometheus.Counter
	spoolDelivered  prometheus.Counter
	// Upstream attempts and routes.
	attempts           *prometheus.CounterVec
	routeFailovers     *prometheus.CounterVec
	routeSkipped       *prometheus.CounterVec
	routeTargetHealthy *prometheus.GaugeVec
}

func initMetrics(registry *prometheus.Registry) error {
	m := &gatewayMetrics
	m.once.Do(func() {
		m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_requests_total",
			Help: "Requests answered by the LLM gateway, by route and status code.",
		}, []string{"endpoint", "status"})
		m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_request_duration_seconds",
			Help:    "Time to answer a request, streams until their end.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"endpoint"})
		m.active = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_active_requests",
			Help: "Requests being answered.",
		})
		m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_tokens_total",
			Help: "Tokens metered, by provider, model and type (input or output).",
		}, []string{"provider", "model", "type"})
		m.cost = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_request_cost_dollars",
			Help:    "Cost of metered requests in USD.",
			Buckets: []float64{0.00001, 0.0001, 0.001, 0.01, 0.1, 1, 10},
		}, []string{"provider", "model"})
		m.budgetExceeded = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_budget_exceeded_total",
			Help: "Requests refused because a budget did not allow them.",
		})
		m.rateLimitHits = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_rate_limit_hits_total",
			Help: "Requests refused by a rate limit.",
		})
		m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_auth_failures_total",
			Help: "Failed authentications, by reason.",
		}, []string{"reason"})
		m.upstreamLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_upstream_duration_seconds",
			Help:    "Time until a provider's response headers arrived.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"provider"})
		m.firstToken = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_time_to_first_token_seconds",
			Help:    "Time until the first streamed event of a provider reached the client.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"provider"})
		m.spooled = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_usage_spooled_total",
			Help: "Usage records written to the local spool while the database was unreachable.",
		})
		m.spoolDelivered = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_usage_spool_delivered_total",
			Help: "Spooled usage records delivered to the database.",
		})
		m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_upstream_attempts_total",
			Help: "Upstream attempts, by provider and outcome (served, refused, connection_error, timeout, server_error, rate_limited, unauthorized, forbidden, interrupted, abandoned).",
		}, []string{"provider", "outcome"})
		m.routeFailovers = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_route_failovers_total",
			Help: "Attempts a route moved on from to its next target, by route and the provider that failed.",
		}, []string{"route", "provider"})
		m.routeSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_route_skipped_total",
			Help: "Route targets passed over, by route, provider and reason (unhealthy: cooling down after failures; unpriced: no price under a budget).",
		}, []string{"route", "provider", "reason"})
		m.routeTargetHealthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gateway_route_target_healthy",
			Help: "1 when a route's target is in service, 0 while it is skipped after failures (passive health).",
		}, []string{"route", "provider", "model"})
	})
	for _, c := range []prometheus.Collector{
		m.requests, m.duration, m.active, m.tokens, m.cost, m.budgetExceeded,
		m.rateLimitHits, m.authFailures, m.upstreamLatency, m.firstToken,
		m.spooled, m.spoolDelivered, m.attempts, m.routeFailovers, m.routeSkipped, m.routeTargetHealthy,
	} {
		if err := registry.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return err
			}
		}
	}
	return nil
}

// observeRequest counts a finished request.
func observeRequest(endpoint string, status int, elapsed time.Duration) {
	m := &gatewayMetrics
	m.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(endpoint).Observe(elapsed.Seconds())
}

// observeRefusal counts authentication failures, budget refusals and rate
// limit hits from the error a request was refused with.
func observeRefusal(e *apiError) {
	m := &gatewayMetrics
	switch e.Status {
	case 401:
		m.authFailures.WithLabelValues(authFailureReason(e.Code)).Inc()
	case 403:
		if e.Code == "budget_exceeded" {
			m.budgetExceeded.Inc()
		}
	case 429:
		m.rateLimitHits.Inc()
	}
}

// authFailureReason maps error codes to the any-llm reason labels.
func authFailureReason(code string) string {
	switch code {
	case "missing_credentials":
		return "missing_credentials"
	case "invalid_header_format", "invalid_api_key_format":
		return "invalid_format"
	case "invalid_api_key":
		return "invalid_key"
	case "inactive_api_key":
		return "inactive_key"
	case "expired_api_key":
		return "expired_key"
	case "invalid_master_key":
		return "invalid_master_key"
	}
	return "other"
}

// observeUsage counts a metered call's tokens and cost.
func (g *Gateway) observeUsage(provider, model string, prompt, completion int64, cost storage.Money) {
	m := &gatewayMetrics
	model = g.modelLabel(provider, model)
	if prompt > 0 {
		m.tokens.WithLabelValues(provider, model, "input").Add(float64(prompt))
	}
	if completion > 0 {
		m.tokens.WithLabelValues(provider, model, "output").Add(float64(completion))
	}
	if cost > 0 {
		m.cost.WithLabelValues(provider, model).Observe(cost.Dollars())
	}
}

// modelLabel keeps the model label bounded: a model the config lists, or
// one with a price, is itself; anything a client made up is "other".
func (g *Gateway) modelLabel(provider, model string) string {
	if up := g.upstreams[provider]; up != nil {
		for _, m := range up.models {
			if m == model {
				return model
			}
		}
	}
	if p, err := g.price(provider, model); err == nil && p != nil {
		return model
	}
	return "other"
}
