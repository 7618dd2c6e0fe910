package posture

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"time"

	"github.com/mcpsec/sensor/pkg/audit"
)

// Incident is an alert that containment answered, with what followed:
// detection, response, release, from the audit trail.
type Incident struct {
	AlertID     string    `json:"alert_id"`
	Time        time.Time `json:"time"` // the offending event
	Rule        string    `json:"rule"`
	Severity    string    `json:"severity"`
	Server      string    `json:"server"`
	Done        []string  `json:"done"`
	DetectMS    float64   `json:"detect_ms,omitempty"`
	RespondMS   float64   `json:"respond_ms,omitempty"`
	Cgroup      string    `json:"cgroup,omitempty"`
	ContainedAt time.Time `json:"contained_at,omitzero"`
	ReleasedAt  time.Time `json:"released_at,omitzero"`
	ReleasedBy  string    `json:"released_by,omitempty"`
}

// Incidents reads the incidents of the trail in dir since a time, oldest
// first: each alert whose response was carried out, and the release of
// its cgroup that came after, if any.
func Incidents(dir string, since time.Time) ([]Incident, error) {
	var out []Incident
	err := audit.Walk(dir, func(r *audit.Record) error {
		switch r.Kind {
		case "alert":
			var a struct {
				alertRecord
				Response *struct {
					Done      []string  `json:"done"`
					Cgroup    string    `json:"cgroup"`
					FrozenAt  time.Time `json:"frozen_at"`
					LatencyMS float64   `json:"latency_ms"`
					DetectMS  float64   `json:"detect_ms"`
					Mode      string    `json:"mode"`
				} `json:"response"`
			}
			if json.Unmarshal(r.Data, &a) != nil || a.Response == nil || a.Response.Mode != "enforce" || len(a.Response.Done) == 0 {
				return nil
			}
			if a.Time.Before(since) || !slices.ContainsFunc(a.Response.Done, contains) {
				return nil
			}
			in := Incident{AlertID: a.ID, Time: a.Time, Rule: a.Rule, Severity: a.Severity, Server: a.Server, Done: a.Response.Done,
				DetectMS: a.Response.DetectMS, Cgroup: a.Response.Cgroup, ContainedAt: a.Response.FrozenAt}
			if a.Response.LatencyMS > a.Response.DetectMS {
				in.RespondMS = a.Response.LatencyMS - a.Response.DetectMS
			}
			out = append(out, in)
		case "release":
			var ev struct {
				Cgroup string   `json:"cgroup"`
				By     string   `json:"by"`
				Errors []string `json:"errors"`
			}
			if json.Unmarshal(r.Data, &ev) != nil || len(ev.Errors) > 0 || ev.Cgroup == "" {
				return nil
			}
			for i := range out {
				in := &out[i]
				if in.ReleasedAt.IsZero() && in.Cgroup != "" && filepath.Base(in.Cgroup) == filepath.Base(ev.Cgroup) {
					in.ReleasedAt, in.ReleasedBy = r.Time, ev.By
				}
			}
		}
		return nil
	})
	return out, err
}

// contains: an action that contains a server (not one that only watches).
func contains(action string) bool {
	switch action {
	case "freeze", "deny-egress", "kill", "stop":
		return true
	}
	return false
}
