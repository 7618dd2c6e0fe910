// Package metrics exposes the sensor's counters to Prometheus on its own
// registry: events and drops by cause, messages, alerts by rule and
// severity, containment actions, detection and containment latency,
// tracked servers, ring-buffer fill, and the SOC outputs.
package metrics

import (
	"context"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Snapshot is what the collector reads at each scrape.
type Snapshot struct {
	Effects, Messages uint64
	Kernel            map[string]uint64 // kernel counters by name (drops and cuts by cause)
	Decoder           map[string]uint64 // decoder losses by cause
	Servers           int               // servers the correlator follows
	RingFill          map[string]float64
	NATSPending       int
	NATSPublished     uint64
	// The pipeline's queues (stages and subscribers): what each holds, and
	// what each dropped, by cause.
	QueueLen     map[string]int
	QueueDropped map[string]map[string]uint64
}

// Metrics holds the registry and the metrics updated as things happen.
type Metrics struct {
	Registry *prometheus.Registry
	alerts   *prometheus.CounterVec
	actions  *prometheus.CounterVec
	detect   prometheus.Histogram
	contain  prometheus.Histogram
	mu       sync.Mutex
	rules    map[string]bool
	snap     func() Snapshot
}

// maxRules bounds the rule label: rule names come from the rule files (and
// the baselines' few), but a label per unbounded name is never wanted.
const maxRules = 512

// New makes the metrics; snap is called at every scrape.
func New(snap func() Snapshot) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(), snap: snap}
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpsec_alerts_total", Help: "Alerts raised, by rule and severity."}, []string{"rule", "severity"})
	m.actions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpsec_containment_actions_total", Help: "Containment actions carried out, by action."}, []string{"action"})
	buckets := []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1}
	m.detect = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mcpsec_detection_latency_seconds", Help: "From the offending syscall to the alert.", Buckets: buckets})
	m.contain = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mcpsec_containment_latency_seconds", Help: "From the offending syscall to the cgroup frozen.", Buckets: buckets})
	m.Registry.MustRegister(m.alerts, m.actions, m.detect, m.contain, &collector{m})
	return m
}

// Alert counts an alert; detect and contain are its latencies (0: none).
func (m *Metrics) Alert(rule, severity string, detect, contain time.Duration, done []string) {
	m.mu.Lock()
	if m.rules == nil {
		m.rules = map[string]bool{}
	}
	if !m.rules[rule] {
		if len(m.rules) >= maxRules {
			rule = "other"
		} else {
			m.rules[rule] = true
		}
	}
	m.mu.Unlock()
	m.alerts.WithLabelValues(rule, severity).Inc()
	if detect > 0 {
		m.detect.Observe(detect.Seconds())
	}
	if contain > 0 {
		m.contain.Observe(contain.Seconds())
	}
	for _, a := range done {
		m.actions.WithLabelValues(a).Inc()
	}
}

type collector struct{ m *Metrics }

var (
	descEvents    = prometheus.NewDesc("mcpsec_events_total", "Events decoded, by kind.", []string{"kind"}, nil)
	descKernel    = prometheus.NewDesc("mcpsec_kernel_total", "Kernel counters: drops, cuts and containment, by cause.", []string{"counter"}, nil)
	descDecoder   = prometheus.NewDesc("mcpsec_decoder_losses_total", "Decoder losses, by cause.", []string{"cause"}, nil)
	descServers   = prometheus.NewDesc("mcpsec_tracked_servers", "MCP servers followed.", nil, nil)
	descRing      = prometheus.NewDesc("mcpsec_ring_fill_ratio", "How full each ring buffer is.", []string{"ring"}, nil)
	descNATSPend  = prometheus.NewDesc("mcpsec_nats_pending", "Alerts waiting in the NATS spool.", nil, nil)
	descNATSPub   = prometheus.NewDesc("mcpsec_nats_published_total", "Alerts acknowledged by JetStream.", nil, nil)
	descQueueLen  = prometheus.NewDesc("mcpsec_pipeline_queue_length", "Items waiting in a pipeline queue (a stage or a subscriber).", []string{"queue"}, nil)
	descQueueDrop = prometheus.NewDesc("mcpsec_pipeline_dropped_total", "Items a pipeline queue dropped, by queue and cause.", []string{"queue", "cause"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEvents, descKernel, descDecoder, descServers, descRing, descNATSPend, descNATSPub, descQueueLen, descQueueDrop} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if c.m.snap == nil {
		return
	}
	s := c.m.snap()
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(s.Effects), "effect")
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(s.Messages), "message")
	for _, k := range sortedKeys(s.Kernel) {
		ch <- prometheus.MustNewConstMetric(descKernel, prometheus.CounterValue, float64(s.Kernel[k]), k)
	}
	for _, k := range sortedKeys(s.Decoder) {
		ch <- prometheus.MustNewConstMetric(descDecoder, prometheus.CounterValue, float64(s.Decoder[k]), k)
	}
	ch <- prometheus.MustNewConstMetric(descServers, prometheus.GaugeValue, float64(s.Servers))
	for r, v := range s.RingFill {
		ch <- prometheus.MustNewConstMetric(descRing, prometheus.GaugeValue, v, r)
	}
	ch <- prometheus.MustNewConstMetric(descNATSPend, prometheus.GaugeValue, float64(s.NATSPending))
	ch <- prometheus.MustNewConstMetric(descNATSPub, prometheus.CounterValue, float64(s.NATSPublished))
	for q, n := range s.QueueLen {
		ch <- prometheus.MustNewConstMetric(descQueueLen, prometheus.GaugeValue, float64(n), q)
		// every queue and cause is exported, zero or not, so a rate() has a start
		for _, cause := range []string{"full", "full_alerts", "errors"} {
			ch <- prometheus.MustNewConstMetric(descQueueDrop, prometheus.CounterValue, float64(s.QueueDropped[q][cause]), q, cause)
		}
	}
}

func sortedKeys(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Serve exposes /metrics on addr until ctx ends.
func (m *Metrics) Serve(ctx context.Context, addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		_ = srv.Serve(ln) // ends with ctx
	}()
	return ln.Addr(), nil
}
