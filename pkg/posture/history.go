package posture

import (
	"encoding/json"
	"time"

	"github.com/mcpsec/sensor/pkg/audit"
)

// VerdictRecord is a verdict as the audit trail keeps it.
type VerdictRecord struct {
	AlertID   string `json:"alert_id"`
	Verdict   string `json:"verdict"` // true (a real threat) or false (a false positive)
	Rule      string `json:"rule,omitempty"`
	Server    string `json:"server,omitempty"`
	By        string `json:"by"`
	Reason    string `json:"reason,omitempty"`
	Exception string `json:"exception,omitempty"` // the file the scoped exception went to
	// Withdrawn are the fleet indicators the verdict took back.
	Withdrawn []string `json:"withdrawn,omitempty"`
}

// alertRecord is the part of an alert the figures read.
type alertRecord struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"ts"`
	Rule     string    `json:"rule"`
	Severity string    `json:"severity"`
	Server   string    `json:"server_name"`
	Effects  []struct {
		Type string `json:"type"`
	} `json:"effects"`
	Response *struct {
		Done      []string `json:"done"`
		LatencyMS float64  `json:"latency_ms"`
		DetectMS  float64  `json:"detect_ms"`
	} `json:"response"`
}

// FromAudit reads the history of the audit trail in dir: its alerts,
// verdicts and the gateway's denials. The settings are the caller's to
// fill in (ChainVerified from audit.Verify, the rules, the mode).
func FromAudit(dir string) (History, error) {
	var h History
	err := audit.Walk(dir, func(r *audit.Record) error {
		switch r.Kind {
		case "alert":
			var a alertRecord
			if json.Unmarshal(r.Data, &a) != nil {
				return nil
			}
			h.Alerts = append(h.Alerts, a.alert())
		case "verdict":
			var v VerdictRecord
			if json.Unmarshal(r.Data, &v) != nil {
				return nil
			}
			h.Verdicts = append(h.Verdicts, Verdict{AlertID: v.AlertID, Time: r.Time, True: v.Verdict == "true", By: v.By, Reason: v.Reason})
		case "decision":
			var ds []struct {
				Verdict string    `json:"verdict"`
				Time    time.Time `json:"ts"`
			}
			if json.Unmarshal(r.Data, &ds) != nil {
				return nil
			}
			for _, d := range ds {
				if d.Verdict == "denied" {
					h.Denials = append(h.Denials, d.Time)
				}
			}
		}
		return nil
	})
	return h, err
}

func (a alertRecord) alert() Alert {
	out := Alert{ID: a.ID, Time: a.Time, Rule: a.Rule, Severity: a.Severity, Server: a.Server}
	for _, e := range a.Effects {
		if e.Type == "egress_denied" {
			out.Refused = true
		}
	}
	if r := a.Response; r != nil {
		// the response is timed from the alert: the freeze's latency
		// from the offending event, less the detection's
		out.Done, out.DetectMS = r.Done, r.DetectMS
		if r.LatencyMS > r.DetectMS {
			out.RespondMS = r.LatencyMS - r.DetectMS
		}
	}
	return out
}
