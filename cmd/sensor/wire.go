package main

import (
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/gateway"
	"github.com/mcpsec/sensor/pkg/identity"
	"github.com/mcpsec/sensor/pkg/pipeline"
	"github.com/mcpsec/sensor/pkg/proc"
)

// serverView is what `sensor run` tells its gateway about the server: what
// it is (from the pipeline's notices, or /proc) and the threat it poses
// (its alerts so far).
type serverView struct {
	mu      sync.Mutex
	pid     int
	command string
	self    string
	srv     gateway.Server
	known   bool
	threat  gateway.Threat
}

// server is the server's identity: the pipeline's once it has one, else
// read from /proc once the launch helper has exec'd the server.
func (v *serverView) server() (gateway.Server, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.known && v.pid > 0 {
		if s, err := identity.NewResolver().Resolve(v.pid); err == nil && s.Attrs.Exe != v.self {
			v.srv = gateway.Server{Key: s.Identity.Key(), Name: s.Identity.String(), Command: v.command}
			v.known = true
		}
	}
	if v.srv.Command == "" {
		v.srv.Command = v.command
	}
	return v.srv, v.known
}

func (v *serverView) notice(n *pipeline.ServerNotice) {
	if n.State == "gone" || n.Info.Identity.Key() == "" {
		return
	}
	v.mu.Lock()
	v.srv = gateway.Server{Key: n.Info.Identity.Key(), Name: n.Info.Name, Command: v.command}
	v.known = true
	v.mu.Unlock()
}

func (v *serverView) alert(a *correlate.Alert) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.threat.Alerts++
	if correlate.SeverityRank(a.Severity) > correlate.SeverityRank(v.threat.Severity) {
		v.threat.Severity = a.Severity
	}
	if strings.Contains(a.Rule, "credential") {
		v.threat.Tainted = true
	}
}

func (v *serverView) current() gateway.Threat {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.threat
}

// clientPrincipal is the process that started `sensor run`: the MCP
// client, as the kernel sees it.
func clientPrincipal() gateway.Principal {
	pp := os.Getppid()
	p := gateway.Principal{UID: -1}
	if uid, err := proc.Host.UID(pp); err == nil {
		p.UID = uid
	}
	p.Exe, _ = proc.Host.Exe(pp)
	return p
}

// decisions carry the gateway's decisions to the audit trail off the wire:
// a call never waits for a sync; batches share one. A full queue drops,
// counted.
type decisions struct {
	ch      chan gateway.Decision
	done    chan struct{}
	dropped atomic.Uint64
	failed  atomic.Uint64
	mu      sync.Mutex // guards closed against add
	closed  bool
}

func newDecisions(p *pipeline.Pipeline, log hclog.Logger) *decisions {
	d := &decisions{ch: make(chan gateway.Decision, 4096), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		batch := make([]any, 0, 256)
		for first := range d.ch {
			// gather for up to 50 ms: one sync for a burst of calls, not
			// one per call
			batch = append(batch[:0], first)
			wait := time.NewTimer(50 * time.Millisecond)
		gather:
			for len(batch) < cap(batch) {
				select {
				case x, ok := <-d.ch:
					if !ok {
						break gather
					}
					batch = append(batch, x)
				case <-wait.C:
					break gather
				}
			}
			wait.Stop()
			if err := p.Audit("decision", batch); err != nil {
				d.failed.Add(uint64(len(batch)))
				log.Warn("the audit trail refused decisions", "decisions", len(batch), "error", err)
			}
		}
	}()
	return d
}

func (d *decisions) add(x gateway.Decision) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		d.dropped.Add(1)
		return
	}
	select {
	case d.ch <- x:
	default:
		d.dropped.Add(1)
	}
}

// close writes what is queued and stops; later decisions are counted as
// dropped.
func (d *decisions) close() {
	d.mu.Lock()
	d.closed = true
	close(d.ch)
	d.mu.Unlock()
	<-d.done
}

// wireGateway makes the gateway of `sensor run` and subscribes it to the
// pipeline: decisions go to the audit trail (and the log, when not
// allowed); a server contained by a freeze answers every call at once.
func wireGateway(p *pipeline.Pipeline, set *gateway.Set, view *serverView, maxMessage int, dec *decisions, log hclog.Logger) *gateway.Gateway {
	g := gateway.New(gateway.Options{
		Policy: set, Principal: clientPrincipal(), Server: view.server, Threat: view.current, MaxMessage: maxMessage, Pins: p.Pins(),
		Decide: func(d gateway.Decision) {
			dec.add(d)
			if d.Verdict != "allowed" {
				log.Info("gateway", "verdict", d.Verdict, "method", d.Method, "tool", d.Tool, "policy", d.Policy, "reason", d.Reason)
			}
		},
	})
	p.Subscribe(pipeline.OnServer("gateway-server", view.notice))
	p.Subscribe(pipeline.OnAlert("gateway-threat", func(a *correlate.Alert) {
		view.alert(a)
		if r := a.Response; r != nil && r.Mode == "enforce" {
			for _, done := range r.Done {
				if strings.HasPrefix(done, "freeze") {
					g.Contain("frozen after " + a.Rule + " (" + a.Severity + ")")
				}
			}
		}
	}))
	return g
}
