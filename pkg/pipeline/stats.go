package pipeline

import (
	"os"
	"time"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/loader"
	"github.com/mcpsec/sensor/pkg/metrics"
	"github.com/mcpsec/sensor/pkg/sink"
)

// Stats is the closing (or periodic) "kind":"stats" line.
type Stats struct {
	Kind     string    `json:"kind"` // always "stats"
	Time     time.Time `json:"ts"`
	PID      int       `json:"pid"` // the sensor's
	TID      int       `json:"tid"`
	Server   string    `json:"server"` // none: stats are the sensor's own
	Events   uint64    `json:"events"`
	Effects  uint64    `json:"effects"`
	Messages uint64    `json:"messages"`
	Drops    uint64    `json:"drops"`       // records lost in the kernel (rings full, recursion)
	Cut      uint64    `json:"truncations"` // payloads, strings and messages cut short
	// OrderLate: events printed after a newer one (see the orderer)
	OrderLate uint64            `json:"order_late"`
	Kernel    map[string]uint64 `json:"kernel"`
	// KernelError says why the kernel counters could not be read.
	KernelError string          `json:"kernel_error,omitempty"`
	Decoder     decode.Stats    `json:"decoder"`
	Correlate   correlate.Stats `json:"correlate"`
	// AuditErrors: alerts that could not be written to the audit trail;
	// NATSErrors: alerts that could not be spooled for NATS.
	AuditErrors uint64 `json:"audit_errors,omitempty"`
	NATSErrors  uint64 `json:"nats_errors,omitempty"`
	// Queues are the pipeline's stages and subscribers: what each holds,
	// delivered and dropped (by cause). "responder" is the stage between
	// the correlator and the subscribers.
	Queues map[string]QueueStats `json:"queues,omitempty"`
	// Servers is how many servers are followed now.
	Servers int `json:"servers"`
	// NATS: what the JetStream sink published and holds.
	NATS *sink.NATSStats `json:"nats,omitempty"`
	// RingFill is how full each ring buffer is (0..1).
	RingFill map[string]float64 `json:"ring_fill,omitempty"`
	// Falco: the HTTP output in Falco's shape.
	Falco *sink.FalcoStats `json:"falco,omitempty"`
	// OCSF: the HTTP output of OCSF findings; OCSFErrors: findings the
	// alerts file refused.
	OCSF       *sink.FalcoStats `json:"ocsf_http,omitempty"`
	OCSFErrors uint64           `json:"ocsf_errors,omitempty"`
	// TLSFiles are the files whose SSL_* functions carry uprobes.
	TLSFiles []string `json:"tls_uprobes,omitempty"`
}

// stats collects the counters of every stage.
func (p *Pipeline) stats() Stats {
	st := Stats{Kind: "stats", Time: time.Now(), PID: os.Getpid(), TID: os.Getpid()}
	r := p.live.Load()
	if r == nil {
		return st
	}
	r.core.query(func() {
		st.Decoder = r.dec.Stats()
		st.OrderLate = r.core.ord.late
	})
	k, err := r.objs.Counters()
	if err != nil {
		st.KernelError = err.Error()
	}
	st.Kernel = k
	st.Correlate = r.cor.Stats()
	st.RingFill = r.rd.Fill()
	st.Servers = len(r.cor.Servers())
	st.Queues = p.bus.stats()
	st.Queues["responder"] = r.stage.q.stats()
	if q, ok := st.Queues["audit"]; ok {
		st.AuditErrors = q.Dropped["errors"]
	}
	if q, ok := st.Queues["nats"]; ok {
		st.NATSErrors = q.Dropped["errors"]
	}
	if p.nats != nil {
		ns := p.nats.Stats()
		st.NATS = &ns
	}
	st.OCSFErrors = p.ocsfErrors.Load()
	if p.ocsfHTTP != nil {
		hs := p.ocsfHTTP.Stats()
		st.OCSF = &hs
	}
	if p.falco != nil {
		fs := p.falco.Stats()
		st.Falco = &fs
	}
	if r.tls != nil {
		st.TLSFiles = r.tls.Attached()
	}
	st.Effects = st.Decoder.Effects
	st.Messages = st.Decoder.MessagesIn + st.Decoder.MessagesOut
	st.Events = st.Effects + st.Messages
	drops, cut := loader.Losses(k)
	st.Drops = drops
	st.Cut = cut + st.Decoder.Truncated
	return st
}

// snapshot is what the metrics read at each scrape.
func (p *Pipeline) snapshot() metrics.Snapshot {
	if r := p.live.Load(); r == nil || !r.ready.Load() {
		return metrics.Snapshot{}
	}
	st := p.stats()
	d := st.Decoder
	ms := metrics.Snapshot{Effects: st.Effects, Messages: st.Messages, Kernel: st.Kernel, Servers: st.Servers, RingFill: st.RingFill,
		Decoder: map[string]uint64{"non_json": d.NonJSON, "gap_fragments": d.Fragments, "truncated": d.Truncated,
			"gap_bytes": d.Lines.GapBytes + d.HTTP.GapBytes, "lost_bodies": d.HTTP.LostBodies, "order_late": st.OrderLate},
		QueueLen: map[string]int{}, QueueDropped: map[string]map[string]uint64{}}
	for name, q := range st.Queues {
		ms.QueueLen[name] = q.Queued
		ms.QueueDropped[name] = q.Dropped
	}
	if st.NATS != nil {
		ms.NATSPending, ms.NATSPublished = st.NATS.Pending, st.NATS.Published
	}
	return ms
}
