// Package pipeline is the sensor: one pipeline that `sensor trace`, `sensor
// run` and `sensor daemon` configure differently. Stages, each on
// goroutines of its own:
//
//	ring readers (pkg/loader: read and hand on, nothing else)
//	  -> core: decode -> order by kernel time -> correlate (links, rules, baselines)
//	  -> responder (containment's answer to each alert; its own queue)
//	  -> fan-out to the subscribers (trace output, audit trail, NATS spool,
//	     NATS events, Falco output, metrics, control-socket followers, ...)
//
// Every queue between stages is bounded; what a full queue cannot take is
// counted by queue and cause, in the stats and the metrics. Nothing that
// can block (fsync, freeze, snapshot, publish, a slow reader) runs on a
// ring reader's goroutine or on the core's.
package pipeline

import (
	"io"
	"net/netip"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mcpsec/sensor/pkg/audit"
	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/metrics"
	"github.com/mcpsec/sensor/pkg/sink"
)

// Target is what the pipeline traces.
type Target struct {
	// Command, if set, is launched with Stdin/Stdout/Stderr and traced
	// from its first instruction.
	Command []string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	// RelayStderr passes the command's stderr through the trace output
	// line by line: set it when both go to the same file.
	RelayStderr bool
	// PIDs are traced with their descendants; Cgroups are tracked by id
	// (processes created in them later are traced).
	PIDs    []int
	Cgroups []uint64
	// Discover finds servers by their MCP handshake (with neither a
	// command nor pids, always).
	Discover bool
	// Launch adjusts the command before it starts (extra files); Started
	// runs once it has.
	Launch  func(*exec.Cmd)
	Started func(*exec.Cmd) error
	// Quarantine refuses the launched command every connection and send
	// in the kernel from its first instruction (`sensor scan`'s sandbox).
	Quarantine bool
}

// Options are what a command gives the pipeline besides its configuration.
type Options struct {
	// Command is config.Trace, config.Run or config.Daemon.
	Command string
	Config  config.Config
	Target  Target
	// Outputs are where events are printed (the first one relays a
	// launched command's stderr when Target.RelayStderr is set).
	Outputs []Output
	// Force, when closed, kills a stopping command at once; Reload asks
	// for the rules to be read again.
	Force  <-chan struct{}
	Reload <-chan struct{}
	// Indicators names the fleet indicator of a type and value ("" if
	// none): the correlator's effect.indicator and tool.indicator.
	Indicators func(typ, value string) string
	// OCSFLines, if set, takes each alert as an OCSF Detection Finding, a
	// JSON line (the daemon's alerts file with alerts_format: ocsf).
	OCSFLines io.Writer
	// Ready is called once tracing runs.
	Ready   func(Handle)
	Version string
	Log     hclog.Logger
}

// Result is how a trace ended.
type Result struct {
	// ExitCode of the launched command (128+signal if killed, 127 if it
	// could not be started), -1 if there was none.
	ExitCode int
	Stats    Stats
}

// Pipeline is one configured sensor, built by New and run once by Run.
type Pipeline struct {
	o        Options
	profile  config.Profile
	mode     string // containment mode in force
	stateDir string
	tmpState bool // a throw-away state directory, removed at the end
	rules    *correlate.RuleSet
	rulesDir string
	store    *correlate.Store
	audit    *audit.Log
	nats     *sink.NATS
	falco    *sink.Falco
	ocsfHTTP *sink.Falco
	// ocsfErrors: findings that could not be written to OCSFLines
	ocsfErrors atomic.Uint64
	host       string
	metrics    *metrics.Metrics
	manager    *contain.Manager
	bus        bus
	started    time.Time
	closers    []func()
	extra      []Subscriber
	live       atomic.Pointer[running] // set while Run runs
}

// Handle reads a running pipeline's counters and servers.
type Handle struct {
	Stats   func() Stats
	Servers func() []correlate.ServerInfo
	// Contain and Release act through the pipeline's containment manager.
	Contain func(t contain.Target, by string) (contain.Contained, time.Time, error)
	Release func(cgroup, by string) error
	// Server finds the server a pid belongs to.
	ServerOf func(pid int) (correlate.ServerInfo, bool)
	// DenyEgress refuses an address's ports (none: any) to every server
	// with a policy, in the kernel, whatever the policy allows (deny false
	// lifts it): the fleet's indicators.
	DenyEgress func(prefix netip.Prefix, ports []uint16, deny bool) error
	// ClearDenied lifts every DenyEgress.
	ClearDenied func() error
}

// Subscribe adds a subscriber (before Run).
func (p *Pipeline) Subscribe(s Subscriber) { p.extra = append(p.extra, s) }

// Metrics are the pipeline's Prometheus metrics.
func (p *Pipeline) Metrics() *metrics.Metrics { return p.metrics }

// NATS is the JetStream sink, if configured.
func (p *Pipeline) NATS() *sink.NATS { return p.nats }

// Rules is the rule set loaded at start (nil: none).
func (p *Pipeline) Rules() *correlate.RuleSet { return p.rules }

// StateDir is where the pipeline keeps its state.
func (p *Pipeline) StateDir() string { return p.stateDir }

// SiteRulesDir is the directory of the site's rules: the one in use, or
// the default one a site creates (read from the next reload on).
func (p *Pipeline) SiteRulesDir() string {
	if p.rulesDir != "" {
		return p.rulesDir
	}
	return DefaultRulesDir
}

// Pins are the pinned tool definitions (the trust store), for the gateway.
func (p *Pipeline) Pins() *correlate.Store { return p.store }

// Audit appends records of one kind to the tamper-evident audit trail,
// with one sync for all of them (the gateway's decisions, for one).
func (p *Pipeline) Audit(kind string, data []any) error {
	if p.audit == nil || len(data) == 0 {
		return nil
	}
	entries := make([]audit.Entry, len(data))
	for i, d := range data {
		entries[i] = audit.Entry{Kind: kind, Data: d}
	}
	_, err := p.audit.AppendBatch(entries)
	return err
}

// Mode is the containment mode in force and the profile it came from.
func (p *Pipeline) Mode() (string, config.Profile) { return p.mode, p.profile }

// Close releases what New opened, in reverse order.
func (p *Pipeline) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}
