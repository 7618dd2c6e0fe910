package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpsec/sensor/pkg/posture"
)

var (
	descScore    = prometheus.NewDesc("mcpsec_posture_security_score", "The security score over the last 24 h (0-100; formula in pkg/posture).", nil, nil)
	descDetected = prometheus.NewDesc("mcpsec_posture_threats_detected", "Threats detected over the last 24 h.", nil, nil)
	descBlocked  = prometheus.NewDesc("mcpsec_posture_threats_blocked", "Threats blocked over the last 24 h, by what blocked them.", []string{"by"}, nil)
	descFPRate   = prometheus.NewDesc("mcpsec_posture_false_positive_ratio", "False verdicts over judged alerts, last 24 h (absent until an analyst judged one).", nil, nil)
	descMTTD     = prometheus.NewDesc("mcpsec_posture_mean_time_to_detection_seconds", "Mean offending syscall -> alert, last 24 h.", nil, nil)
	descMTTR     = prometheus.NewDesc("mcpsec_posture_mean_time_to_response_seconds", "Mean alert -> containment done, last 24 h.", nil, nil)
	descComply   = prometheus.NewDesc("mcpsec_posture_compliance_status", "1 for the current compliance status.", []string{"status"}, nil)
)

// postureCollector exports the posture figures; they come from the audit
// trail, read at most every 30 s.
type postureCollector struct {
	get  func() (posture.Figures, error)
	mu   sync.Mutex
	at   time.Time
	last posture.Figures
	ok   bool
}

// AddPosture exports the figures get computes (the daemon's, over the
// last 24 h), the same `sensor status` and mcpsec://posture give.
func (m *Metrics) AddPosture(get func() (posture.Figures, error)) {
	m.Registry.MustRegister(&postureCollector{get: get})
}

func (c *postureCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descScore, descDetected, descBlocked, descFPRate, descMTTD, descMTTR, descComply} {
		ch <- d
	}
}

func (c *postureCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if time.Since(c.at) > 30*time.Second {
		f, err := c.get()
		c.at, c.ok = time.Now(), err == nil
		if err == nil {
			c.last = f
		}
	}
	f, ok := c.last, c.ok
	c.mu.Unlock()
	if !ok {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descScore, float64(f.SecurityScore))
	gauge(descDetected, float64(f.ThreatsDetected))
	for _, by := range []string{"kernel_refusal", "gateway_denial", "freeze", "kill"} {
		gauge(descBlocked, float64(f.BlockedBy[by]), by)
	}
	if f.FalsePosRate != nil {
		gauge(descFPRate, *f.FalsePosRate)
	}
	if f.MTTDms != nil {
		gauge(descMTTD, *f.MTTDms/1000)
	}
	if f.MTTRms != nil {
		gauge(descMTTR, *f.MTTRms/1000)
	}
	gauge(descComply, 1, f.ComplianceStatus)
}
