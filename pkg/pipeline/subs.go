package pipeline

import (
	"time"

	"github.com/mcpsec/sensor/pkg/audit"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/sink"
)

// subscribers builds the pipeline's own subscribers from its configuration.
func (p *Pipeline) subscribers(outs []*outputSub) []Subscriber {
	var subs []Subscriber
	for _, out := range outs {
		subs = append(subs, Subscriber{Name: out.o.Name, Want: out.want, Handle: out.handle, Close: out.flush})
	}
	if p.audit != nil {
		subs = append(subs, Subscriber{Name: "audit", Want: Alerts, Handle: p.auditAlerts})
	}
	if p.nats != nil {
		subs = append(subs, Subscriber{Name: "nats", Want: Alerts, Handle: p.spoolAlerts})
		if p.o.Config.NATS.Events {
			subs = append(subs, Subscriber{Name: "nats_events", Want: Events, Handle: p.publishEvents})
		}
	}
	if p.falco != nil {
		subs = append(subs, Subscriber{Name: "falco", Want: Alerts, Handle: func(items []Item) error {
			for _, it := range items {
				p.falco.Publish(it.alert())
			}
			return nil
		}})
	}
	subs = append(subs, Subscriber{Name: "metrics", Want: Alerts, Handle: func(items []Item) error {
		for _, it := range items {
			a := it.alert()
			var detect, contained time.Duration
			var done []string
			if r := a.Response; r != nil {
				detect = time.Duration(r.DetectMS * float64(time.Millisecond))
				contained = time.Duration(r.LatencyMS * float64(time.Millisecond))
				done = r.Done
			}
			p.metrics.Alert(a.Rule, a.Severity, detect, contained, done)
		}
		return nil
	}})
	return append(subs, p.extra...)
}

// auditAlerts appends a batch of alerts, and the enforced responses among
// them, to the audit trail with one sync.
func (p *Pipeline) auditAlerts(items []Item) error {
	entries := make([]audit.Entry, 0, len(items))
	for _, it := range items {
		a := it.alert()
		entries = append(entries, audit.Entry{Kind: "alert", Data: a})
		if r := a.Response; r != nil && r.Mode == "enforce" && (len(r.Done) > 0 || len(r.Errors) > 0) {
			entries = append(entries, audit.Entry{Kind: "response", Data: contain.AuditEvent{Action: "response",
				Cgroup: r.Cgroup, Server: a.Server, Rule: a.Rule, Done: r.Done, Errors: r.Errors, By: "sensor"}})
		}
	}
	if _, err := p.audit.AppendBatch(entries); err != nil {
		p.o.Log.Warn("alerts were not written to the audit trail", "alerts", len(items), "error", err)
		return err
	}
	return nil
}

// spoolAlerts spools a batch of alerts for NATS in one transaction.
func (p *Pipeline) spoolAlerts(items []Item) error {
	batch := make([]sink.Pending, len(items))
	for i, it := range items {
		a := it.alert()
		batch[i] = sink.Pending{Severity: a.Severity, Rule: a.Rule, Alert: a}
	}
	if err := p.nats.PublishBatch(batch); err != nil {
		p.o.Log.Warn("alerts were not spooled for NATS", "alerts", len(items), "error", err)
		return err
	}
	return nil
}

func (p *Pipeline) publishEvents(items []Item) error {
	for _, it := range items {
		switch v := it.Event.(type) {
		case *decode.Effect:
			p.nats.Event("effect", v)
		case *decode.Message:
			p.nats.Event("message", v)
		}
	}
	return nil
}

// OnServer is a subscriber that calls fn for each server notice (found,
// identified, gone).
func OnServer(name string, fn func(*ServerNotice)) Subscriber {
	return Subscriber{Name: name, Want: func(it Item) bool { return it.Server != nil }, Handle: func(items []Item) error {
		for _, it := range items {
			fn(it.Server)
		}
		return nil
	}}
}

// OnAlert is a subscriber that calls fn for each alert, with containment's
// answer on it.
func OnAlert(name string, fn func(*correlate.Alert)) Subscriber {
	return Subscriber{Name: name, Want: Alerts, Handle: func(items []Item) error {
		for _, it := range items {
			fn(it.alert())
		}
		return nil
	}}
}
