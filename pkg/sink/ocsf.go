package sink

import (
	"slices"
	"strconv"
	"strings"

	"github.com/mcpsec/sensor/pkg/audit"
	"github.com/mcpsec/sensor/pkg/correlate"
)

// OCSFVersion is the OCSF schema the events follow: upstream's commit
// a5cfc68e (1.9.0-dev), the first with the record_integrity profile that
// carries the audit trail's hash chain. The events are validated against
// its files (testdata/ocsf) in the tests.
const OCSFVersion = "1.9.0-dev"

// OCSF detection finding constants.
const (
	ocsfCategoryFindings = 2
	ocsfClassDetection   = 2004
	ocsfActivityCreate   = 1
	ocsfSHA256           = 3 // fingerprint.algorithm_id
)

var ocsfSeverity = map[string]int{"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}

// OCSFOptions say who reports the finding.
type OCSFOptions struct {
	Host    string
	Version string // the sensor's
	// Chain names the audit trail (its host and state directory): the
	// attestation's chain_uid.
	Chain string
}

// ToOCSF is an alert as an OCSF Detection Finding (class 2004). rec, when
// the alert is in the audit trail, is its record there: the finding then
// carries the record's hash, and the previous record's, as an attestation
// of the record_integrity profile; `sensor audit verify` checks the chain.
func ToOCSF(a *correlate.Alert, rec *audit.Record, o OCSFOptions) map[string]any {
	sev := ocsfSeverity[a.Severity]
	if sev == 0 {
		sev = 99
	}
	profiles := []string{"host", "security_control"}
	analytic := map[string]any{"name": a.Rule, "uid": a.Rule, "type_id": 1, "type": "Rule"}
	if a.Source == "baseline" {
		analytic["type_id"], analytic["type"] = 2, "Behavioral"
	}
	info := map[string]any{"uid": a.ID, "title": a.Rule, "desc": a.Why, "analytic": analytic,
		"types": []string{a.Class()}, "created_time": a.Time.UnixMilli()}
	var attacks []any
	for _, t := range a.Techniques() {
		if base, sub, ok := strings.Cut(t, "."); ok {
			attacks = append(attacks, map[string]any{"technique": map[string]any{"uid": base}, "sub_technique": map[string]any{"uid": base + "." + sub}})
		} else {
			attacks = append(attacks, map[string]any{"technique": map[string]any{"uid": t}})
		}
	}
	if len(attacks) > 0 {
		info["attacks"] = attacks
	}
	ev := map[string]any{
		"activity_id": ocsfActivityCreate, "activity_name": "Create",
		"category_uid": ocsfCategoryFindings, "category_name": "Findings",
		"class_uid": ocsfClassDetection, "class_name": "Detection Finding",
		"type_uid": ocsfClassDetection*100 + ocsfActivityCreate, "type_name": "Detection Finding: Create",
		"time":        a.Time.UnixMilli(),
		"severity_id": sev, "severity": titleCase(a.Severity),
		"status_id": 1, "status": "New",
		"is_alert":     true,
		"message":      a.Output,
		"finding_info": info,
		"device":       map[string]any{"hostname": o.Host, "type_id": 1, "type": "Server"},
		"unmapped":     map[string]any{"mcpsec_alert": a},
	}
	// the security control's answer: what containment carried out, or
	// detected only (monitor mode, or an alert no playbook acts on)
	ev["action_id"], ev["action"] = 1, "Allowed"
	ev["disposition_id"], ev["disposition"] = 15, "Detected"
	if r := a.Response; r != nil && r.Mode == "enforce" {
		switch {
		case slices.Contains(r.Done, "freeze") || slices.Contains(r.Done, "kill"):
			ev["action_id"], ev["action"] = 2, "Denied"
			ev["disposition_id"], ev["disposition"] = 3, "Quarantined"
		case slices.Contains(r.Done, "deny-egress"):
			ev["action_id"], ev["action"] = 2, "Denied"
			ev["disposition_id"], ev["disposition"] = 2, "Blocked"
		}
	}
	if rec != nil {
		profiles = append(profiles, "record_integrity")
		att := map[string]any{"uid": a.ID, "chain_uid": o.Chain, "authority_uid": o.Host,
			"fingerprint": map[string]any{"algorithm_id": ocsfSHA256, "algorithm": "SHA-256", "value": rec.Hash}}
		if rec.Prev != "" {
			att["prev_event"] = map[string]any{"uid": strconv.FormatUint(rec.Seq-1, 10),
				"fingerprint": map[string]any{"algorithm_id": ocsfSHA256, "algorithm": "SHA-256", "value": rec.Prev}}
		}
		ev["attestation_list"] = []any{att}
	}
	meta := map[string]any{"version": OCSFVersion, "uid": a.ID, "profiles": profiles, "log_name": "mcpsec-alerts",
		"product": map[string]any{"name": "MCP Security Evolution sensor", "vendor_name": "mcpsec", "version": o.Version}}
	if rec != nil {
		meta["sequence"] = rec.Seq
	}
	ev["metadata"] = meta
	return ev
}

func titleCase(s string) string {
	if s == "" {
		return "Unknown"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
