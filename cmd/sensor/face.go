package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpsec/sensor/pkg/audit"
	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/control"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/pipeline"
	"github.com/mcpsec/sensor/pkg/posture"
)

// face answers the daemon's control commands beyond status and servers:
// what `sensor mcp`, `sensor alerts verdict` and `sensor status` ask.
// Everything comes from the daemon's own state: the audit trail (alerts,
// verdicts, decisions), the trust store (pins, baselines) and the
// pipeline's live view of the servers.
type face struct {
	p       *pipeline.Pipeline
	cfg     config.Config
	current func() *pipeline.Handle
	reload  func()
	mode    string
	member  *member // nil: not in a fleet
	// exceptions serialises the read-modify-write of the verdicts' file
	exceptions sync.Mutex
}

func (f *face) auditDir() string { return filepath.Join(f.p.StateDir(), contain.AuditDir) }

func (f *face) commands() map[string]func(control.Request, uint32) (any, error) {
	return map[string]func(control.Request, uint32) (any, error){
		"posture":    f.posture,
		"verdict":    f.verdict,
		"threats":    f.threats,
		"analyze":    f.analyze,
		"harden":     f.harden,
		"intel":      f.intel,
		"compliance": f.compliance,
		"kill":       f.kill,
		"incidents":  f.incidents,
	}
}

// history is the audit trail's history with the daemon's settings.
func (f *face) history() (posture.History, error) {
	h, err := posture.FromAudit(f.auditDir())
	if err != nil {
		return h, fmt.Errorf("reading the audit trail: %w", err)
	}
	_, verr := audit.Verify(f.auditDir())
	h.ChainVerified = verr == nil
	h.RulesLoaded, h.Enforcing = f.settings()
	return h, nil
}

// settings are what the posture and the compliance status read of the
// daemon itself: rules loaded, containment enforced.
func (f *face) settings() (rulesLoaded, enforcing bool) {
	rs := f.p.Rules()
	return rs != nil && len(rs.Rules) > 0, f.mode == "enforce"
}

// Posture is the answer of "posture".
type Posture struct {
	Now    posture.Figures   `json:"last_24h"`
	All    posture.Figures   `json:"all_time"`
	Days   []posture.Figures `json:"days"`
	Method string            `json:"method"`
}

func (f *face) posture(control.Request, uint32) (any, error) {
	h, err := f.history()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	first := now
	for _, a := range h.Alerts {
		first = minTime(first, a.Time)
	}
	return Posture{Now: posture.Compute(h, now.Add(-24*time.Hour), now.Add(time.Second)),
		All: posture.Compute(h, first, now.Add(time.Second)), Days: posture.Daily(h, 7, now),
		Method: "from the audit trail: MTTD is offending syscall -> alert, MTTR alert -> freeze done, both kernel time; " +
			"false-positive rate is false verdicts / judged alerts; the score's formula is in pkg/posture"}, nil
}

// last24h is the posture of the last day (for the metrics endpoint).
func (f *face) last24h() (posture.Figures, error) {
	h, err := f.history()
	if err != nil {
		return posture.Figures{}, err
	}
	now := time.Now()
	return posture.Compute(h, now.Add(-24*time.Hour), now.Add(time.Second)), nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// alertsFrom reads the trail's alerts that pass keep, newest last, and
// the last verdict on each alert (true_positive or false_positive), in
// one walk.
func (f *face) alertsFrom(keep func(*correlate.Alert) bool) ([]*correlate.Alert, map[string]string, error) {
	var out []*correlate.Alert
	verdicts := map[string]string{}
	err := audit.Walk(f.auditDir(), func(r *audit.Record) error {
		switch r.Kind {
		case "alert":
			var a correlate.Alert
			if json.Unmarshal(r.Data, &a) == nil && keep(&a) {
				out = append(out, &a)
			}
		case "verdict":
			var v posture.VerdictRecord
			if json.Unmarshal(r.Data, &v) == nil {
				verdicts[v.AlertID] = map[string]string{"true": "true_positive", "false": "false_positive"}[v.Verdict]
			}
		}
		return nil
	})
	return out, verdicts, err
}

// sinceOf is the time a "since" argument (a duration back from now)
// names; "" is the beginning.
func sinceOf(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("since %q: not a duration (write it like 30m, 1h or 24h)", s)
	}
	return time.Now().Add(-d), nil
}

// ThreatQuery filters "threats".
type ThreatQuery struct {
	Since     string `json:"since,omitempty"` // a duration: 1h, 30m
	Severity  string `json:"severity,omitempty"`
	Rule      string `json:"rule,omitempty"`
	Server    string `json:"server,omitempty"`
	Technique string `json:"technique,omitempty"`
	Class     string `json:"class,omitempty"`
	Limit     int    `json:"limit,omitempty"`
}

var severityRank = map[string]int{"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

// Threat is an alert classified.
type Threat struct {
	Class      string            `json:"class"`
	Techniques []string          `json:"techniques,omitempty"`
	Alert      *correlate.Alert  `json:"alert"`
	Verdict    string            `json:"verdict,omitempty"`
	Latency    map[string]string `json:"latency,omitempty"`
}

func (f *face) threats(req control.Request, _ uint32) (any, error) {
	var q ThreatQuery
	if len(req.Args) > 0 {
		if err := json.Unmarshal(req.Args, &q); err != nil {
			return nil, fmt.Errorf("threats: %w", err)
		}
	}
	since, err := sinceOf(q.Since)
	if err != nil {
		return nil, err
	}
	if q.Severity != "" {
		if _, ok := severityRank[q.Severity]; !ok {
			return nil, fmt.Errorf("severity %q: use low, medium, high or critical", q.Severity)
		}
	}
	alerts, verdicts, err := f.alertsFrom(func(a *correlate.Alert) bool {
		return !a.Time.Before(since) &&
			(q.Severity == "" || severityRank[a.Severity] >= severityRank[q.Severity]) &&
			(q.Rule == "" || a.Rule == q.Rule) &&
			(q.Server == "" || serverIs(a, q.Server)) &&
			(q.Technique == "" || slices.ContainsFunc(a.Tags, func(t string) bool { return strings.HasPrefix(t, q.Technique) })) &&
			(q.Class == "" || a.Class() == q.Class)
	})
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	if len(alerts) > limit {
		alerts = alerts[len(alerts)-limit:]
	}
	out := make([]Threat, 0, len(alerts))
	for _, a := range alerts {
		t := Threat{Class: a.Class(), Techniques: a.Techniques(), Alert: a, Verdict: verdicts[a.ID]}
		if r := a.Response; r != nil && r.DetectMS > 0 {
			t.Latency = map[string]string{"detect_ms": fmt.Sprintf("%.2f", r.DetectMS)}
			if r.LatencyMS > r.DetectMS {
				t.Latency["respond_ms"] = fmt.Sprintf("%.2f", r.LatencyMS-r.DetectMS)
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// serverIs: the alert is about the server named s (its printable name,
// the name without its version, or its key).
func serverIs(a *correlate.Alert, s string) bool {
	if a.ServerName == s || a.Server == s {
		return true
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(a.ServerName, "@"), "@")
	if strings.HasPrefix(a.ServerName, "@") {
		name = "@" + name
	}
	return name == s
}

func (f *face) incidents(req control.Request, _ uint32) (any, error) {
	var q struct {
		Since string `json:"since"`
	}
	_ = json.Unmarshal(req.Args, &q)
	since, err := sinceOf(q.Since)
	if err != nil {
		return nil, err
	}
	in, err := posture.Incidents(f.auditDir(), since)
	if in == nil {
		in = []posture.Incident{}
	}
	return in, err
}

// kill ends a server's processes (cgroup.kill), after containing it so it
// has no moment to act.
func (f *face) kill(req control.Request, uid uint32) (any, error) {
	h := f.current()
	if h == nil {
		return nil, errors.New("the daemon is not ready yet")
	}
	t, err := targetOf(*h, req)
	if err != nil {
		return nil, err
	}
	by := byWhom(req, uid)
	ct, _, err := h.Contain(t, by)
	if err == nil {
		var cg *contain.Cgroup
		if cg, err = contain.Open(ct.Cgroup); err == nil {
			err = cg.Kill()
			cg.Close()
		}
	}
	auditAction(f.p.StateDir(), "kill", ct.Cgroup, ct.Name, by, err)
	if err != nil {
		return nil, fmt.Errorf("killing %s: %w", nameOr(ct.Name, t), err)
	}
	return map[string]any{"result": "killed " + nameOr(ct.Name, t) + " (cgroup " + ct.Cgroup + ")", "contained": ct}, nil
}
