package pipeline

import (
	"encoding/json"
	"path/filepath"
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
	} else if p.ocsfWanted() {
		// no trail to chain: the findings go out without an attestation
		subs = append(subs, Subscriber{Name: "ocsf", Want: Alerts, Handle: func(items []Item) error {
			for _, it := range items {
				p.emitOCSF(it.alert(), nil)
			}
			return nil
		}})
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
	alertAt := make([]int, 0, len(items)) // each alert's entry
	for _, it := range items {
		a := it.alert()
		alertAt = append(alertAt, len(entries))
		entries = append(entries, audit.Entry{Kind: "alert", Data: a})
		if r := a.Response; r != nil && r.Mode == "enforce" && (len(r.Done) > 0 || len(r.Errors) > 0) {
			entries = append(entries, audit.Entry{Kind: "response", Data: contain.AuditEvent{Action: "response",
				Cgroup: r.Cgroup, Server: a.Server, Rule: a.Rule, Done: r.Done, Errors: r.Errors, By: "sensor"}})
		}
	}
	recs, err := p.audit.AppendBatch(entries)
	if err != nil {
		p.o.Log.Warn("alerts were not written to the audit trail", "alerts", len(items), "error", err)
		return err
	}
	if p.ocsfWanted() {
		// the findings carry their records' place in the hash chain
		for i, it := range items {
			p.emitOCSF(it.alert(), recs[alertAt[i]])
		}
	}
	return nil
}

// ocsfWanted: an output takes alerts as OCSF findings.
func (p *Pipeline) ocsfWanted() bool {
	return p.o.OCSFLines != nil || p.ocsfHTTP != nil || (p.nats != nil && p.o.Config.NATS.OCSF)
}

// emitOCSF sends an alert as an OCSF Detection Finding to the outputs
// that take them: the alerts file, NATS, the HTTP endpoint.
func (p *Pipeline) emitOCSF(a *correlate.Alert, rec *audit.Record) {
	ev := sink.ToOCSF(a, rec, sink.OCSFOptions{Host: p.host, Version: p.o.Version, Chain: p.host + ":" + filepath.Join(p.stateDir, contain.AuditDir)})
	b, err := json.Marshal(ev)
	if err != nil {
		p.ocsfErrors.Add(1)
		return
	}
	if p.o.OCSFLines != nil {
		if _, err := p.o.OCSFLines.Write(append(b, '\n')); err != nil {
			p.ocsfErrors.Add(1)
		}
	}
	if p.nats != nil && p.o.Config.NATS.OCSF {
		p.nats.OCSF(a.Severity, b)
	}
	if p.ocsfHTTP != nil {
		p.ocsfHTTP.Post(json.RawMessage(b))
	}
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
