// Package respond carries out the graduated response to alerts: freeze a
// server's cgroup, deny its egress in the kernel, signal it at exec, take a
// forensic snapshot, pause its baselines, throttle it.
package respond

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/proc"
	"github.com/mcpsec/sensor/pkg/wire"
)

// Modes of the responder.
const (
	Enforce = "enforce" // carry the actions out
	Monitor = "monitor" // only say what would have been done
)

// DefaultPlaybook is the baseline profile's (pkg/config defines every
// profile's): critical isolates and contains, high watches closer, medium
// slows down, low logs.
var DefaultPlaybook = map[string][]string{
	"critical": {"freeze", "deny-egress", "snapshot"},
	"high":     {"capture-all", "pause-learning"},
	"medium":   {"throttle"},
	"low":      {"log"},
}

// ruleActions are what a rule's own `action` means; it overrides the
// playbook for that rule.
var ruleActions = map[string][]string{
	"log": {"log"}, "alert": {"log"}, "monitor": {"capture-all", "pause-learning"},
	"throttle":    {"throttle"},
	"contain":     {"freeze", "deny-egress", "snapshot"},
	"freeze":      {"freeze", "snapshot"},
	"kill":        {"deny-egress", "kill", "kill-on-exec"},
	"stop":        {"deny-egress", "stop", "stop-on-exec"},
	"deny-egress": {"deny-egress"},
	"deny-exec":   {"kill-on-exec"},
}

// Responder carries out the graduated response to alerts, through the
// containment manager. Not safe for concurrent use: one stage of the
// pipeline calls it, in alert order.
type Responder struct {
	Mode     string
	Playbook map[string][]string
	Manager  *contain.Manager
	Log      hclog.Logger
	// StateDir gets forensic snapshots (in forensics/).
	StateDir string
	// Recent returns a server's recent events, for snapshots.
	Recent func(server string) []any
	// PauseLearning stops a server's baselines from learning.
	PauseLearning func(server string)

	contained map[string]bool // servers frozen or quarantined
	recorded  map[string]bool // servers in the containment records
}

// Actions are what the response to an alert consists of.
func (r *Responder) Actions(a *correlate.Alert) []string {
	if acts, ok := ruleActions[a.Action]; ok {
		return acts
	}
	pb := r.Playbook
	if pb == nil {
		pb = DefaultPlaybook
	}
	return pb[a.Severity]
}

func target(a *correlate.Alert) contain.Target {
	return contain.Target{Server: a.Server, Name: a.ServerName, PID: int(a.ServerPID)}
}

// Respond answers an alert and records the answer on it.
func (r *Responder) Respond(a *correlate.Alert) {
	acts := r.Actions(a)
	if len(acts) == 0 || (len(acts) == 1 && acts[0] == "log") {
		return
	}
	resp := &correlate.Response{Mode: r.Mode, Actions: acts,
		DetectMS: float64(time.Since(a.Time).Microseconds()) / 1000}
	a.Response = resp
	if r.Mode != Enforce {
		return
	}
	if r.contained == nil {
		r.contained = map[string]bool{}
	}
	var cg *contain.Cgroup
	for _, act := range acts {
		switch act {
		case "freeze", "deny-egress", "kill-on-exec", "stop-on-exec", "throttle":
			if cg != nil {
				continue
			}
			var err error
			if cg, err = r.Manager.CgroupOf(target(a)); err != nil {
				resp.Errors = append(resp.Errors, err.Error())
			} else {
				resp.Cgroup = cg.Path
			}
		}
	}
	flags := uint64(0)
	for _, act := range acts {
		switch act {
		case "deny-egress":
			flags |= wire.CgQuarantine
		case "kill-on-exec":
			flags |= wire.CgKillOnExec
		case "stop-on-exec":
			flags |= wire.CgStopOnExec
		}
	}
	if flags != 0 && cg != nil {
		if err := r.Manager.AddFlags(cg, flags); err != nil {
			resp.Errors = append(resp.Errors, "policy: "+err.Error())
		} else {
			for _, act := range acts {
				if act == "deny-egress" || act == "kill-on-exec" || act == "stop-on-exec" {
					resp.Done = append(resp.Done, act)
				}
			}
		}
	}
	for _, act := range acts {
		var err error
		switch act {
		case "freeze":
			if cg == nil {
				continue
			}
			var at time.Time
			if at, err = cg.Freeze(time.Second); err == nil {
				resp.Done = append(resp.Done, act)
				resp.FrozenAt = at
				resp.LatencyMS = float64(at.Sub(a.Time).Microseconds()) / 1000
				r.contained[a.Server] = true
			}
		case "kill", "stop":
			sig := unix.SIGKILL
			if act == "stop" {
				sig = unix.SIGSTOP
			}
			if a.PID != 0 && a.PID != a.ServerPID {
				err = unix.Kill(int(a.PID), sig)
			} else {
				err = fmt.Errorf("%s: the offender is the server itself; its next exec is signalled instead", act)
			}
			if err == nil {
				resp.Done = append(resp.Done, act)
			}
		case "snapshot":
			if r.contained[a.Server] && resp.FrozenAt.IsZero() {
				continue // taken when it was first contained
			}
			var path string
			if path, err = r.snapshot(a, cg); err == nil {
				resp.Snapshot = path
				resp.Done = append(resp.Done, act)
			}
		case "pause-learning":
			if r.PauseLearning != nil {
				r.PauseLearning(a.Server)
				resp.Done = append(resp.Done, act)
			}
		case "capture-all":
			// the trace already captures every payload whole up to
			// capture_max; nothing to raise
			resp.Done = append(resp.Done, act)
		case "throttle":
			if cg == nil {
				continue
			}
			var how string
			if how, err = contain.Throttle(cg, contain.DefaultLimits); err == nil {
				resp.Done = append(resp.Done, "throttle: "+how)
			}
		}
		if err != nil {
			resp.Errors = append(resp.Errors, act+": "+err.Error())
		}
	}
	if flags&wire.CgQuarantine != 0 && cg != nil && !r.recorded[a.Server] {
		if r.recorded == nil {
			r.recorded = map[string]bool{}
		}
		r.contained[a.Server] = true
		r.recorded[a.Server] = true
		if err := r.Manager.Quarantined(target(a), cg, !resp.FrozenAt.IsZero()); err != nil {
			r.Log.Warn("the containment state file was not written", "error", err)
		}
	}
	r.Log.Warn("containment", "rule", a.Rule, "severity", a.Severity, "server", a.ServerName, "id", a.Server, "done", resp.Done, "errors", resp.Errors)
}

// Allow is an allow-list entry the kernel can enforce.
type Allow struct {
	Prefix netip.Prefix
	Ports  []uint16
}

// ParseAllow turns --egress-allow entries into prefixes and ports; host
// names cannot be enforced in the kernel and are returned apart.
// Entries for the same prefix are merged: "any port" wins over ports.
func ParseAllow(entries []string) ([]Allow, []string) {
	var out []Allow
	var skipped []string
	index := map[netip.Prefix]int{}
	add := func(p netip.Prefix, port uint16, anyPort bool) {
		i, ok := index[p]
		if !ok {
			index[p] = len(out)
			out = append(out, Allow{Prefix: p, Ports: []uint16{}})
			i = len(out) - 1
		}
		switch {
		case anyPort || out[i].Ports == nil:
			out[i].Ports = nil
		default:
			out[i].Ports = append(out[i].Ports, port)
		}
	}
	for _, e := range entries {
		if p, err := netip.ParsePrefix(e); err == nil {
			add(p.Masked(), 0, true)
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			add(netip.PrefixFrom(a, a.BitLen()), 0, true)
			continue
		}
		if ap, err := netip.ParseAddrPort(e); err == nil {
			add(netip.PrefixFrom(ap.Addr(), ap.Addr().BitLen()), ap.Port(), false)
			continue
		}
		skipped = append(skipped, e)
	}
	return out, skipped
}

// snapshot saves the forensic snapshot of a server being contained.
func (r *Responder) snapshot(a *correlate.Alert, cg *contain.Cgroup) (string, error) {
	s := Snapshot{Time: time.Now(), Server: a.Server, Rule: a.Rule, Alert: a}
	var pids []int
	if cg != nil {
		s.Cgroup = cg.Path
		pids, _ = cg.Procs()
	}
	if len(pids) == 0 && a.ServerPID != 0 {
		pids = proc.Host.Tree(int(a.ServerPID))
	}
	for _, pid := range pids {
		s.Processes = append(s.Processes, SnapProc(pid))
	}
	if r.Recent != nil {
		s.Recent = r.Recent(a.Server)
	}
	dir := filepath.Join(r.StateDir, "forensics")
	if r.StateDir == "" {
		dir = filepath.Join(os.TempDir(), "mcp-sensor-forensics")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	// the alert refers to the snapshot, the snapshot holds the alert
	resp := a.Response
	a.Response = nil
	b, err := json.MarshalIndent(&s, "", " ")
	a.Response = resp
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s-%s.json", strings.ReplaceAll(a.Server, "/", "_"), s.Time.UTC().Format("20060102T150405.000000000"))
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, b, 0o600)
}
