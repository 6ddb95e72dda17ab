package app

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"wabot/tenant"
)

// metrics is the process's Prometheus registry. Labels are bounded: no
// tenant id appears in them, so a thousand tenants make no more series
// than one.
type metrics struct {
	reg         *prometheus.Registry
	messages    *prometheus.CounterVec
	replyDelay  prometheus.Histogram
	reconnects  prometheus.Counter
	webhooks    *prometheus.CounterVec
	queueDrops  prometheus.Counter
	rateLimited prometheus.Counter
	deferred    prometheus.Counter
	http        *prometheus.CounterVec
	leaseMoves  *prometheus.CounterVec
	aiTurns     *prometheus.CounterVec
	aiTokens    prometheus.Counter
}

func newMetrics(st *tenant.Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wabot_messages_total",
			Help: "Messages by direction (in, out) and the status they reached."}, []string{"direction", "status"}),
		replyDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wabot_reply_latency_seconds",
			Help:    "Time from storing an inbound message to sending its reply.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "wabot_reconnects_total",
			Help: "Connections to WhatsApp that dropped and were reconnected."}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wabot_webhook_deliveries_total",
			Help: "Webhook delivery attempts by result: delivered, retry, failed."}, []string{"result"}),
		queueDrops: prometheus.NewCounter(prometheus.CounterOpts{Name: "wabot_queue_drops_total",
			Help: "Inbound messages dropped because their chat's queue was full."}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{Name: "wabot_rate_limited_total",
			Help: "Replies not sent because of a rate limit."}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{Name: "wabot_sends_deferred_total",
			Help: "Replies put off because the connection to WhatsApp was down or dropped during the send; each is sent again, with the same id, once connected."}),
		http: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wabot_http_requests_total",
			Help: "HTTP requests by route pattern, method and status."}, []string{"route", "method", "status"}),
		leaseMoves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wabot_lease_moves_total",
			Help: "Tenant leases this instance acquired, released (shutting down, or giving its share up to another instance) or lost (claimed elsewhere, or not renewed in time)."},
			[]string{"move"}),
		aiTurns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wabot_ai_turns_total",
			Help: "Messages put to the tenants' models, by outcome: answered, handover (the model asked for a person), failed (a timeout, an error, an unusable answer), refused (a budget or a chat's daily limit, before any call), trial (a test question from the Bot page)."},
			[]string{"outcome"}),
		aiTokens: prometheus.NewCounter(prometheus.CounterOpts{Name: "wabot_ai_tokens_total",
			Help: "Tokens the tenants' models used, as their providers counted them."}),
	}
	for _, how := range []string{"acquired", "released", "lost"} {
		m.leaseMoves.WithLabelValues(how) // every series from the start, at 0
	}
	for _, outcome := range []string{"answered", "handover", "failed", "refused", "trial"} {
		m.aiTurns.WithLabelValues(outcome)
	}
	m.reg.MustRegister(m.messages, m.replyDelay, m.reconnects, m.webhooks, m.queueDrops, m.rateLimited, m.deferred, m.http, m.leaseMoves,
		m.aiTurns, m.aiTokens,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{store: st})
	return m
}

// Observer hooks of the session manager and the bot.

func (m *metrics) Reconnect() { m.reconnects.Inc() }

func (m *metrics) Message(direction string, status tenant.MessageStatus) {
	m.messages.WithLabelValues(direction, string(status)).Inc()
	switch {
	case direction == "in" && status == tenant.MsgDropped:
		m.queueDrops.Inc()
	case direction == "out" && status == tenant.MsgRateLimited:
		m.rateLimited.Inc()
	}
}

func (m *metrics) Replied(d time.Duration) { m.replyDelay.Observe(d.Seconds()) }

func (m *metrics) Webhook(result string) { m.webhooks.WithLabelValues(result).Inc() }

func (m *metrics) SendDeferred() { m.deferred.Inc() }

func (m *metrics) AI(outcome string, tokens int64) {
	m.aiTurns.WithLabelValues(outcome).Inc()
	m.aiTokens.Add(float64(tokens))
}

// LeaseMoved counts a lease that moved to or from this instance.
func (m *metrics) LeaseMoved(how string) { m.leaseMoves.WithLabelValues(how).Inc() }

// leases adds the gauge of tenant leases this instance holds.
func (m *metrics) leases(s interface{ LeasesHeld() int }) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wabot_leases_held",
		Help: "Tenant leases this instance holds: the tenants whose WhatsApp sessions run here."},
		func() float64 { return float64(s.LeasesHeld()) }))
}

// middleware counts requests by Echo's route pattern ("/admin/tenants/:id/:action"),
// never by raw path, and by a fixed set of methods: every label comes
// from a bounded set, whatever strangers send.
func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		m.http.WithLabelValues(route, methodLabel(c.Request().Method), strconv.Itoa(c.Response().Status)).Inc()
		return nil
	}
}

// handler serves /metrics: with WABOT_METRICS_TOKEN set, to bearers of
// the token; otherwise to loopback clients only, and never to a request
// that came through a proxy (behind a same-host proxy without
// WABOT_TRUSTED_PROXIES, every client would look like loopback).
func (m *metrics) handler(token string) echo.HandlerFunc {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return func(c echo.Context) error {
		if token != "" {
			got, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="wabot metrics"`)
				return c.String(http.StatusUnauthorized, "unauthorized\n")
			}
		} else if forwarded(c.Request()) {
			return c.String(http.StatusForbidden, "metrics are not served through a proxy without a token; set WABOT_METRICS_TOKEN\n")
		} else if ip := net.ParseIP(c.RealIP()); ip == nil || !ip.IsLoopback() {
			return c.String(http.StatusForbidden, "metrics are served to loopback clients only; set WABOT_METRICS_TOKEN to allow others\n")
		}
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}

// stateCollector reads tenants by status and sessions by state from the
// database at scrape time, so the numbers are never stale.
type stateCollector struct{ store *tenant.Store }

var (
	tenantsDesc  = prometheus.NewDesc("wabot_tenants", "Tenants by status.", []string{"status"}, nil)
	sessionsDesc = prometheus.NewDesc("wabot_sessions", "WhatsApp sessions by state.", []string{"state"}, nil)
	workersDesc  = prometheus.NewDesc("wabot_workers", "Tenant supervisors by status.", []string{"status"}, nil)
)

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tenantsDesc
	ch <- sessionsDesc
	ch <- workersDesc
}

func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s.store.CountStates(ctx)
	if err != nil {
		for _, d := range []*prometheus.Desc{tenantsDesc, sessionsDesc, workersDesc} {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
		return
	}
	gauges(ch, tenantsDesc, c.Tenants)
	gauges(ch, sessionsDesc, c.Sessions)
	gauges(ch, workersDesc, c.Workers)
}

func gauges[K ~string](ch chan<- prometheus.Metric, desc *prometheus.Desc, counts map[K]int) {
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), string(k))
	}
}
