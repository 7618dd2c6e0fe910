package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/fleet"
	"github.com/mcpsec/sensor/pkg/pipeline"
)

// member is the daemon's place in the fleet: the indicators it reports,
// the ones it takes (into the kernel's deny map and the correlator), its
// inventory.
type member struct {
	cfg   config.Config
	log   hclog.Logger
	f     atomic.Pointer[fleet.Fleet]
	queue chan *correlate.Alert
	pins  *correlate.Store
	// flagged are the servers (printable names) a high or critical alert
	// was about: what they did is not shared as normal
	mu      sync.Mutex
	flagged map[string]bool
	dropped atomic.Uint64
	started time.Time
}

func newMember(cfg config.Config, log hclog.Logger) *member {
	return &member{cfg: cfg, log: log, queue: make(chan *correlate.Alert, 1024), started: time.Now()}
}

// stats are the member's counters, for sensor status.
func (m *member) stats() map[string]any {
	out := map[string]any{"unreported_dropped": m.dropped.Load()}
	f := m.f.Load()
	if f == nil {
		out["state"] = "joining"
		return out
	}
	out["state"], out["key"], out["in_force"] = "joined", f.PublicKey(), len(f.InForce())
	out["reported"], out["taken"], out["ignored"], out["withdrawn"], out["errors"] = f.Published.Load(), f.Applied.Load(), f.Ignored.Load(), f.Withdrawn.Load(), f.Errors.Load()
	out["baselines_shared"] = f.Shared.Load()
	return out
}

// indicators is the correlator's lookup: the origin of an indicator in
// force, "" if none.
func (m *member) indicators(typ, value string) string {
	f := m.f.Load()
	if f == nil {
		return ""
	}
	if in, ok := f.Lookup(typ, value); ok {
		return in.Origin()
	}
	return ""
}

// alert queues a high or critical alert for its indicators.
func (m *member) alert(a *correlate.Alert) {
	if a.Severity != "high" && a.Severity != "critical" || a.Rule == "egress_fleet_indicator" || a.Rule == "tool_fleet_indicator" {
		return
	}
	m.mu.Lock()
	if m.flagged == nil {
		m.flagged = map[string]bool{}
	}
	m.flagged[a.ServerName] = true
	m.mu.Unlock()
	select {
	case m.queue <- a:
	default:
		m.dropped.Add(1) // counted: the stats say how many went unreported
	}
}

// run joins the fleet once the pipeline runs (retrying while NATS or the
// cluster is not there yet), applies what it takes, reports what this host
// detects and beats.
func (m *member) run(ctx context.Context, p *pipeline.Pipeline, h pipeline.Handle) {
	fc := m.cfg.Fleet
	host := fc.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	key := fc.KeyFile
	if key == "" {
		key = filepath.Join(p.StateDir(), "fleet.nk")
	}
	var f *fleet.Fleet
	for {
		var err error
		f, err = fleet.Open(ctx, p.NATS().Conn(), fleet.Options{Host: host, Replicas: m.cfg.NATS.Replicas, TTL: fc.TTL,
			Trust: fleet.Trust{Quorum: fc.Quorum, Keys: fc.Trust}, KeyFile: key})
		if err == nil {
			break
		}
		m.log.Warn("not in the fleet yet; trying again", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
	m.pins = p.Pins()
	m.f.Store(f)
	if err := h.ClearDenied(); err != nil {
		m.log.Warn("fleet: the kernel's old indicator entries were not cleared", "error", err)
	}
	m.log.Info("fleet: joined", "host", host, "key", f.PublicKey(), "quorum", max(1, fc.Quorum), "trusted_keys", len(fc.Trust))
	inForce := filepath.Join(p.StateDir(), fleet.InForceFile)
	err := f.Watch(ctx, func(c fleet.Change) {
		in := c.Indicator
		if err := fleet.WriteInForce(inForce, f.InForce()); err != nil {
			m.log.Warn("fleet: the indicators in force were not written for sensor scan", "file", inForce, "error", err)
		}
		if in.Type != fleet.Destination {
			m.log.Info("fleet indicator", "in_force", c.Add, "type", in.Type, "value", in.Value, "origin", in.FirstHost, "why", c.Why)
			return
		}
		// the address's entry is the union of the ports of every
		// destination indicator in force on it
		prefix, _, err := in.Prefix()
		if err == nil {
			ports, anyPort, n, over := f.Ports(prefix)
			if anyPort {
				ports = nil
			}
			if over > 0 {
				m.log.Warn("fleet: more ports of one address than the kernel entry holds; the others are judged, not refused", "address", prefix, "left_out", over)
			}
			err = h.DenyEgress(prefix, ports, n > 0)
		}
		if err != nil {
			m.log.Warn("fleet indicator not applied in the kernel", "value", in.Value, "error", err)
			return
		}
		m.log.Info("fleet indicator: destination", "denied", c.Add, "value", in.Value, "origin", in.FirstHost, "rule", in.Rule, "why", c.Why)
	})
	if err != nil {
		m.log.Error("fleet: not watching the indicators", "error", err)
	}
	// what the fleet learned of a server this host has not learned yet
	// seeds it: no blank learning window
	if err := f.WatchBaselines(ctx, func(sm correlate.Summary) {
		if p.Pins().Seed(sm) {
			m.log.Info("fleet: baseline seeded", "server", sm.Server, "tool", sm.Tool, "from", sm.Hosts)
		}
	}); err != nil {
		m.log.Error("fleet: not watching the baselines", "error", err)
	}
	beat := time.NewTicker(10 * time.Second)
	defer beat.Stop()
	m.heartbeat(ctx, f, h)
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-m.queue:
			for _, c := range derive(a, h, p.Pins()) {
				if err := f.Report(ctx, c.typ, c.value, a.Rule, a.Severity, a.ID); err != nil {
					m.log.Warn("fleet: indicator not reported", "type", c.typ, "value", c.value, "error", err)
				} else {
					m.log.Info("fleet: indicator reported", "type", c.typ, "value", c.value, "rule", a.Rule)
				}
			}
		case <-beat.C:
			m.heartbeat(ctx, f, h)
		}
	}
}

func (m *member) heartbeat(ctx context.Context, f *fleet.Fleet, h pipeline.Handle) {
	inv := fleet.Inventory{Version: version, Since: m.started, Indicators: len(f.InForce())}
	for _, s := range h.Servers() {
		inv.Servers = append(inv.Servers, fleet.Server{Name: s.Name, Identity: s.Identity.Key(), Calls: s.Calls, Tainted: s.Tainted != ""})
	}
	st := h.Stats()
	for _, n := range st.Correlate.Alerts {
		inv.Alerts += n
	}
	if err := f.Heartbeat(ctx, inv); err != nil {
		m.log.Warn("fleet: heartbeat not written", "error", err)
	}
	if m.cfg.Learn > 0 {
		var sums []correlate.Summary
		m.mu.Lock()
		for _, sm := range m.pins.Learned(m.cfg.Learn, time.Now()) {
			if !m.flagged[sm.Name] {
				sums = append(sums, sm)
			}
		}
		m.mu.Unlock()
		if err := f.ShareBaselines(ctx, sums); err != nil {
			m.log.Warn("fleet: baselines not shared", "error", err)
		}
	}
}

// withdraw takes back, fleet-wide, the indicators an alert gave (an
// analyst judged it a false positive).
func (m *member) withdraw(ctx context.Context, a *correlate.Alert, p *pipeline.Pipeline, h pipeline.Handle, reason string) []string {
	f := m.f.Load()
	if f == nil {
		return nil
	}
	var out []string
	for _, c := range derive(a, h, p.Pins()) {
		if err := f.Withdraw(ctx, c.typ, c.value, reason); err != nil {
			m.log.Warn("fleet: indicator not withdrawn", "value", c.value, "error", err)
			continue
		}
		out = append(out, c.typ+" "+c.value)
	}
	return out
}

type candidate struct{ typ, value string }

// derive is what an alert tells the fleet, and nothing private: the
// destinations it sent to, the definition hash of the tool it is about,
// the package and version of its server, the hash of its executable.
func derive(a *correlate.Alert, h pipeline.Handle, pins *correlate.Store) []candidate {
	var out []candidate
	seen := map[string]bool{}
	add := func(typ, value string) {
		if value != "" && !seen[typ+value] {
			seen[typ+value] = true
			out = append(out, candidate{typ, value})
		}
	}
	for _, e := range a.Effects {
		if (e.Type == "connect" || e.Type == "sendto" || e.Type == "egress_denied") && e.Detail != "fleet indicator" &&
			strings.Contains(e.Addr, ":") && !strings.HasPrefix(e.Addr, "/") && !strings.HasPrefix(e.Addr, "@") {
			add(fleet.Destination, e.Addr)
		}
	}
	var key string
	for _, s := range h.Servers() {
		if s.ID != a.Server {
			continue
		}
		id := s.Identity
		key = id.Key()
		if (id.Kind == "npm" || id.Kind == "pypi") && id.Version != "" {
			add(fleet.Package, id.Kind+":"+id.Name+"@"+id.Version)
		}
		add(fleet.ExeHash, id.Hash)
	}
	if a.Tool != "" && len(a.Effects) == 0 && pins != nil && key != "" {
		if rec, ok := pins.Tools()[key][a.Tool]; ok {
			add(fleet.ToolHash, firstNonEmpty(rec.LastHash, rec.Hash))
		}
	}
	return out
}
